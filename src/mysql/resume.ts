/** Whether a saved binlog position can be streamed on from this server (pure checks and queries). */
import type { MysqlConn } from "./conn.ts";
import { isMysqlGtidSet, newestPerDomain, parseMariaGtids } from "./gtid.ts";
import { sqlString } from "./schema.ts";

/** Whether binlog `a` comes after `b` (same base name, numbered suffix). */
export function binlogAfter(a: string, b: string): boolean {
  const [, baseA, numA] = /^(.*)\.(\d+)$/.exec(a) ?? [];
  const [, baseB, numB] = /^(.*)\.(\d+)$/.exec(b) ?? [];
  return baseA !== undefined && baseA === baseB && Number(numA) > Number(numB);
}

/** The GTID text to resume from ("" when the position has none this server can use). */
export function resumableGtid(mariadb: boolean, gtid: unknown): string {
  if (typeof gtid !== "string" || !gtid) return "";
  if (mariadb) return parseMariaGtids(gtid).length ? gtid : "";
  return isMysqlGtidSet(gtid) ? gtid : "";
}

/**
 * Why the server cannot stream from after GTID position `gtid` (undefined when it can):
 * a transaction of it the server never logged (it is behind etcd), or binlogs purged past it.
 */
export async function gtidGap(
  conn: MysqlConn,
  mariadb: boolean,
  gtid: string,
): Promise<string | undefined> {
  if (!mariadb) {
    const q = sqlString(gtid);
    const r = await conn.query(
      `SELECT GTID_SUBSET(${q}, @@GLOBAL.gtid_executed), GTID_SUBSET(@@GLOBAL.gtid_purged, ${q})`,
    );
    if (r.rows[0][0] !== "1") {
      return `the server has not executed all of ${gtid} (it is behind etcd)`;
    }
    if (r.rows[0][1] !== "1") return `binlogs holding transactions after ${gtid} were purged`;
    return undefined;
  }
  const ours = newestPerDomain(parseMariaGtids(gtid));
  const state = await conn.query("SELECT @@global.gtid_binlog_state");
  // gtid_binlog_state keeps the last GTID of each (domain, server) pair: ours is logged
  // when its domain's newest sequence number reaches it.
  const logged = newestPerDomain(parseMariaGtids(state.rows[0][0] ?? ""));
  for (const [domain, g] of ours) {
    if ((logged.get(domain)?.seq ?? -1n) < g.seq) {
      return `the server has not logged GTID ${domain}-${g.server}-${g.seq} (it is behind etcd)`;
    }
  }
  // The oldest binlog starts with the GTID state at its start: anything older is purged.
  const logs = await conn.query("SHOW BINARY LOGS");
  const oldest = logs.rows[0]?.[0];
  if (!oldest) return "the server has no binary logs";
  const events = await conn.query(`SHOW BINLOG EVENTS IN ${sqlString(oldest)} LIMIT 5`);
  const list = events.rows.find((r) => r[2] === "Gtid_list")?.[5] ?? "[]";
  for (const [domain, first] of newestPerDomain(parseMariaGtids(list.replace(/^\[|\]$/g, "")))) {
    const mine = ours.get(domain);
    if (!mine || mine.seq < first.seq) {
      return `binlogs holding GTIDs after ${
        mine ? `${domain}-${mine.server}-${mine.seq}` : `domain ${domain}`
      } were purged`;
    }
  }
  return undefined;
}
