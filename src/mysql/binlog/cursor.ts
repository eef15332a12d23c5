/** A read position in a row image (or a value inside one), every read bounds-checked. */
import { latin1Slice } from "../../core/text.ts";
import { BinlogError } from "./types.ts";

export class Cursor {
  readonly v: DataView;
  #latin1: string | undefined;
  constructor(readonly b: Uint8Array, public at: number) {
    this.v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  /**
   * `b[start..end)` one character per byte, cut from the whole of `b` decoded once (one
   * decoder call per event instead of one per value).
   */
  latin1(start: number, end: number): string {
    this.#latin1 ??= latin1Slice(this.b, 0, this.b.length);
    return this.#latin1.substring(start, end);
  }
  need(n: number) {
    if (this.at + n > this.b.length) throw new BinlogError("truncated row image");
  }
  take(n: number): Uint8Array {
    this.need(n);
    const s = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return s;
  }
  /** An unsigned little-endian integer of `n` bytes (n ≤ 6). */
  le(n: number): number {
    this.need(n);
    let x = 0;
    for (let i = n - 1; i >= 0; i--) x = x * 256 + this.b[this.at + i];
    this.at += n;
    return x;
  }
  /** An unsigned big-endian integer of `n` bytes (n ≤ 6). */
  be(n: number): number {
    this.need(n);
    let x = 0;
    for (let i = 0; i < n; i++) x = x * 256 + this.b[this.at + i];
    this.at += n;
    return x;
  }
  u64(): bigint {
    this.need(8);
    const x = this.v.getBigUint64(this.at, true);
    this.at += 8;
    return x;
  }
  i64(): bigint {
    this.need(8);
    const x = this.v.getBigInt64(this.at, true);
    this.at += 8;
    return x;
  }
  f32(): number {
    this.need(4);
    const x = this.v.getFloat32(this.at, true);
    this.at += 4;
    return x;
  }
  f64(): number {
    this.need(8);
    const x = this.v.getFloat64(this.at, true);
    this.at += 8;
    return x;
  }
}
