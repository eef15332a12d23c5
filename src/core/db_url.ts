/**
 * The shape of a database URL (`scheme://user:password@hosts/database?options`), split
 * before anything is decoded, so that the user name and password can never end up where a
 * host, a database or an option belongs, and from there in a message, a log line, a page or
 * the state key's name. Both drivers' URL parsers start here.
 */
import { ConfigError, setting } from "./errors.ts";

export interface DbUrlParts {
  /** Lower-case scheme without `://`. */
  scheme: string;
  /** Still percent-encoded; undefined without an `@`. Never put it in a message. */
  userinfo?: string;
  /** The host list (`h1:5432,h2`), as written. */
  hosts: string;
  /** The path after the host list without its `/`, still percent-encoded ("" when none). */
  path: string;
  /** The query without its `?` ("" when none). */
  query: string;
}

/** What a character must be written as inside a user name or password. */
const ENCODED: Record<string, string> = { "/": "%2F", "?": "%3F", "#": "%23", "@": "%40" };

/**
 * Split a URL by shape. The user name and password end at the first `@`, which must come
 * before the first `/`, `?` or `#`, and the host list that follows must hold no `@`: a `/`,
 * `?`, `#` or `@` in a password would otherwise move part of it into the host or the path.
 * Such a URL is refused by naming the characters to encode, never by showing any of it.
 */
export function splitDbUrl(url: string, what = setting("dbUrl")): DbUrlParts {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  if (!m) throw new ConfigError(`${what} is not a URL (scheme://...)`);
  const rest = url.slice(m[0].length);
  const at = rest.lastIndexOf("@");
  let userinfo: string | undefined;
  let after = rest;
  if (at >= 0) {
    const first = rest.indexOf("@");
    const tail = rest.slice(first + 1);
    if (/[/?#]/.test(rest.slice(0, first)) || hostList(tail).includes("@")) {
      // Only the characters are named: the text around them may be the password.
      const found = Object.keys(ENCODED).filter((c) => rest.slice(0, at).includes(c));
      throw new ConfigError(
        `${what}: the user name and password must be percent-encoded: ` +
          found.map((c) => `${c} → ${ENCODED[c]}`).join(", "),
      );
    }
    userinfo = rest.slice(0, first);
    after = tail;
  }
  const hm = /^([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?(?:#.*)?$/.exec(after)!;
  return {
    scheme: m[1].toLowerCase(),
    userinfo,
    hosts: hm[1],
    path: hm[2] ?? "",
    query: hm[3] ?? "",
  };
}

/** The text before the first `/`, `?` or `#`. */
function hostList(s: string): string {
  const i = s.search(/[/?#]/);
  return i < 0 ? s : s.slice(0, i);
}

/** Percent-decoding that reports a bad escape without showing the text around it. */
export function decodeUrlPart(s: string, what = setting("dbUrl")): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ConfigError(`${what} has bad percent-encoding`);
  }
}

/** User name and password from the userinfo (`user[:password]`), decoded. */
export function splitUserinfo(
  userinfo: string | undefined,
  what = setting("dbUrl"),
): { user?: string; password?: string } {
  if (userinfo === undefined) return {};
  const i = userinfo.indexOf(":");
  return {
    user: decodeUrlPart(i < 0 ? userinfo : userinfo.slice(0, i), what),
    password: i < 0 ? undefined : decodeUrlPart(userinfo.slice(i + 1), what),
  };
}

/** The host list: `h1:5432,[::1]:5433,h3` with `port` for those without one. */
export function splitHosts(
  hosts: string,
  port: number,
  what = setting("dbUrl"),
): { host: string; port: number }[] {
  return hosts.split(",").map((h) => {
    const hm = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(h);
    if (!hm || !hm[1]) throw new ConfigError(`${what} has a bad host "${h}"`);
    const p = hm[2] ? Number(hm[2]) : port;
    if (!(p > 0 && p < 65536)) throw new ConfigError(`${what} has a bad port`);
    return { host: decodeUrlPart(hm[1].replace(/^\[|\]$/g, ""), what), port: p };
  });
}
