/**
 * MySQL's binary JSON (the JSON column in row events) to JSON text. Layout per the MySQL
 * source's json_binary.h: a type byte, then objects/arrays with an element count, a byte
 * size, key entries, value entries (small values inlined) and the data.
 */
import { BinlogError } from "./binlog.ts";

const dec = new TextDecoder();

export function decodeJsonb(b: Uint8Array): string {
  if (b.length === 0) return "null";
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return value(b, v, b[0], 1);
}

function varlen(b: Uint8Array, at: number): [number, number] {
  let n = 0;
  for (let i = 0; i < 5; i++) {
    const x = b[at + i];
    if (x === undefined) break;
    n |= (x & 0x7f) << (7 * i);
    if (!(x & 0x80)) return [n, at + i + 1];
  }
  throw new BinlogError("bad length in binary JSON");
}

function value(b: Uint8Array, v: DataView, type: number, at: number): string {
  switch (type) {
    case 0x00:
    case 0x01:
      return container(b, v, at, true, type === 0x01);
    case 0x02:
    case 0x03:
      return container(b, v, at, false, type === 0x03);
    case 0x04:
      return b[at] === 1 ? "true" : b[at] === 2 ? "false" : "null";
    case 0x05:
      return String(v.getInt16(at, true));
    case 0x06:
      return String(v.getUint16(at, true));
    case 0x07:
      return String(v.getInt32(at, true));
    case 0x08:
      return String(v.getUint32(at, true));
    case 0x09:
      return v.getBigInt64(at, true).toString();
    case 0x0a:
      return v.getBigUint64(at, true).toString();
    case 0x0b: {
      const d = v.getFloat64(at, true);
      return Number.isInteger(d) && Math.abs(d) < 1e15 ? d.toFixed(1) : String(d);
    }
    case 0x0c: {
      const [n, from] = varlen(b, at);
      return JSON.stringify(dec.decode(b.subarray(from, from + n)));
    }
    case 0x0f: {
      // Opaque: a MySQL column type and its bytes; shown as base64 of the bytes.
      const [n, from] = varlen(b, at + 1);
      const bytes = b.slice(from, from + n) as Uint8Array & { toBase64(): string };
      return JSON.stringify(bytes.toBase64());
    }
    default:
      throw new BinlogError(`unknown binary JSON type 0x${type.toString(16)}`);
  }
}

function container(b: Uint8Array, v: DataView, at: number, obj: boolean, large: boolean) {
  const w = large ? 4 : 2;
  const rd = (p: number) => (large ? v.getUint32(p, true) : v.getUint16(p, true));
  const count = rd(at);
  const keyEntries = at + 2 * w;
  const valueEntries = keyEntries + (obj ? count * (w + 2) : 0);
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    let key = "";
    if (obj) {
      const ko = rd(keyEntries + i * (w + 2));
      const kl = v.getUint16(keyEntries + i * (w + 2) + w, true);
      key = JSON.stringify(dec.decode(b.subarray(at + ko, at + ko + kl))) + ":";
    }
    const e = valueEntries + i * (1 + w);
    const t = b[e];
    const inlined = t === 0x04 || t === 0x05 || t === 0x06 ||
      (large && (t === 0x07 || t === 0x08));
    const val = inlined ? value(b, v, t, e + 1) : value(b, v, t, at + rd(e + 1));
    parts.push(key + val);
  }
  return obj ? `{${parts.join(",")}}` : `[${parts.join(",")}]`;
}
