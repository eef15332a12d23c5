/** mysql:// URLs (`mysql://user:pass@h1:3306,h2:3306/db?ssl-mode=REQUIRED&ssl-ca=/ca.pem`). */
import { ConfigError } from "../core/source.ts";

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

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ConfigError("--db-url has bad percent-encoding");
  }
}

export function parseMysqlUrl(url: string): MysqlUrl {
  const m = /^(mysql|mariadb):\/\/(?:([^@/]*)@)?([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/i.exec(url);
  if (!m) throw new ConfigError("--db-url is not a mysql:// URL");
  const [, , auth, hostPart, db, query] = m;
  let user = "root";
  let password = "";
  if (auth !== undefined) {
    const i = auth.indexOf(":");
    user = decode(i < 0 ? auth : auth.slice(0, i));
    if (i >= 0) password = decode(auth.slice(i + 1));
  }
  const hosts = (hostPart || "127.0.0.1").split(",").map((h) => {
    const hm = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(h);
    if (!hm || !hm[1]) throw new ConfigError(`--db-url has a bad host "${h}"`);
    const port = hm[2] ? Number(hm[2]) : 3306;
    if (!(port > 0 && port < 65536)) throw new ConfigError("--db-url has a bad port");
    return { host: decode(hm[1].replace(/^\[|\]$/g, "")), port };
  });
  const params = new URLSearchParams(query ?? "");
  const mode = (params.get("ssl-mode") ?? params.get("sslmode") ?? "PREFERRED").toUpperCase()
    .replace("-", "_") as MysqlSslMode;
  if (!MODES.includes(mode)) {
    throw new ConfigError(`--db-url ssl-mode=${mode} is not one of ${MODES.join(", ")}`);
  }
  return {
    hosts,
    user,
    password,
    database: db ? decode(db) : "",
    sslMode: mode,
    sslCa: params.get("ssl-ca") ?? undefined,
  };
}
