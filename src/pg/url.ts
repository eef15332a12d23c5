/**
 * libpq-style connection URLs, including several hosts
 * (`postgres://u:p@h1:5432,h2:5433/db?sslmode=require&target_session_attrs=read-write`).
 */
import { ConfigError } from "../core/source.ts";

export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full";
const SSL_MODES: SslMode[] = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

export interface PgUrl {
  hosts: { host: string; port: number }[];
  user: string;
  password?: string;
  database: string;
  sslMode: SslMode;
  /** Path of a PEM file with the CA certificates to trust. */
  sslRootCert?: string;
  /** Skip hosts that are not primaries (`read-write`, the default for sync) or not. */
  targetSessionAttrs: "read-write" | "any" | "primary";
  applicationName: string;
  connectTimeoutMs: number;
}

/** Parse a postgres:// URL; errors never include the password. */
export function parsePgUrl(url: string): PgUrl {
  const m = /^(postgres|postgresql):\/\/(?:([^@/]*)@)?([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/i
    .exec(url);
  if (!m) throw new ConfigError("--db-url is not a postgres:// URL");
  const [, , auth, hostPart, db, query] = m;
  let user = "postgres";
  let password: string | undefined;
  if (auth !== undefined) {
    const i = auth.indexOf(":");
    user = decode(i < 0 ? auth : auth.slice(0, i));
    if (i >= 0) password = decode(auth.slice(i + 1));
  }
  const params = new URLSearchParams(query ?? "");
  const defaultPort = Number(params.get("port") ?? 5432);
  const hosts = (hostPart || params.get("host") || "localhost").split(",").map((h) => {
    const hm = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(h);
    if (!hm || !hm[1]) throw new ConfigError(`--db-url has a bad host "${h}"`);
    return {
      host: decode(hm[1].replace(/^\[|\]$/g, "")),
      port: hm[2] ? Number(hm[2]) : defaultPort,
    };
  });
  for (const h of hosts) {
    if (!(h.port > 0 && h.port < 65536)) throw new ConfigError(`--db-url has a bad port`);
  }
  const sslMode = (params.get("sslmode") ?? "prefer") as SslMode;
  if (!SSL_MODES.includes(sslMode)) {
    throw new ConfigError(`--db-url sslmode=${sslMode} is not one of ${SSL_MODES.join(", ")}`);
  }
  const tsa = params.get("target_session_attrs") ?? "read-write";
  if (tsa !== "read-write" && tsa !== "any" && tsa !== "primary") {
    throw new ConfigError(`--db-url target_session_attrs=${tsa} is not supported`);
  }
  const timeout = Number(params.get("connect_timeout") ?? 10);
  return {
    hosts,
    user: params.get("user") ?? user,
    password: params.get("password") ?? password,
    database: db ? decode(db) : (params.get("dbname") ?? user),
    sslMode,
    sslRootCert: params.get("sslrootcert") ?? undefined,
    targetSessionAttrs: tsa,
    applicationName: params.get("application_name") ?? "sync",
    connectTimeoutMs: (Number.isFinite(timeout) && timeout > 0 ? timeout : 10) * 1000,
  };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ConfigError("--db-url has bad percent-encoding");
  }
}
