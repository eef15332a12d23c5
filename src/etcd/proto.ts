/**
 * Protocol Buffers wire format: the few primitives etcd's messages need (varints,
 * length-delimited fields, nested messages). Pure: bytes in, values out.
 *
 * Integers are JavaScript numbers, exact below 2^53 (revisions, counts); 64-bit identifiers
 * (lease IDs) go through `bigVarint` as decimal strings, as the JSON gateway gives them.
 */

const enc = new TextEncoder();

export const VARINT = 0;
export const I64 = 1;
export const LEN = 2;
export const I32 = 5;

/**
 * Strings up to this many units (keys) are written by a loop while ASCII (see `#utf8`);
 * longer ones (row values) by TextEncoder, faster per byte. Measured on 128-put
 * transactions of the benchmark's rows.
 */
const ASCII_LOOP_MAX = 32;

/** A growable buffer that encodes fields in order; nested messages are length-patched. */
export class ProtoWriter {
  buf: Uint8Array;
  pos = 0;

  constructor(initial = 1024) {
    this.buf = new Uint8Array(initial);
  }

  #room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  #rawVarint(n: number): void {
    this.#room(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  #tag(field: number, wire: number): void {
    this.#rawVarint(field * 8 + wire);
  }

  /**
   * A non-negative integer field. Zero is proto3's default and is left out, except for a
   * oneof member (`present`), where leaving it out would mean "not set".
   */
  uint(field: number, n: number | undefined, present = false): this {
    if (n === undefined || (n === 0 && !present)) return this;
    if (n < 0 || !Number.isSafeInteger(n)) throw new RangeError(`not a varint: ${n}`);
    this.#tag(field, VARINT);
    this.#rawVarint(n);
    return this;
  }

  /** A 64-bit integer given as decimal text (lease IDs), two's complement when negative. */
  int64(field: number, s: string | undefined): this {
    if (!s || s === "0") return this;
    let v = BigInt.asUintN(64, BigInt(s));
    this.#tag(field, VARINT);
    this.#room(10);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
    return this;
  }

  bool(field: number, b: boolean | undefined): this {
    if (!b) return this;
    this.#tag(field, VARINT);
    this.#rawVarint(1);
    return this;
  }

  /** Bytes, or a string written as UTF-8 straight into the buffer; empty as for `uint`. */
  bytes(field: number, v: string | Uint8Array | undefined, present = false): this {
    if (v === undefined || (v.length === 0 && !present)) return this;
    this.#tag(field, LEN);
    if (typeof v !== "string") {
      this.#rawVarint(v.length);
      this.#room(v.length);
      this.buf.set(v, this.pos);
      this.pos += v.length;
      return this;
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit: reserve that. The length is reserved for
    // ASCII (one byte a unit, the usual keys and JSON), so it is patched without a move.
    this.#room(5 + v.length * 3);
    const lenAt = this.pos;
    this.pos += lenBytes(v.length);
    const written = this.#utf8(v);
    this.#patchLength(lenAt, this.pos, written);
    this.pos += written;
    return this;
  }

  /**
   * `s` as UTF-8 at `pos` (room reserved), returning its length. Short strings are copied
   * by a loop while they are ASCII: cheaper than TextEncoder's call and the view it takes
   * (the loop would cost more than the call on a long string).
   */
  #utf8(s: string): number {
    const buf = this.buf, at = this.pos, n = s.length;
    if (n <= ASCII_LOOP_MAX) {
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
      }
      if (i === n) return n;
    }
    return enc.encodeInto(s, buf.subarray(at)).written;
  }

  /** A nested message, written by `body` in place; always present, even when empty. */
  message(field: number, body: (w: this) => void): this {
    const mark = this.open(field);
    body(this);
    this.close(mark);
    return this;
  }

  /**
   * Start a nested message (always present, even when empty) of about `size` bytes: its
   * length gets as many bytes as that size needs, so a good guess is patched in place.
   * Returns the mark to `close` it with (no closure per message, as `message` takes).
   */
  open(field: number, size = 0): number {
    this.#tag(field, LEN);
    const reserved = lenBytes(size);
    this.#room(reserved);
    const mark = this.pos * 8 + reserved;
    this.pos += reserved;
    return mark;
  }

  /** End the nested message `open` began. */
  close(mark: number): void {
    const lenAt = Math.floor(mark / 8);
    const start = lenAt + (mark % 8);
    this.#patchLength(lenAt, start, this.pos - start);
  }

  /**
   * Write `len` as a varint at `lenAt`, where `start - lenAt` bytes were reserved for it,
   * moving the `len` bytes at `start` if the varint needs more or less room.
   */
  #patchLength(lenAt: number, start: number, len: number): void {
    const need = lenBytes(len);
    const shift = need - (start - lenAt);
    if (shift !== 0) {
      this.#room(Math.max(shift, 0));
      this.buf.copyWithin(start + shift, start, start + len);
      this.pos += shift;
    }
    let at = lenAt;
    let n = len;
    while (n >= 0x80) {
      this.buf[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[at] = n;
  }

  /** The encoded bytes (a view of the buffer). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

function lenBytes(n: number): number {
  let k = 1;
  while (n >= 0x80) {
    n >>>= 7;
    k++;
  }
  return k;
}

/** Malformed protobuf: a truncated field or an impossible wire type. */
export class ProtoError extends Error {
  override name = "ProtoError";
}

/** Reads one message's fields in order. `field`/`wire` describe the field `next()` found. */
export class ProtoReader {
  readonly #b: Uint8Array;
  #pos: number;
  readonly #end: number;
  field = 0;
  wire = 0;

  constructor(b: Uint8Array, start = 0, end = b.length) {
    this.#b = b;
    this.#pos = start;
    this.#end = end;
  }

  /** Advance to the next field's tag; false at the end of the message. */
  next(): boolean {
    if (this.#pos >= this.#end) return false;
    const tag = this.varint();
    this.field = Math.floor(tag / 8);
    this.wire = tag % 8;
    if (this.field === 0) throw new ProtoError("protobuf field number 0");
    return true;
  }

  /** A varint as a number (exact below 2^53). */
  varint(): number {
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.#end) throw new ProtoError("truncated protobuf varint");
      const b = this.#b[this.#pos++];
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 0x80;
    }
    throw new ProtoError("protobuf varint longer than 10 bytes");
  }

  /** A varint as decimal int64 text (IDs that need all 64 bits). */
  bigVarint(): string {
    let v = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.#end) throw new ProtoError("truncated protobuf varint");
      const b = this.#b[this.#pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asIntN(64, v).toString();
      shift += 7n;
    }
    throw new ProtoError("protobuf varint longer than 10 bytes");
  }

  /** A length-delimited field's bytes (a view, not a copy). */
  bytes(): Uint8Array {
    const len = this.varint();
    if (this.#pos + len > this.#end) throw new ProtoError("truncated protobuf field");
    const out = this.#b.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    return out;
  }

  /** A reader over a nested message. */
  message(): ProtoReader {
    const len = this.varint();
    if (this.#pos + len > this.#end) throw new ProtoError("truncated protobuf message");
    const r = new ProtoReader(this.#b, this.#pos, this.#pos + len);
    this.#pos += len;
    return r;
  }

  /** Skip the current field's value. */
  skip(): void {
    switch (this.wire) {
      case VARINT:
        this.varint();
        return;
      case I64:
        this.#advance(8);
        return;
      case LEN:
        this.#advance(this.varint());
        return;
      case I32:
        this.#advance(4);
        return;
      default:
        throw new ProtoError(`unsupported protobuf wire type ${this.wire}`);
    }
  }

  #advance(n: number): void {
    if (this.#pos + n > this.#end) throw new ProtoError("truncated protobuf field");
    this.#pos += n;
  }
}
