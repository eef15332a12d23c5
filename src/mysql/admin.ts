/**
 * `sync check` and `sync status` for MySQL/MariaDB (sync creates nothing on the server, so
 * `drop` has nothing to do here). `check` runs every test that would make `sync run` fail at
 * start; `status` says "unknown" for what the user may not see rather than guess.
 */
import type { MysqlSourceOptions } from "./options.ts";
import type { CheckResult, Inspection, SavedState } from "../core/source.ts";
import { ConfigError, setting } from "../core/errors.ts";
import { type MysqlConn, MysqlError } from "./conn.ts";
import { connectTo, type ServerInfo, serverInfo } from "./connect.ts";
import { parseMysqlUrl } from "./url.ts";
import { sqlString, SYSTEM_SCHEMAS } from "./schema.ts";

export async function check(opts: MysqlSourceOptions): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const url = parseMysqlUrl(opts.url);
  let c: MysqlConn;
  try {
    c = await connectTo(url);
    out.push({ name: "database reachable", ok: true, detail: `${url.hosts[0].host}` });
  } catch (e) {
    out.push({
      name: "database reachable",
      ok: false,
      detail: (e as Error).message.split("\n")[0],
      fix: `check host, port, user and password in ${setting("dbUrl")}`,
      code: e instanceof ConfigError ? e.code : undefined,
    });
    return out;
  }
  try {
    const i = await serverInfo(c);
    out.push(...settingChecks(i, opts.driver.serverId));
    const grants = (await c.query("SHOW GRANTS")).rows.map((r) => r[0] ?? "");
    const missing = missingGrants(grants);
    out.push({
      name: "replication privilege",
      ok: missing.length === 0,
      detail: missing.length ? `missing ${missing.join(", ")}` : "granted",
      fix: `GRANT ${missing.join(", ")} ON *.* TO '${url.user}'@'<its host>'`,
    });
    out.push(await keyCheck(c, opts, url.database));
  } finally {
    c.close();
  }
  return out;
}

/** The server's replication settings, as `run` requires them at start. */
function settingChecks(i: ServerInfo, serverId: number): CheckResult[] {
  const on = i.logBin === "1" || i.logBin.toUpperCase() === "ON";
  return [
    { name: "server version", ok: true, detail: i.version },
    { name: "log_bin", ok: on, detail: i.logBin, fix: "enable log_bin and server_id" },
    {
      name: "binlog_format",
      ok: i.format.toUpperCase() === "ROW",
      detail: i.format,
      fix: "set binlog_format = ROW",
    },
    {
      name: "binlog_row_image",
      ok: i.image.toUpperCase() === "FULL",
      detail: i.image,
      fix: "set binlog_row_image = FULL",
    },
    {
      name: "binlog_row_metadata",
      ok: i.rowMetadata.toUpperCase() === "FULL",
      detail: i.rowMetadata,
      fix: "set binlog_row_metadata = FULL (MariaDB 10.5+, MySQL 8) so DDL can be followed",
    },
    {
      name: "server_id",
      ok: i.serverId > 0 && i.serverId !== serverId,
      detail: `server ${i.serverId}, sync registers as ${serverId}`,
      fix: `give the server a non-zero server_id different from ${setting("serverId")}`,
    },
  ];
}

async function keyCheck(c: MysqlConn, opts: MysqlSourceOptions, database: string) {
  const onlyDb = !opts.filter.hasIncludes && database;
  const t = await c.query(
    // KEY_COLUMN_USAGE, as the dump reads keys: MariaDB hides TABLE_CONSTRAINTS rows from
    // a user with only SELECT.
    `SELECT t.TABLE_SCHEMA, t.TABLE_NAME, EXISTS(SELECT 1 FROM information_schema.KEY_COLUMN_USAGE k
       WHERE k.TABLE_SCHEMA = t.TABLE_SCHEMA AND k.TABLE_NAME = t.TABLE_NAME
         AND k.CONSTRAINT_NAME = 'PRIMARY')
     FROM information_schema.TABLES t WHERE t.TABLE_TYPE = 'BASE TABLE'${
      onlyDb ? ` AND t.TABLE_SCHEMA = ${sqlString(database)}` : ""
    } ORDER BY 1, 2`,
  );
  const selected = t.rows.filter(([db, name]) =>
    !SYSTEM_SCHEMAS.includes(db!.toLowerCase()) && opts.filter.matches(db!, name!)
  );
  // A table given key columns with --keys is replicated like a keyed one.
  const noKey = selected.filter(([db, name, pk]) =>
    pk !== "1" && !opts.keys?.columnsFor(db!, name!)
  ).map(([db, name]) => `${db}.${name}`);
  return {
    name: "tables have primary keys",
    ok: noKey.length === 0,
    detail: noKey.length
      ? `not replicated: ${noKey.slice(0, 5).join(", ")}${noKey.length > 5 ? ", ..." : ""}`
      : `${selected.length} tables selected`,
    fix: `add a primary key to each table, give it key columns with ${setting("keys")}, or ` +
      `leave it out with ${setting("exclude")}`,
  };
}

