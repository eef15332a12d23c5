/**
 * The byte reader of pgoutput messages (src/pg/pgoutput.ts, src/pg/row_change.ts): every
 * read bounds-checked so garbage fails cleanly, text values cut from one decoded string.
 */
import { UNCHANGED } from "../core/change.ts";
import { jsonString } from "../core/json.ts";
import { jsonSafeBytes, utf8Slice } from "../core/text.ts";

/** A column value: text (as PostgreSQL prints it), null, or unchanged TOAST. */
export type TupleValue = string | null | typeof UNCHANGED;

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
export class Reader {
  i = 1;
  /** The message from byte `#base` on, decoded once; "" when not (yet) decoded. */
  #rest = "";
  #base = -1;
  constructor(public b: Uint8Array, public tag: string) {}
  /** Read another message with this reader (one object for every row change, not one each). */
  reset(b: Uint8Array): this {
    this.b = b;
    this.tag = String.fromCharCode(b[0]);
    this.i = 1;
    this.#rest = "";
    this.#base = -1;
    return this;
  }
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
   * `len` bytes of text at the cursor as a JSON string (what jsonString gives for its text).
   * UTF-8 decodes a byte below 0x80 to that character alone and never yields a lone
   * surrogate, so the value needs escaping exactly when such a byte does: the bytes are
   * checked four at a time instead of the string by jsonString's regex.
   */
  jsonText(len: number): string {
    const start = this.i;
    const s = this.text(len);
    return jsonSafeBytes(this.b, start, start + len) ? '"' + s + '"' : jsonString(s);
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
  /** A tuple's column count. */
  columns(): number {
    const n = this.i16();
    if (n < 0) throw new PgOutputError(`negative column count in pgoutput '${this.tag}' message`);
    return n;
  }
  /** A text value's length, its bytes checked to be there. */
  valueLength(): number {
    const len = this.i32();
    if (len < 0) {
      throw new PgOutputError(
        `negative value length ${len} in pgoutput '${this.tag}' message at offset ${this.i - 4}`,
      );
    }
    this.need(len);
    return len;
  }
  /** The error for a value kind other than text, null and unchanged (at `this.i - 1`). */
  badKind(kind: number): never {
    if (kind === 0x62 /* b */) {
      throw new PgOutputError(
        `binary value in pgoutput '${this.tag}' message at offset ${
          this.i - 1
        } (sync asks for text)`,
      );
    }
    throw new PgOutputError(
      `unknown tuple value kind 0x${
        kind.toString(16)
      } in pgoutput '${this.tag}' message at offset ${this.i - 1}`,
    );
  }
  tuple(): TupleValue[] {
    const n = this.columns();
    const out = new Array<TupleValue>(n);
    for (let c = 0; c < n; c++) {
      const kind = this.u8();
      if (kind === 0x74 /* t */) out[c] = this.text(this.valueLength());
      else if (kind === 0x6e /* n */) out[c] = null;
      else if (kind === 0x75 /* u */) out[c] = UNCHANGED;
      else this.badKind(kind);
    }
    return out;
  }
}
