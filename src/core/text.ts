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

function viewFor(b: Uint8Array): typeof view {
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
