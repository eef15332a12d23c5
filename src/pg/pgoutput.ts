/**
 * pgoutput logical replication messages (protocol versions 1–4), decoded in one pass over
 * the bytes of an XLogData payload. Pure: bytes in, values out.
 */
import { PgOutputError, Reader, type TupleValue } from "./pgoutput_reader.ts";

export { PgOutputError, type TupleValue };

export interface RelationColumn {
  name: string;
  typeOid: number;
  typmod: number;
  /** Part of the replica identity. */
  key: boolean;
}

export type PgOutputMessage =
  | { tag: "begin"; finalLsn: bigint; commitTime: bigint; xid: number }
  | { tag: "commit"; flags: number; commitLsn: bigint; endLsn: bigint; commitTime: bigint }
  | { tag: "origin"; lsn: bigint; name: string }
  | {
    tag: "relation";
    xid?: number;
    relationId: number;
    schema: string;
    name: string;
    replicaIdentity: string;
    columns: RelationColumn[];
  }
  | { tag: "type"; xid?: number; typeOid: number; schema: string; name: string }
  | { tag: "insert"; xid?: number; relationId: number; row: TupleValue[] }
  | {
    tag: "update";
    xid?: number;
    relationId: number;
    oldKind?: "K" | "O";
    old?: TupleValue[];
    row: TupleValue[];
  }
  | { tag: "delete"; xid?: number; relationId: number; oldKind: "K" | "O"; old: TupleValue[] }
  | { tag: "truncate"; xid?: number; options: number; relationIds: number[] }
  | {
    tag: "message";
    xid?: number;
    transactional: boolean;
    lsn: bigint;
    prefix: string;
    content: Uint8Array;
  }
  | { tag: "stream_start"; xid: number; first: boolean }
  | { tag: "stream_stop" }
  | {
    tag: "stream_commit";
    xid: number;
    flags: number;
    commitLsn: bigint;
    endLsn: bigint;
    commitTime: bigint;
  }
  | { tag: "stream_abort"; xid: number; subXid: number; abortLsn?: bigint; abortTime?: bigint };

/**
 * Decode one pgoutput message. `inStream` is true between Stream Start and Stream Stop,
 * where row messages carry the xid of their (in-progress) transaction.
 */
export function decodePgOutput(data: Uint8Array, inStream: boolean): PgOutputMessage {
  if (data.length === 0) throw new PgOutputError("empty pgoutput message");
  const r = new Reader(data, String.fromCharCode(data[0]));
  const msg = decode(r, data, inStream);
  if (r.i !== data.length) {
    throw new PgOutputError(
      `pgoutput '${r.tag}' message has ${data.length - r.i} unexpected bytes at offset ${r.i}`,
    );
  }
  return msg;
}

function decode(r: Reader, data: Uint8Array, inStream: boolean): PgOutputMessage {
  const tag = r.tag;
  switch (tag) {
    case "B":
      return { tag: "begin", finalLsn: r.u64(), commitTime: r.i64(), xid: r.u32() };
    case "C":
      return {
        tag: "commit",
        flags: r.u8(),
        commitLsn: r.u64(),
        endLsn: r.u64(),
        commitTime: r.i64(),
      };
    case "O":
      return { tag: "origin", lsn: r.u64(), name: r.cstr() };
    case "R":
      return relation(r, inStream ? r.u32() : undefined);
    case "Y": {
      const x = inStream ? r.u32() : undefined;
      return { tag: "type", xid: x, typeOid: r.u32(), schema: r.cstr(), name: r.cstr() };
    }
    case "I":
      return insert(r, inStream ? r.u32() : undefined);
    case "U":
      return update(r, inStream ? r.u32() : undefined);
    case "D":
      return remove(r, inStream ? r.u32() : undefined);
    case "T":
      return truncate(r, inStream ? r.u32() : undefined);
    case "M":
      return message(r, inStream ? r.u32() : undefined);
    case "S":
      return { tag: "stream_start", xid: r.u32(), first: r.u8() === 1 };
    case "E":
      return { tag: "stream_stop" };
    case "c":
      return {
        tag: "stream_commit",
        xid: r.u32(),
        flags: r.u8(),
        commitLsn: r.u64(),
        endLsn: r.u64(),
        commitTime: r.i64(),
      };
    case "A":
      return streamAbort(r, data);
    default:
      throw new PgOutputError(
        `unknown pgoutput message '${tag}' (0x${data[0].toString(16).padStart(2, "0")}) ` +
          `at offset 0 of ${data.length} bytes`,
      );
  }
}

