/**
 * How sync asks a MySQL or MariaDB server for its binlog, as a replica does: the session
 * settings a replica sets, COM_REGISTER_SLAVE, then the dump request from a file and
 * offset or from a GTID position.
 */
import type { MysqlConn } from "./conn.ts";
import { encodeGtidSet, parseGtidSet } from "./gtid.ts";
import { sqlString } from "./schema.ts";

export interface BinlogRequest {
  mariadb: boolean;
  serverId: number;
  /** Where to start: a file and offset, or after the transactions of a GTID set. */
  from: { file: string; offset: number } | { gtid: string };
}

/** The raw binlog events from the request's position on; the connection is the stream's. */
export async function requestBinlog(
  c: MysqlConn,
  r: BinlogRequest,
): Promise<AsyncIterableIterator<Uint8Array>> {
  // Announces that sync understands MariaDB's GTID and annotate events (capability 4).
  if (r.mariadb) await c.query("SET @mariadb_slave_capability = 4");
  if ("gtid" in r.from && r.mariadb) {
    await c.query(`SET @slave_connect_state = ${sqlString(r.from.gtid)}`);
  }
  // Events carry the checksum the server writes; heartbeats every 5 s while idle.
  await c.query("SET @master_binlog_checksum = @@global.binlog_checksum");
  await c.query("SET @master_heartbeat_period = 5000000000");
  await c.registerReplica(r.serverId);
  if (!("gtid" in r.from)) {
    return c.binlogDump({ file: r.from.file, position: r.from.offset, serverId: r.serverId });
  }
  if (!r.mariadb) {
    return c.binlogDumpGtid({
      gtidSet: encodeGtidSet(parseGtidSet(r.from.gtid)),
      serverId: r.serverId,
    });
  }
  // MariaDB finds the file from @slave_connect_state; the first ROTATE names it.
  return c.binlogDump({ file: "", position: 4, serverId: r.serverId });
}
