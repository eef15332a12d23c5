/**
 * Following a logical slot: START_REPLICATION, then each CopyData message decoded and
 * handed to the change stream, standby status sent on time and on request, and an idle
 * slot's position moved with the server's.
 */
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
import { parseReplicationMessage, pgTimeToDate, standbyStatus } from "./replication.ts";

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
  try {
    for (;;) {
      const m = await repl.readMessage();
      if (m.type === 0x45 /* E */) throw errorFromBody(m.body);
      if (m.type === 0x63 /* c */) throw new PgConnectionError("the server ended replication");
      if (m.type !== 0x64 /* d */) continue;
      const rm = parseReplicationMessage(m.body);
      if (rm.kind === "keepalive") {
        if (rm.replyRequested) sendStatus();
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
      // Row changes, most of the stream, go straight from their bytes to cells and keys.
      if (isRowChange(rm.data)) {
        relations.row(rm.data, cs);
        await cs.settle();
        continue;
      }
      const msg = decodePgOutput(rm.data, false);
      if (msg.tag === "begin") xid = msg.xid;
      else if (msg.tag === "commit") s.committed?.add(xid);
      const end = await apply(msg, relations, cs);
      if (end !== undefined) lastEnd = end;
    }
  } catch (e) {
    if (signal.aborted) return;
    throw e;
  } finally {
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
      const time = pgTimeToDate(msg.commitTime);
      const again = relations.takeResnapshot();
      if (again.length && !relations.resync) await cs.commitResnapshot(position, time, again);
      else await cs.commit(position, time, relations.resync ?? again[0]);
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
