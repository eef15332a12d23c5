/** Byte-level pieces of the binlog format: integers, the event header, checksums, zlib. */
import { crc32 as zlibCrc32, inflateSync } from "node:zlib";
import { BinlogError, type EventHeader } from "./types.ts";

/** CRC-32 (IEEE), as binlog checksums use: zlib's native one, ~100× a JS table loop. */
export function crc32(bytes: Uint8Array): number {
  return zlibCrc32(bytes) >>> 0;
}

export function uint48(v: DataView, at: number): bigint {
  return BigInt(v.getUint32(at, true)) | (BigInt(v.getUint16(at + 4, true)) << 32n);
}

/** A length-encoded integer at `at`; returns [value, next offset]. */
export function lenenc(b: Uint8Array, at: number): [number, number] {
  if (at >= b.length) throw new BinlogError("truncated length-encoded integer");
  const f = b[at];
  if (f < 0xfb) return [f, at + 1];
  if (f === 0xfc) return [b[at + 1] | (b[at + 2] << 8), at + 3];
  if (f === 0xfd) return [b[at + 1] | (b[at + 2] << 8) | (b[at + 3] << 16), at + 4];
  const v = new DataView(b.buffer, b.byteOffset + at + 1, 8);
  return [Number(v.getBigUint64(0, true)), at + 9];
}

/** A little-endian uint32 at `at` (read per event: no DataView to allocate). */
export function u32le(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/** The 19-byte v4 event header (the caller checked its length). */
export function readHeader(ev: Uint8Array): EventHeader {
  return {
    timestamp: u32le(ev, 0),
    type: ev[4],
    serverId: u32le(ev, 5),
    eventSize: u32le(ev, 9),
    logPos: u32le(ev, 13),
    flags: ev[17] | (ev[18] << 8),
  };
}

/** The size field of the event header at `at` in `b`. */
export function eventSizeAt(b: Uint8Array, at: number): number {
  return new DataView(b.buffer, b.byteOffset + at + 9, 4).getUint32(0, true);
}

/**
 * MariaDB's compressed payload: one byte (0x80 | n), the uncompressed length in n
 * big-endian bytes, then a zlib stream.
 */
export function uncompressMariadb(b: Uint8Array): Uint8Array {
  if (b.length < 1 || (b[0] & 0xe0) !== 0x80) {
    throw new BinlogError("bad compressed binlog payload");
  }
  const n = b[0] & 0x07;
  let len = 0;
  for (let i = 1; i <= n; i++) len = len * 256 + b[i];
  const out = new Uint8Array(inflateSync(b.subarray(1 + n)));
  if (out.length !== len) throw new BinlogError("compressed binlog payload has the wrong length");
  return out;
}
