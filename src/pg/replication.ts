/**
 * Streaming-replication CopyData messages (pure): XLogData and primary keepalive from the
 * server, standby status updates to it.
 */

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01). */
const PG_EPOCH_US = 946_684_800_000_000n;

export type ReplicationMessage =
  | { kind: "xlog"; walStart: bigint; walEnd: bigint; data: Uint8Array }
  | { kind: "keepalive"; walEnd: bigint; replyRequested: boolean };

export class ReplicationProtocolError extends Error {
  override name = "ReplicationProtocolError";
}

/** Parse the payload of one CopyData message on a replication connection. */
export function parseReplicationMessage(body: Uint8Array): ReplicationMessage {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const tag = body[0];
  if (tag === 0x77 /* w */) {
    if (body.length < 25) throw new ReplicationProtocolError("truncated XLogData message");
    return {
      kind: "xlog",
      walStart: v.getBigUint64(1),
      walEnd: v.getBigUint64(9),
      data: body.subarray(25),
    };
  }
  if (tag === 0x6b /* k */) {
    if (body.length < 18) throw new ReplicationProtocolError("truncated keepalive message");
    return { kind: "keepalive", walEnd: v.getBigUint64(1), replyRequested: body[17] === 1 };
  }
  throw new ReplicationProtocolError(
    `unknown replication message 0x${(tag ?? 0).toString(16)} (${body.length} bytes)`,
  );
}

/**
 * The pgoutput payload of an XLogData message, or undefined for any other kind: the row
 * path's shortcut past `parseReplicationMessage`, whose WAL positions it does not use.
 */
export function xlogPayload(body: Uint8Array): Uint8Array | undefined {
  return body[0] === 0x77 /* w */ && body.length >= 25 ? body.subarray(25) : undefined;
}

/** Standby status update: written = flushed = applied = `lsn`. */
export function standbyStatus(lsn: bigint, now = Date.now(), replyRequested = false): Uint8Array {
  const out = new Uint8Array(34);
  const v = new DataView(out.buffer);
  out[0] = 0x72; // r
  v.setBigUint64(1, lsn);
  v.setBigUint64(9, lsn);
  v.setBigUint64(17, lsn);
  v.setBigInt64(25, BigInt(now) * 1000n - PG_EPOCH_US);
  out[33] = replyRequested ? 1 : 0;
  return out;
}

/** A PostgreSQL timestamp (microseconds since 2000-01-01) as a Date. */
export function pgTimeToDate(us: bigint): Date {
  return new Date(Number((us + PG_EPOCH_US) / 1000n));
}
