/**
 * How sync asks a MySQL or MariaDB server for its binlog, as a replica does: the session
 * settings a replica sets, COM_REGISTER_SLAVE, then the dump request from a file and
 * offset or from a GTID position.
 */
import type { MysqlConn } from "./conn.ts";
import { isEof, MysqlConnectionError, parseErr } from "./packets.ts";
import { encodeGtidSet, parseGtidSet } from "./gtid.ts";
import { sqlString } from "./schema.ts";

export interface BinlogRequest {
  mariadb: boolean;
  serverId: number;
  /** Where to start: a file and offset, or after the transactions of a GTID set. */
  from: { file: string; offset: number } | { gtid: string };
}

const COM_BINLOG_DUMP = 0x12, COM_BINLOG_DUMP_GTID = 0x1e;

/**
 * The raw binlog events from the request's position on; the connection is the stream's.
 * Each event is a view of the connection's read buffer, valid until the next is asked for
 * (a copy per event was the stream's largest cost of its own): decode it before that.
 */
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
  await registerReplica(c, r.serverId);
  if (!("gtid" in r.from)) {
    const o = { file: r.from.file, position: r.from.offset, serverId: r.serverId };
    await c.command(COM_BINLOG_DUMP, dumpBody(o));
  } else if (!r.mariadb) {
    const gtidSet = encodeGtidSet(parseGtidSet(r.from.gtid));
    await c.command(COM_BINLOG_DUMP_GTID, dumpGtidBody({ gtidSet, serverId: r.serverId }));
  } else {
    // MariaDB finds the file from @slave_connect_state; the first ROTATE names it.
    await c.command(COM_BINLOG_DUMP, dumpBody({ file: "", position: 4, serverId: r.serverId }));
  }
  return binlogEvents(c, false);
}

const enc = new TextEncoder();

/** COM_REGISTER_SLAVE: show up in SHOW SLAVE HOSTS as this server id. */
export async function registerReplica(c: MysqlConn, serverId: number): Promise<void> {
  const host = enc.encode("sync");
  const body = new Uint8Array(4 + 1 + host.length + 1 + 1 + 2 + 4 + 4);
  const v = new DataView(body.buffer);
  v.setUint32(0, serverId, true);
  body[4] = host.length;
  body.set(host, 5);
  // user, password: empty; port 0; rank 0; master id 0.
  await c.command(0x15, body);
  const p = await c.readPacket();
  if (p[0] === 0xff) throw parseErr(p);
}

/**
 * COM_BINLOG_DUMP_GTID (MySQL): the events after the transactions in `gtidSet` (its
 * binary form, see gtid.ts), from whichever binlog holds them; otherwise as binlogDump.
 */
export async function* binlogDumpGtid(
  c: MysqlConn,
  o: { gtidSet: Uint8Array; serverId: number; nonBlock?: boolean },
): AsyncIterableIterator<Uint8Array> {
  await c.command(COM_BINLOG_DUMP_GTID, dumpGtidBody(o));
  yield* binlogEvents(c, true);
}

function dumpGtidBody(o: { gtidSet: Uint8Array; serverId: number; nonBlock?: boolean }) {
  // flags (2), server id (4), file name length (4) and name (none), position (8),
  // GTID data length (4) and data; BINLOG_THROUGH_GTID = 0x04.
  const body = new Uint8Array(22 + o.gtidSet.length);
  const v = new DataView(body.buffer);
  v.setUint16(0, 0x04 | (o.nonBlock ? 1 : 0), true);
  v.setUint32(2, o.serverId, true);
  v.setUint32(6, 0, true);
  v.setBigUint64(10, 4n, true);
  v.setUint32(18, o.gtidSet.length, true);
  body.set(o.gtidSet, 22);
  return body;
}

/**
 * COM_BINLOG_DUMP: yields each event (header + body, without the leading OK byte; a copy
 * the caller may keep). An EOF packet (nonBlock, at the end of the log) ends it; an ERR
 * packet throws MysqlError.
 */
export async function* binlogDump(
  c: MysqlConn,
  o: { file: string; position: number; serverId: number; nonBlock?: boolean },
): AsyncIterableIterator<Uint8Array> {
  await c.command(COM_BINLOG_DUMP, dumpBody(o));
  yield* binlogEvents(c, true);
}

function dumpBody(o: { file: string; position: number; serverId: number; nonBlock?: boolean }) {
  const name = enc.encode(o.file);
  const body = new Uint8Array(10 + name.length);
  const v = new DataView(body.buffer);
  v.setUint32(0, o.position, true);
  v.setUint16(4, o.nonBlock ? 1 : 0, true);
  v.setUint32(6, o.serverId, true);
  body.set(name, 10);
  return body;
}

/** The events after a dump request: copies, or views valid until the next is asked for. */
async function* binlogEvents(c: MysqlConn, copy: boolean): AsyncIterableIterator<Uint8Array> {
  for (;;) {
    const p = c.bufferedPacket() ?? await c.readPacket();
    if (p[0] === 0x00) yield copy ? p.slice(1) : p.subarray(1);
    else if (p[0] === 0xff) throw parseErr(p);
    else if (isEof(p)) return;
    else throw new MysqlConnectionError(`unexpected packet 0x${p[0].toString(16)} in binlog`);
  }
}
