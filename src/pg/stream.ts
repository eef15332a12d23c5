/**
 * Following a logical slot: START_REPLICATION, then each CopyData message decoded and
 * handed to the change stream, standby status sent on time and on request, and an idle
 * slot's position moved with the server's.
 */
import type { Position } from "../core/change.ts";
import type { Log } from "../core/log.ts";
import type { BatchOutput } from "../core/source.ts";
import { ChangeStream } from "../core/stream.ts";
import { startLogicalReplication } from "./commands.ts";
import { type PgConn, PgConnectionError } from "./conn.ts";
import { decodePgOutput, formatLsn } from "./pgoutput.ts";
import { errorFromBody } from "./protocol.ts";
import type { Relations } from "./relations.ts";
import { isRowChange } from "./row_change.ts";
import type { RecentXids } from "./visibility.ts";
import {
  parseReplicationMessage,
  pgTimeToDate,
  standbyStatus,
  xlogPayload,
} from "./replication.ts";

export interface SlotStream {
  repl: PgConn;
  log: Log;
  slot: string;
  publication: string;
  protoVersion: number;
  statusIntervalMs: number;
  relations: Relations;
  /** The newest position etcd holds: what the standby status reports. */
  confirmed(): bigint;
  /** The connection carries CopyData now (true) or no longer (false). */
  copying(on: boolean): void;
  /** Where committed transaction IDs are noted (for snapshot reads, see visibility.ts). */
  committed?: RecentXids;
  /**
   * The catalogue now: which of `oids` exist, by key table name, and the server's WAL
   * insert position once it was read (see `watchCatalog`).
   */
  catalog?(oids: number[]): Promise<{ lsn: bigint; present: Map<number, string> }>;
  /** How often the catalogue is polled for dropped or renamed tables (default 5 s). */
  catalogPollMs?: number;
}

/**
 * A replicated table the catalogue showed gone (or renamed), or held with its replica identity
 * fixed, before WAL position `lsn`.
 */
interface Recheck {
  lsn: bigint;
  oid: number;
  table: string;
}

/** Stream from `start` until `signal` aborts (resolves) or the connection fails (throws). */
export async function followSlot(
  s: SlotStream,
  start: bigint,
  out: BatchOutput,
  signal: AbortSignal,
): Promise<void> {
  const { repl, relations } = s;
  await startLogicalReplication(repl, {
    slot: s.slot,
    from: start,
    protoVersion: s.protoVersion,
    publication: s.publication,
  });
  s.copying(true);
  s.log.info("streaming", { from: formatLsn(start), proto_version: s.protoVersion });
  const sendStatus = () => {
    if (!repl.closed) repl.sendCopyData(standbyStatus(s.confirmed())).catch(() => {});
  };
  const timer = setInterval(sendStatus, s.statusIntervalMs);
  const onAbort = () => {
    sendStatus();
    // Let the final status go out, then break the blocked read.
    setTimeout(() => repl.abort(), 50);
  };
  signal.addEventListener("abort", onAbort, { once: true });
  // A stop that came while connecting would otherwise never end the read.
  if (signal.aborted) onAbort();
  const cs = new ChangeStream(out);
  // End of the last transaction handed to the sink, and of the last idle heartbeat.
  let lastEnd = start;
  let lastBeat = Date.now();
  let xid = 0;
  const watch = watchCatalog(s, cs);
  try {
    for (;;) {
      const m = await repl.readMessage();
      if (m.type === 0x45 /* E */) throw errorFromBody(m.body);
      if (m.type === 0x63 /* c */) throw new PgConnectionError("the server ended replication");
      if (m.type !== 0x64 /* d */) continue;
      // Row changes, most of the stream, go straight from their bytes to cells and keys.
      const data = xlogPayload(m.body);
      if (data !== undefined && isRowChange(data)) {
        relations.row(data, cs);
        if (cs.full) await cs.settle();
        continue;
      }
      const rm = parseReplicationMessage(m.body);
      if (rm.kind === "keepalive") {
        if (rm.replyRequested) sendStatus();
        if (!cs.open) await watch.remove(rm.walEnd, rm.walEnd > lastEnd ? rm.walEnd : lastEnd);
        // Nothing of ours in flight: move the saved position with the server's, so the
        // slot does not hold WAL for changes to tables we do not replicate.
        const idle = !cs.open && s.confirmed() >= lastEnd && rm.walEnd > lastEnd;
        if (idle && Date.now() - lastBeat >= s.statusIntervalMs) {
          lastEnd = rm.walEnd;
          lastBeat = Date.now();
          await cs.heartbeat({ lsn: formatLsn(rm.walEnd) });
        }
        continue;
      }
      const msg = decodePgOutput(rm.data, false);
      if (msg.tag === "begin") {
        xid = msg.xid;
        // Commits after the catalogue showed them gone (or fixed): every change to them is in.
        await watch.remove(msg.finalLsn, lastEnd);
      } else if (msg.tag === "commit") s.committed?.add(xid);
      const end = await apply(msg, relations, cs);
      if (end !== undefined) lastEnd = end;
    }
  } catch (e) {
    if (signal.aborted) return;
    throw e;
  } finally {
    watch.stop();
    clearInterval(timer);
    signal.removeEventListener("abort", onAbort);
    s.copying(false);
  }
}

