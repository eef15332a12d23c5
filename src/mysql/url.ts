/** mysql:// URLs (`mysql://user:pass@h1:3306,h2:3306/db?ssl-mode=REQUIRED&ssl-ca=/ca.pem`). */
import { ConfigError, setting } from "../core/errors.ts";
import { decodeUrlPart, splitDbUrl, splitHosts, splitUserinfo } from "../core/db_url.ts";

export type MysqlSslMode = "DISABLED" | "PREFERRED" | "REQUIRED" | "VERIFY_CA" | "VERIFY_IDENTITY";
const MODES: MysqlSslMode[] = ["DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"];

export interface MysqlUrl {
  hosts: { host: string; port: number }[];
  user: string;
  password: string;
  /** The default database ("" when none): tables in it get unqualified keys. */
  database: string;
  sslMode: MysqlSslMode;
  /** Path of a PEM file with CA certificates. */
  sslCa?: string;
}

/** Parse a mysql:// URL; errors never include the user name or password. */
export function parseMysqlUrl(url: string): MysqlUrl {
  const parts = splitDbUrl(url);
  if (parts.scheme !== "mysql" && parts.scheme !== "mariadb") {
    throw new ConfigError(`${setting("dbUrl")} is not a mysql:// URL`);
  }
  const auth = splitUserinfo(parts.userinfo);
  const hosts = splitHosts(parts.hosts || "127.0.0.1", 3306);
  const params = new URLSearchParams(parts.query);
  const mode = (params.get("ssl-mode") ?? params.get("sslmode") ?? "PREFERRED").toUpperCase()
    .replace("-", "_") as MysqlSslMode;
  if (!MODES.includes(mode)) {
    throw new ConfigError(
      `${setting("dbUrl")} ssl-mode=${mode} is not one of ${MODES.join(", ")}`,
    );
  }
  return {
    hosts,
    user: auth.user ?? "root",
    password: auth.password ?? "",
    database: parts.path ? decodeUrlPart(parts.path) : "",
    sslMode: mode,
    sslCa: params.get("ssl-ca") ?? undefined,
  };
}