/**
 * A query whose answer the user may not be allowed to see: its rows, or what it takes
 * (`unknown: needs privilege X`), so that status never reports what it could not see.
 */
async function visible(c: MysqlConn, sql: string): Promise<(string | null)[][] | string> {
  try {
    return (await c.query(sql)).rows;
  } catch (e) {
    if (!(e instanceof MysqlError) || e.code !== 1227) throw e;
    const needs = /you need \(at least one of\) the (.+?) privilege/i.exec(e.message)?.[1];
    return `unknown: needs privilege ${needs ?? `to run ${sql}`}`;
  }
}

export async function inspect(
  opts: MysqlSourceOptions,
  state: SavedState | null,
): Promise<Inspection> {
  const c = await connectTo(parseMysqlUrl(opts.url));
  try {
    const master = await visible(c, "SHOW MASTER STATUS");
    const [file, offset] = typeof master === "string" ? [master, master] : master[0] ?? [];
    const details: Inspection["details"] = {
      server_file: file ?? null,
      server_offset: typeof master === "string" ? master : Number(offset),
      saved_file: state?.position.file ?? null,
      saved_offset: state?.position.offset ?? null,
    };
    // A sync streaming now is registered as a replica with its --server-id (MariaDB 10.5+
    // shows the list only with REPLICATION MASTER ADMIN, which sync itself does not need).
    const hosts = await visible(c, "SHOW SLAVE HOSTS");
    const registered = typeof hosts === "string"
      ? hosts
      : hosts.some(([id]) => Number(id) === opts.driver.serverId);
    details.replica_registered = registered;
    let measured: number | undefined;
    if (state?.position.file && file && typeof master !== "string") {
      const lag = await lagBytes(c, state, file, Number(offset));
      if (lag !== undefined) details.lag_bytes = lag;
      if (typeof lag === "number") measured = lag;
    }
    return {
      lagBytes: measured,
      streaming: typeof registered === "string"
        ? { unknown: `${registered} to see whether a sync streams (SHOW SLAVE HOSTS)` }
        : registered
        ? { active: true, evidence: `a replica with this ${setting("serverId")} is registered` }
        : { active: false },
      details,
    };
  } finally {
    c.close();
  }
}

/**
 * Bytes from the saved position to the server's: the rest of our file plus every later one
 * (SHOW BINARY LOGS lists them in order; the last is the one being written).
 */
async function lagBytes(c: MysqlConn, state: SavedState, file: string, offset: number) {
  const logs = await visible(c, "SHOW BINARY LOGS");
  if (typeof logs === "string") return logs;
  const i = logs.findIndex(([name]) => name === state.position.file);
  if (i < 0) return undefined;
  let bytes = -Number(state.position.offset);
  for (const [name, size] of logs.slice(i)) {
    bytes += name === file ? offset : Number(size);
    if (name === file) break;
  }
  return Math.max(0, bytes);
}

/**
 * The privileges sync needs that `SHOW GRANTS` lines do not give (global ones; SELECT may
 * be on a database). MariaDB 10.5+ prints REPLICATION CLIENT as BINLOG MONITOR.
 */
export function missingGrants(lines: string[]): string[] {
  const text = lines.join("\n").toUpperCase();
  const global = lines.filter((l) => / ON \*\.\* /i.test(l)).join("\n").toUpperCase();
  if (/GRANT ALL PRIVILEGES ON \*\.\* /.test(global)) return [];
  const missing: string[] = [];
  if (!/REPLICATION SLAVE|REPLICATION REPLICA/.test(global)) missing.push("REPLICATION SLAVE");
  if (!/REPLICATION CLIENT|BINLOG MONITOR/.test(global)) missing.push("REPLICATION CLIENT");
  if (!/\bSELECT\b|ALL PRIVILEGES/.test(text)) missing.push("SELECT");
  return missing;
}
