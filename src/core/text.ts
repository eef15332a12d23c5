/**
 * Byte ranges to strings for the protocol decoders, through one node Buffer view over the
 * bytes' ArrayBuffer (a read chunk usually holds many messages): Buffer's
 * slicers decode without the per-call argument checks of TextDecoder, about twice as fast for
 * the short values of a row. UTF-8 decodes as TextDecoder does (invalid bytes to U+FFFD,
 * maximal subparts, tested), except that a leading BOM is kept.
 */
import { Buffer } from "node:buffer";

let viewOf: ArrayBufferLike | undefined;
/** Buffer's own slicers (what its toString calls after normalizing the encoding name). */
let view: Buffer & {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
};

/** The array last seen: `.buffer` is a call, and one message asks many times. */
let lastArray: Uint8Array | undefined;

function viewFor(b: Uint8Array): typeof view {
  if (b === lastArray) return view;
  lastArray = b;
  if (b.buffer !== viewOf) {
    viewOf = b.buffer;
    view = Buffer.from(b.buffer) as typeof view;
  }
  return view;
}

/** `b[start..end)` as UTF-8. */
export function utf8Slice(b: Uint8Array, start: number, end: number): string {
  return viewFor(b).utf8Slice(b.byteOffset + start, b.byteOffset + end);
}

/** `b[start..end)` with one character per byte (U+0000–U+00FF). */
export function latin1Slice(b: Uint8Array, start: number, end: number): string {
  return viewFor(b).latin1Slice(b.byteOffset + start, b.byteOffset + end);
}

let wordsOf: ArrayBufferLike | undefined;
let wordsArray: Uint8Array | undefined;
let words: Int32Array;

/**
 * Whether `b[start..end)` has no byte below 0x20, no `"` and no `\` (bytes of 0x80 and above
 * pass): then text decoded from it one character per byte is a JSON string body as it is.
 * Four bytes at a time through an Int32Array view of the buffer (the head and tail bytes one
 * by one), with the SWAR tests "some byte below n" and "some byte equal to c": about four
 * times fewer steps than a loop over the bytes, for the long text values of a row.
 */
export function jsonSafeBytes(b: Uint8Array, start: number, end: number): boolean {
  let k = start;
  const off = b.byteOffset;
  while (k < end && ((off + k) & 3) !== 0) {
    const c = b[k++];
    if (c < 0x20 || c === 0x22 || c === 0x5c) return false;
  }
  const wEnd = (off + end) >> 2;
  let w = (off + k) >> 2;
  if (w < wEnd) {
    if (b !== wordsArray) {
      wordsArray = b;
      if (b.buffer !== wordsOf) {
        wordsOf = b.buffer;
        words = new Int32Array(b.buffer, 0, b.buffer.byteLength >> 2);
      }
    }
    for (; w < wEnd; w++) {
      const x = words[w];
      const q = x ^ 0x22222222, s = x ^ 0x5c5c5c5c;
      if (((x - 0x20202020) & ~x | (q - 0x01010101) & ~q | (s - 0x01010101) & ~s) & 0x80808080) {
        return false;
      }
    }
    k = (wEnd << 2) - off;
  }
  while (k < end) {
    const c = b[k++];
    if (c < 0x20 || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}