// One function per message with a body worth its own name; `xid` is the transaction id
// that precedes the body inside a streamed transaction.

function relation(r: Reader, xid: number | undefined): PgOutputMessage {
  const relationId = r.u32();
  const schema = r.cstr();
  const name = r.cstr();
  const replicaIdentity = String.fromCharCode(r.u8());
  const n = r.i16();
  if (n < 0) throw new PgOutputError("negative column count in pgoutput 'R' message");
  const columns: RelationColumn[] = [];
  for (let c = 0; c < n; c++) {
    const flags = r.u8();
    columns.push({ name: r.cstr(), typeOid: r.u32(), typmod: r.i32(), key: (flags & 1) === 1 });
  }
  return { tag: "relation", xid, relationId, schema, name, replicaIdentity, columns };
}

/** Tuple kinds: (K)ey or (O)ld before a change, (N)ew after. */
const TUPLE_K = 0x4b, TUPLE_O = 0x4f, TUPLE_N = 0x4e;

function insert(r: Reader, xid: number | undefined): PgOutputMessage {
  const relationId = r.u32();
  if (r.u8() !== TUPLE_N) throw new PgOutputError("pgoutput 'I' message without a new tuple");
  return { tag: "insert", xid, relationId, row: r.tuple() };
}

function update(r: Reader, xid: number | undefined): PgOutputMessage {
  const relationId = r.u32();
  let kind = r.u8();
  let oldKind: "K" | "O" | undefined;
  let old: TupleValue[] | undefined;
  if (kind === TUPLE_K || kind === TUPLE_O) {
    oldKind = kind === TUPLE_K ? "K" : "O";
    old = r.tuple();
    kind = r.u8();
  }
  if (kind !== TUPLE_N) throw new PgOutputError("pgoutput 'U' message without a new tuple");
  return { tag: "update", xid, relationId, oldKind, old, row: r.tuple() };
}

function remove(r: Reader, xid: number | undefined): PgOutputMessage {
  const relationId = r.u32();
  const kind = r.u8();
  if (kind !== TUPLE_K && kind !== TUPLE_O) {
    throw new PgOutputError("pgoutput 'D' message without an old tuple");
  }
  return {
    tag: "delete",
    xid,
    relationId,
    oldKind: kind === TUPLE_K ? "K" : "O",
    old: r.tuple(),
  };
}

function truncate(r: Reader, xid: number | undefined): PgOutputMessage {
  const n = r.i32();
  const options = r.u8();
  if (n < 0) throw new PgOutputError("negative relation count in pgoutput 'T' message");
  const relationIds: number[] = [];
  for (let k = 0; k < n; k++) relationIds.push(r.u32());
  return { tag: "truncate", xid, options, relationIds };
}

function message(r: Reader, xid: number | undefined): PgOutputMessage {
  const flags = r.u8();
  const lsn = r.u64();
  const prefix = r.cstr();
  const content = r.bytes(r.i32());
  return { tag: "message", xid, transactional: (flags & 1) === 1, lsn, prefix, content };
}

function streamAbort(r: Reader, data: Uint8Array): PgOutputMessage {
  const xid = r.u32();
  const subXid = r.u32();
  // Protocol 4 with parallel streaming adds the abort LSN and time.
  if (data.length - r.i === 16) {
    return { tag: "stream_abort", xid, subXid, abortLsn: r.u64(), abortTime: r.i64() };
  }
  return { tag: "stream_abort", xid, subXid };
}

/** An LSN as PostgreSQL writes it: `16/B374D848`. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${
    (lsn & 0xffffffffn).toString(16).toUpperCase()
  }`;
}

export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw new PgOutputError(`not an LSN: ${JSON.stringify(text).slice(0, 40)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}
