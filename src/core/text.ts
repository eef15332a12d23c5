/**
 * Byte ranges to strings for the protocol decoders, through one node Buffer view over the
 * bytes' ArrayBuffer (a read chunk usually holds many messages): Buffer's toString
 * decodes without the per-call argument checks of TextDecoder, about twice as fast for
 * the short values of a row. UTF-8 decodes as TextDecoder does (invalid bytes to U+FFFD,
 * maximal subparts, tested), except that a leading BOM is kept.
 */
import { Buffer } from "node:buffer";

let viewOf: ArrayBufferLike | undefined;
let view: Buffer;

function viewFor(b: Uint8Array): Buffer {
  if (b.buffer !== viewOf) {
    viewOf = b.buffer;
    view = Buffer.from(b.buffer);
  }
  return view;
}

/** `b[start..end)` as UTF-8. */
export function utf8Slice(b: Uint8Array, start: number, end: number): string {
  return viewFor(b).toString("utf8", b.byteOffset + start, b.byteOffset + end);
}

/** `b[start..end)` with one character per byte (U+0000–U+00FF). */
export function latin1Slice(b: Uint8Array, start: number, end: number): string {
  return viewFor(b).toString("latin1", b.byteOffset + start, b.byteOffset + end);
}
