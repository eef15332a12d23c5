/**
 * What the client says when etcd cannot be used: answers no retry can fix become errors
 * saying what to change (the service exits with status 2 at first start), and an endpoint
 * that never answers gets its reason: a certificate, a name, or not being etcd at all.
 */

import { ConfigError, setting } from "../core/errors.ts";
import { NOT_RESOLVED } from "../core/net.ts";
import { EtcdError, EtcdUnavailableError } from "./errors.ts";
import { notEtcd, type ProbeTls } from "./probe.ts";

/**
 * The first line of a connection failure, with its cause (Deno's fetch says only "fetch
 * failed" and puts the reason in the cause).
 */
export function fetchFailure(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : "";
  return (cause && !msg.includes(cause) ? `${msg}: ${cause}` : msg).split("\n")[0];
}

/**
 * TLS rejections in a connection failure, the reason captured: etcd's certificate not
 * trusted (`invalid peer certificate: UnknownIssuer` from fetch, `unable to verify the first
 * certificate` from HTTP/2), or sync's client certificate refused by etcd.
 */
const SERVER_CERT_REJECTED =
  /(invalid peer certificate(?:: \w+)?|unable to verify[\w ]*|self[- ]signed certificate[\w ]*|unable to get (?:local )?issuer[\w ]*)/i;
const CLIENT_CERT_REJECTED =
  /((?:received )?fatal alert: (?:BadCertificate|CertificateRequired|UnknownCA|CertificateUnknown))/i;

/** A name that does not resolve is said so, with the host (the fix is the name or DNS). */
function resolveFailure(why: string, endpoint: string): string {
  if (!NOT_RESOLVED.test(why)) return why;
  const host = new URL(endpoint).hostname;
  return `cannot resolve ${host} (${why.replace(host, "").replace(/:\s*$/, "").trim()})`;
}

/**
 * The error for endpoints none of which answered: `lastErr` from `lastAt`. A certificate
 * either side rejects stays rejected, and an endpoint that is not etcd (a web server, a
 * database port) stays so: those say what to change instead of being retried for ever.
 */
export async function unreachable(
  endpoints: string[],
  lastErr: unknown,
  lastAt: string,
  tls: ProbeTls,
  probeMs: number,
): Promise<Error> {
  const at = endpoints.join(",");
  const why = fetchFailure(lastErr);
  const server = SERVER_CERT_REJECTED.exec(why)?.[1];
  if (server) {
    return new ConfigError(
      `cannot verify etcd's TLS certificate at ${at} (${server}): give the CA that ` +
        `signed it with ${setting("etcdCa")}`,
    );
  }
  const client = CLIENT_CERT_REJECTED.exec(why)?.[1];
  if (client) {
    return new ConfigError(
      `etcd at ${at} rejected the TLS client certificate (${client}): give ` +
        `${setting("etcdCert")} and ${setting("etcdKey")} signed by a CA etcd trusts (its ` +
        "--trusted-ca-file)",
    );
  }
  // After the TLS rejections: a refused client certificate also ends the connection unanswered.
  for (const ep of endpoints) {
    const not = await notEtcd(ep, tls, probeMs);
    if (not) {
      return new ConfigError(
        `etcd endpoint ${ep} is not an etcd server (${not}): fix ${setting("etcdEndpoints")}`,
      );
    }
  }
  return new EtcdUnavailableError(`etcd unreachable at ${at}: ${resolveFailure(why, lastAt)}`);
}

/**
 * etcd's answers that no retry can fix become ConfigErrors saying what to change (coded, so
 * `sync check` tells a refused login from a missing permission); a full backend gets a
 * clearer message. `user` is the etcd user name setting.
 */
export function explain(e: unknown, user: string | undefined): unknown {
  if (!(e instanceof EtcdError)) return e;
  const credentials = `${setting("etcdUsername")} and ${setting("etcdPassword")}`;
  if (e.authFailed) {
    return new ConfigError(
      user
        ? `etcd refused user "${user}": ${e.message} (check ${credentials})`
        : `etcd requires authentication: ${e.message} (set ${credentials})`,
      { code: "auth" },
    );
  }
  if (e.permissionDenied) {
    return new ConfigError(
      `etcd: ${e.message} for ${user ? `user "${user}"` : "this client"} (grant its role ` +
        `readwrite on ${setting("etcdPrefix")} and the state prefix)`,
      { code: "permission" },
    );
  }
  if (e.noSpace) {
    return new EtcdError(
      `etcd is out of space (${e.message}): nothing was written; free space (compact, ` +
        'defragment, then "etcdctl alarm disarm") or raise etcd\'s --quota-backend-bytes',
      e.grpcCode,
      e.httpStatus,
    );
  }
  return e;
}
