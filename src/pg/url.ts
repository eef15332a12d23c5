/**
 * libpq-style connection URLs, including several hosts
 * (`postgres://u:p@h1:5432,h2:5433/db?sslmode=require&target_session_attrs=read-write`).
 */
import { ConfigError, setting } from "../core/errors.ts";
import { decodeUrlPart, splitDbUrl, splitHosts, splitUserinfo } from "../core/db_url.ts";

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

/** Parse a postgres:// URL; errors never include the user name or password. */
export function parsePgUrl(url: string): PgUrl {
  const parts = splitDbUrl(url);
  if (parts.scheme !== "postgres" && parts.scheme !== "postgresql") {
    throw new ConfigError(`${setting("dbUrl")} is not a postgres:// URL`);
  }
  const auth = splitUserinfo(parts.userinfo);
  const user = auth.user ?? "postgres";
  const params = new URLSearchParams(parts.query);
  const defaultPort = Number(params.get("port") ?? 5432);
  const hosts = splitHosts(parts.hosts || params.get("host") || "localhost", defaultPort);
  const sslMode = (params.get("sslmode") ?? "prefer") as SslMode;
  if (!SSL_MODES.includes(sslMode)) {
    throw new ConfigError(
      `${setting("dbUrl")} sslmode=${sslMode} is not one of ${SSL_MODES.join(", ")}`,
    );
  }
  const tsa = params.get("target_session_attrs") ?? "read-write";
  if (tsa !== "read-write" && tsa !== "any" && tsa !== "primary") {
    throw new ConfigError(`${setting("dbUrl")} target_session_attrs=${tsa} is not supported`);
  }
  const timeout = Number(params.get("connect_timeout") ?? 10);
  return {
    hosts,
    user: params.get("user") ?? user,
    password: params.get("password") ?? auth.password,
    database: parts.path ? decodeUrlPart(parts.path) : (params.get("dbname") ?? user),
    sslMode,
    sslRootCert: params.get("sslrootcert") ?? undefined,
    targetSessionAttrs: tsa,
    applicationName: params.get("application_name") ?? "sync",
    connectTimeoutMs: (Number.isFinite(timeout) && timeout > 0 ? timeout : 10) * 1000,
  };
}
