/** Quoting for the SQL sync sends, and how a peer that is not PostgreSQL is described. */
import { ConfigError, setting } from "../core/errors.ts";

/** Quote an identifier. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quote a string literal. */
export function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** The peer is something else (HTTP, MySQL, ...): a wrong host or port no retry can fix. */
export function notPostgres(o: { host: string; port: number }, why: string): ConfigError {
  return new ConfigError(
    `${o.host}:${o.port} is not speaking the PostgreSQL protocol (${why}): ` +
      `check the host and port in ${setting("dbUrl")}`,
  );
}

/** TLS with the server failed (its certificate, say): the URL's TLS options fix that. */
export function tlsFailed(o: { host: string; port: number }, e: unknown): ConfigError {
  return new ConfigError(
    `TLS to ${o.host}:${o.port} failed: ${(e as Error).message.split("\n")[0]}` +
      ` (set sslrootcert=<CA file> in ${setting("dbUrl")}, or sslmode=disable)`,
  );
}

/** The server does not do TLS, and the URL's sslmode requires it. */
export function tlsRefused(o: { host: string; port: number; sslMode: string }): ConfigError {
  return new ConfigError(
    `${o.host}:${o.port} does not accept TLS but ${setting("dbUrl")} has sslmode=${o.sslMode}`,
  );
}

/** A byte as hex, and as the character it is when printable. */
export function describeByte(b: number): string {
  return `0x${b.toString(16).padStart(2, "0")}` +
    (b >= 0x20 && b < 0x7f ? ` (${JSON.stringify(String.fromCharCode(b))})` : "");
}