/** One pgoutput message into the change stream; a commit returns its end position. */
async function apply(
  msg: ReturnType<typeof decodePgOutput>,
  relations: Relations,
  cs: ChangeStream,
): Promise<bigint | undefined> {
  switch (msg.tag) {
    case "begin":
      cs.begin();
      return undefined;
    case "commit": {
      const position = { lsn: formatLsn(msg.endLsn) };
      await finish(relations, cs, position, pgTimeToDate(msg.commitTime));
      return msg.endLsn;
    }
    case "relation":
      await relations.relation(msg, cs);
      return undefined;
    case "truncate":
      relations.truncate(msg, cs);
      await cs.settle();
      return undefined;
    default:
      return undefined; // origin, type, message: nothing to replicate
  }
}

/** The open transaction committed, with the tables it re-snapshots, holds or loses. */
async function finish(relations: Relations, cs: ChangeStream, position: Position, time?: Date) {
  const again = relations.takeResnapshot();
  const also = relations.takeHeldAndGone();
  if (again.length || also.hold || also.gone) {
    await cs.commitResnapshot(position, time, again, also);
  } else await cs.commit(position, time);
}

/** The tables the catalogue showed gone or fixed, removed or released where the stream stands. */
async function recheckTables(
  due: Recheck[],
  relations: Relations,
  cs: ChangeStream,
  at: bigint,
): Promise<void> {
  cs.begin();
  for (const v of due) await relations.recheck(v.oid, v.table, cs);
  await finish(relations, cs, { lsn: formatLsn(at) });
}

/**
 * pgoutput carries no DDL: a dropped table sends nothing, and a renamed one tells only with
 * its next change. So the catalogue is polled for the streamed tables; one it shows gone or
 * renamed is noted with the WAL insert position read after it, which lies past the DROP's
 * (or RENAME's) commit and so past every change to the table (they hold locks the DDL waits
 * for). The stream removes it once it has passed that position: a transaction committed
 * after it begins, or a keepalive reports it sent. A status that asks for a reply brings
 * that keepalive when the server is idle. A held table whose identity carries the key again
 * with no change since (no Relation message to tell) is released the same way: read before
 * the position, so every change made under the old identity (ALTER waits for their writers)
 * lies before it and stays unapplied, and its snapshot starts where the stream passed it.
 * `remove(at, pos)`: the tables shown gone or fixed before `at` are removed or released, with
 * the saved position at `pos` (where the stream stands).
 */
function watchCatalog(s: SlotStream, cs: ChangeStream) {
  let pending: Recheck[] = [];
  const remove = async (at: bigint, pos: bigint) => {
    const now = pending.filter((v) => v.lsn <= at);
    if (!now.length) return;
    pending = pending.filter((v) => v.lsn > at);
    await recheckTables(now, s.relations, cs, pos);
  };
  const catalog = s.catalog;
  if (!catalog) return { remove, stop() {} };
  let busy = false;
  const poll = async () => {
    if (busy || s.repl.closed) return;
    busy = true;
    try {
      // Before the position is read: it must lie past the identity's fix.
      const fixed = await s.relations.fixedHeld();
      const known = s.relations.streamed();
      const { lsn, present } = await catalog([...known.keys()]);
      for (const [oid, table] of known) {
        if (pending.some((v) => v.oid === oid)) continue;
        const gone = present.get(oid) !== table;
        if (!gone && fixed.get(oid) !== table) continue;
        s.log.info(
          gone
            ? "table gone from the catalogue: removing it where the stream passes"
            : "replica identity carries the key again: releasing the table where the stream passes",
          { table, at: formatLsn(lsn) },
        );
        pending.push({ lsn, oid, table });
      }
      if (pending.length) {
        await s.repl.sendCopyData(standbyStatus(s.confirmed(), Date.now(), true));
      }
    } catch (e) {
      // A lost connection ends the stream's own read; the next poll tries again.
      s.log.debug("catalogue poll failed", { reason: e instanceof Error ? e.message : String(e) });
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(poll, s.catalogPollMs ?? 5000);
  return { remove, stop: () => clearInterval(timer) };
}
