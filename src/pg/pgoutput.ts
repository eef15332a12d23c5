/**
 * pgoutput logical replication messages (protocol versions 1–4), decoded in one pass over
 * the bytes of an XLogData payload. Pure: bytes in, values out.
 */
import { UNCHANGED } from "../core/change.ts";
import { utf8Slice } from "../core/text.ts";

/** A column value: text (as PostgreSQL prints it), null, or unchanged TOAST. */
export type TupleValue = string | null | typeof UNCHANGED;

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

export class PgOutputError extends Error {
  override name = "PgOutputError";
}

const dec = new TextDecoder("utf-8", { fatal: false });

/**
 * Below this many bytes left in a message, text values are read one by one; above it, the
 * rest of the message is decoded by one call and values are cut from that string (a
 * decoder call costs as much as reading a few dozen bytes in a JS loop, whatever the length).
 */
const WHOLE_MIN = 48;

/** Reads one message; every read is bounds-checked so garbage fails cleanly. */
class Reader {
  i = 1;
  /** The message from byte `#base` on, decoded once; "" when not (yet) decoded. */
  #rest = "";
  #base = -1;
  constructor(readonly b: Uint8Array, readonly tag: string) {}
  need(n: number) {
    if (this.i + n > this.b.length) {
      throw new PgOutputError(
        `truncated pgoutput '${this.tag}' message: need ${n} bytes at offset ${this.i} of ${this.b.length}`,
      );
    }
  }
  u8(): number {
    this.need(1);
    return this.b[this.i++];
  }
  i16(): number {
    this.need(2);
    const b = this.b, i = this.i;
    this.i += 2;
    return ((b[i] << 24) | (b[i + 1] << 16)) >> 16;
  }
  u32(): number {
    return this.i32() >>> 0;
  }
  i32(): number {
    this.need(4);
    const b = this.b, i = this.i;
    this.i += 4;
    return (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3];
  }
  u64(): bigint {
    this.need(8);
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }
  i64(): bigint {
    return BigInt.asIntN(64, this.u64());
  }
  cstr(): string {
    const end = this.b.indexOf(0, this.i);
    if (end < 0) {
      throw new PgOutputError(
        `unterminated string at offset ${this.i} in pgoutput '${this.tag}' message`,
      );
    }
    const s = dec.decode(this.b.subarray(this.i, end));
    this.i = end + 1;
    return s;
  }
  bytes(n: number): Uint8Array {
    if (n < 0) throw new PgOutputError(`negative length in pgoutput '${this.tag}' message`);
    this.need(n);
    const s = this.b.slice(this.i, this.i + n);
    this.i += n;
    return s;
  }
  /** `len` bytes of UTF-8 at the cursor (bounds already checked). */
  text(len: number): string {
    const b = this.b;
    const start = this.i;
    this.i += len;
    if (this.#base < 0 && b.length - start >= WHOLE_MIN) this.#decodeRest(start);
    if (this.#rest) return this.#rest.substring(start - this.#base, this.i - this.#base);
    // Short ASCII values (most keys and numbers) skip the TextDecoder call.
    if (len <= 16) {
      let s = "";
      for (let k = start; k < start + len; k++) {
        const c = b[k];
        if (c >= 0x80) return dec.decode(b.subarray(start, start + len));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return dec.decode(b.subarray(start, start + len));
  }
  /**
   * Decode the message from `start` to its end in one call. Its string is used only when
   * it has one UTF-16 unit per byte: then every byte is ASCII or an invalid byte decoded
   * to U+FFFD on its own (any valid sequence of 2 or more bytes, or invalid run of 2 or
   * more, makes the string shorter), so each value's substring is what decoding that
   * value's bytes alone gives.
   */
  #decodeRest(start: number) {
    this.#base = start;
    const s = utf8Slice(this.b, start, this.b.length);
    if (s.length === this.b.length - start) this.#rest = s;
  }
  tuple(): TupleValue[] {
    const n = this.i16();
    if (n < 0) throw new PgOutputError(`negative column count in pgoutput '${this.tag}' message`);
    const out = new Array<TupleValue>(n);
    for (let c = 0; c < n; c++) {
      const kind = this.u8();
      if (kind === 0x74 /* t */) {
        const len = this.i32();
        if (len < 0) {
          throw new PgOutputError(
            `negative value length ${len} in pgoutput '${this.tag}' message at offset ${
              this.i - 4
            }`,
          );
        }
        this.need(len);
        out[c] = this.text(len);
      } else if (kind === 0x6e /* n */) out[c] = null;
      else if (kind === 0x75 /* u */) out[c] = UNCHANGED;
      else if (kind === 0x62 /* b */) {
        throw new PgOutputError(
          `binary value in pgoutput '${this.tag}' message at offset ${
            this.i - 1
          } (sync asks for text)`,
        );
      } else {
        throw new PgOutputError(
          `unknown tuple value kind 0x${
            kind.toString(16)
          } in pgoutput '${this.tag}' message at offset ${this.i - 1}`,
        );
      }
    }
    return out;
  }
}

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
