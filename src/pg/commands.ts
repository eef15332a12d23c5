/**
 * The streaming-replication commands sync sends, one function each (PostgreSQL docs:
 * "Streaming Replication Protocol"), on a connection opened with `replication=database`.
 */
import { ident, literal, type PgConn } from "./conn.ts";
import { formatLsn, parseLsn } from "./pgoutput.ts";

export interface SystemInfo {
  /** The cluster's system identifier (stays the same across physical replicas). */
  systemId: string;
  timeline: number;
  /** Where the server's WAL ends now (flushed, or replayed on a standby). */
  walEnd: bigint;
}

export async function identifySystem(conn: PgConn): Promise<SystemInfo> {
  const [systemId, timeline, walEnd] = (await conn.query("IDENTIFY_SYSTEM")).rows[0];
  return { systemId: systemId!, timeline: Number(timeline), walEnd: parseLsn(walEnd!) };
}

/** The history file of `timeline` (its ancestors and where each ended); "" for timeline 1. */
export async function timelineHistory(conn: PgConn, timeline: number): Promise<string> {
  if (timeline <= 1) return "";
  return (await conn.query(`TIMELINE_HISTORY ${timeline}`)).rows[0]?.[1] ?? "";
}

export interface CreatedSlot {
  /** The first position the slot decodes from. */
  consistentPoint: string;
  /** The exported snapshot: the database exactly as of `consistentPoint`. */
  snapshot: string;
}

/**
 * A pgoutput slot, exporting its snapshot for the dump. `failover` (PostgreSQL 17+) marks it
 * for standbys to keep in step (`sync_replication_slots`); it is set here, not by a later
 * ALTER_REPLICATION_SLOT, which would need this connection and so end the snapshot.
 */
export async function createLogicalSlot(
  conn: PgConn,
  slot: string,
  o: { failover?: boolean } = {},
): Promise<CreatedSlot> {
  const r = await conn.query(
    `CREATE_REPLICATION_SLOT ${ident(slot)} LOGICAL pgoutput ` +
      (o.failover ? "(SNAPSHOT 'export', FAILOVER true)" : "EXPORT_SNAPSHOT"),
  );
  const [, consistentPoint, snapshot] = r.rows[0];
  return { consistentPoint: consistentPoint!, snapshot: snapshot! };
}

export async function dropSlot(conn: PgConn, slot: string): Promise<void> {
  await conn.query(`DROP_REPLICATION_SLOT ${ident(slot)}`);
}

/** Start decoding `slot` from `from` with pgoutput; the connection then carries CopyData. */
export async function startLogicalReplication(
  conn: PgConn,
  o: { slot: string; from: bigint; protoVersion: number; publication: string },
): Promise<void> {
  await conn.startCopyBoth(
    `START_REPLICATION SLOT ${ident(o.slot)} LOGICAL ${formatLsn(o.from)} ` +
      `(proto_version '${o.protoVersion}', publication_names ${literal(ident(o.publication))})`,
  );
}
