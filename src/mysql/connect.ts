/**
 * Connecting to MySQL/MariaDB for the driver and for `sync check` and `status`: the first
 * host that answers, the server's replication settings, and errors no retry can fix said as
 * what to change.
 */
import { asConfigError, ConfigError, type ConfigErrorRules, setting } from "../core/errors.ts";
import { MysqlConn, MysqlError } from "./conn.ts";
import type { MysqlUrl } from "./url.ts";

/** Server errors a retry cannot fix, by MySQL error code. */
export function mysqlConfigErrors(url: MysqlUrl): ConfigErrorRules {
  return (e) => {
    if (!(e instanceof MysqlError)) return undefined;
    switch (e.code) {
      case 1045: // access denied
      case 1698:
        return new ConfigError(
          `${e.message.split("\n")[0]} (check the user and password in ${setting("dbUrl")})`,
          { code: "auth" },
        );
      case 1049: // unknown database
        return new ConfigError(`${e.message} (fix the database in ${setting("dbUrl")})`);
      case 1227: // missing privilege
        return new ConfigError(
          `${e.message} (grant REPLICATION SLAVE, REPLICATION CLIENT and SELECT to ${url.user})`,
          { code: "permission" },
        );
    }
    return undefined;
  };
}

export async function connectTo(url: MysqlUrl): Promise<MysqlConn> {
  let last: unknown;
  for (const h of url.hosts) {
    try {
      return await MysqlConn.connect({
        host: h.host,
        port: h.port,
        user: url.user,
        password: url.password,
        database: url.database || undefined,
        sslMode: url.sslMode,
        sslCa: url.sslCa,
      });
    } catch (e) {
      last = asConfigError(e, mysqlConfigErrors(url));
      if (last instanceof ConfigError) throw last;
    }
  }
  throw last;
}

export interface ServerInfo {
  version: string;
  mariadb: boolean;
  serverId: number;
  uuid: string;
  logBin: string;
  format: string;
  image: string;
  /** binlog_row_metadata: FULL lets row events carry column names and the key. */
  rowMetadata: string;
}

export async function serverInfo(c: MysqlConn): Promise<ServerInfo> {
  const r = await c.query(
    "SELECT @@version, @@server_id, @@log_bin, @@binlog_format, @@binlog_row_image",
  );
  const [version, serverId, logBin, format, image] = r.rows[0].map((v) => v ?? "");
  const mariadb = /mariadb/i.test(version);
  let uuid = "";
  if (!mariadb) uuid = (await c.query("SELECT @@server_uuid")).rows[0][0] ?? "";
  let rowMetadata = "";
  try {
    rowMetadata = (await c.query("SELECT @@binlog_row_metadata")).rows[0][0] ?? "";
  } catch {
    rowMetadata = "unsupported"; // MySQL 5.7, MariaDB before 10.5
  }
  return {
    version,
    mariadb,
    serverId: Number(serverId),
    uuid,
    logBin,
    format,
    image,
    rowMetadata,
  };
}

export function requireSettings(i: ServerInfo) {
  if (i.logBin !== "1" && i.logBin.toUpperCase() !== "ON") {
    throw new ConfigError("the binary log is off: start the server with log_bin (and server_id)");
  }
  if (i.format.toUpperCase() !== "ROW") {
    throw new ConfigError(
      `binlog_format is ${i.format}: set binlog_format = ROW in the server configuration`,
    );
  }
  if (i.image.toUpperCase() !== "FULL") {
    throw new ConfigError(
      `binlog_row_image is ${i.image}: set binlog_row_image = FULL in the server configuration`,
    );
  }
}

/**
 * sync registers as a replica with --server-id; the server's own id would make its binlog
 * events look like the replica's own (the flag's range is checked when it is parsed).
 */
export function serverIdClash(server: number, ours: number): ConfigError | undefined {
  if (server !== ours) return undefined;
  return new ConfigError(
    `${setting("serverId", ours)} is the server's own server_id: give sync an id no server or ` +
      "replica uses (1 to 4294967295)",
  );
}
