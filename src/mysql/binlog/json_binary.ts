/**
 * MySQL binary JSON (JSON columns in MySQL 5.7+ row events; MariaDB logs JSON as LONGTEXT).
 * Layout per the MySQL source's json_binary.h ("MySQL binary JSON format"): a type byte,
 * then the value. Objects and arrays: element count and byte size (2 bytes each in the
 * small form, 4 in the large), key entries (offset, 2-byte length), value entries (type byte
 * and an offset, or the value itself inlined for literals and 16-bit integers, and in the
 * large form also 32-bit integers), then keys and values. Offsets count from the start of
 * the container (after its type byte). Rendered as MySQL prints JSON (Json_wrapper::
 * to_string), without whitespace: keys in stored order (sorted by length, then bytes),
 * doubles with a ".0" when they would read as integers, DATE/TIME/DATETIME/TIMESTAMP
 * opaques as their strings with 6 fractional digits, DECIMAL opaques as numbers and any
 * other opaque as "base64:type<N>:<base64>". Pure.
 */
import {
  MYSQL_TYPE_DATE,
  MYSQL_TYPE_DATETIME,
  MYSQL_TYPE_DATETIME2,
  MYSQL_TYPE_NEWDATE,
  MYSQL_TYPE_NEWDECIMAL,
  MYSQL_TYPE_TIME,
  MYSQL_TYPE_TIME2,
  MYSQL_TYPE_TIMESTAMP,
  MYSQL_TYPE_TIMESTAMP2,
} from "./constants.ts";
import { Cursor } from "./cursor.ts";
import { decimal, floatText } from "./numbers.ts";
import { fraction, pad } from "./temporal.ts";
import { BinlogError } from "./types.ts";

/** The type bytes of binary JSON values (json_binary.h). */
const J = {
  SMALL_OBJECT: 0x00,
  LARGE_OBJECT: 0x01,
  SMALL_ARRAY: 0x02,
  LARGE_ARRAY: 0x03,
  LITERAL: 0x04,
  INT16: 0x05,
  UINT16: 0x06,
  INT32: 0x07,
  UINT32: 0x08,
  INT64: 0x09,
  UINT64: 0x0a,
  DOUBLE: 0x0b,
  STRING: 0x0c,
  OPAQUE: 0x0f,
} as const;

const jdec = new TextDecoder();

/** MySQL binary JSON to compact JSON text (`null` for the empty value MySQL allows). */
export function decodeMysqlJson(b: Uint8Array): string {
  if (b.length === 0) return "null";
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return jsonValue(b, v, b[0], 1, 0);
}

function jneed(b: Uint8Array, end: number) {
  if (end > b.length) throw new BinlogError("truncated binary JSON value");
}

function jsonVarlen(b: Uint8Array, at: number): [number, number] {
  let n = 0;
  for (let i = 0; i < 5; i++) {
    const x = b[at + i];
    if (x === undefined) break;
    n += (x & 0x7f) * 2 ** (7 * i);
    if (!(x & 0x80)) return [n, at + i + 1];
  }
  throw new BinlogError("bad length in binary JSON");
}

function jsonValue(b: Uint8Array, v: DataView, type: number, at: number, depth: number): string {
  if (depth > 100) throw new BinlogError("binary JSON nested too deeply");
  switch (type) {
    case J.SMALL_OBJECT:
    case J.LARGE_OBJECT:
      return jsonContainer(b, v, at, true, type === J.LARGE_OBJECT, depth);
    case J.SMALL_ARRAY:
    case J.LARGE_ARRAY:
      return jsonContainer(b, v, at, false, type === J.LARGE_ARRAY, depth);
    case J.LITERAL:
      jneed(b, at + 1);
      if (b[at] > 2) throw new BinlogError(`bad binary JSON literal ${b[at]}`);
      return b[at] === 1 ? "true" : b[at] === 2 ? "false" : "null";
    case J.INT16:
      jneed(b, at + 2);
      return String(v.getInt16(at, true));
    case J.UINT16:
      jneed(b, at + 2);
      return String(v.getUint16(at, true));
    case J.INT32:
      jneed(b, at + 4);
      return String(v.getInt32(at, true));
    case J.UINT32:
      jneed(b, at + 4);
      return String(v.getUint32(at, true));
    case J.INT64:
      jneed(b, at + 8);
      return v.getBigInt64(at, true).toString();
    case J.UINT64:
      jneed(b, at + 8);
      return v.getBigUint64(at, true).toString();
    case J.DOUBLE: {
      jneed(b, at + 8);
      const t = floatText(v.getFloat64(at, true), false);
      return /[.e]/.test(t) ? t : t + ".0";
    }
    case J.STRING: {
      const [n, from] = jsonVarlen(b, at);
      jneed(b, from + n);
      return JSON.stringify(jdec.decode(b.subarray(from, from + n)));
    }
    case J.OPAQUE: {
      jneed(b, at + 1);
      const [n, from] = jsonVarlen(b, at + 1);
      jneed(b, from + n);
      return jsonOpaque(b[at], b.subarray(from, from + n));
    }
    default:
      throw new BinlogError(`unknown binary JSON type 0x${type.toString(16)}`);
  }
}

/** Value types stored in the value entry itself rather than at an offset. */
function inlined(t: number, large: boolean): boolean {
  return t === J.LITERAL || t === J.INT16 || t === J.UINT16 ||
    (large && (t === J.INT32 || t === J.UINT32));
}

function jsonContainer(
  b: Uint8Array,
  v: DataView,
  at: number,
  obj: boolean,
  large: boolean,
  depth: number,
): string {
  const w = large ? 4 : 2;
  const rd = (p: number) => {
    jneed(b, p + w);
    return large ? v.getUint32(p, true) : v.getUint16(p, true);
  };
  const count = rd(at);
  const size = rd(at + w);
  jneed(b, at + size);
  const keyEntries = at + 2 * w;
  const valueEntries = keyEntries + (obj ? count * (w + 2) : 0);
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    let key = "";
    if (obj) {
      const ke = keyEntries + i * (w + 2);
      const ko = rd(ke);
      jneed(b, ke + w + 2);
      const kl = v.getUint16(ke + w, true);
      jneed(b, at + ko + kl);
      key = JSON.stringify(jdec.decode(b.subarray(at + ko, at + ko + kl))) + ":";
    }
    const e = valueEntries + i * (1 + w);
    jneed(b, e + 1 + w);
    const t = b[e];
    const where = inlined(t, large) ? e + 1 : at + rd(e + 1);
    parts.push(key + jsonValue(b, v, t, where, depth + 1));
  }
  return obj ? `{${parts.join(",")}}` : `[${parts.join(",")}]`;
}

/** A MySQL packed temporal (TIME_to_longlong_*_packed) as [negative, int part, µs]. */
function unpackTemporal(bytes: Uint8Array): [boolean, bigint, number] {
  if (bytes.length < 8) throw new BinlogError("truncated temporal value in binary JSON");
  let x = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigInt64(0, true);
  const neg = x < 0n;
  if (neg) x = -x;
  return [neg, x >> 24n, Number(x % (1n << 24n))];
}

function jsonOpaque(fieldType: number, data: Uint8Array): string {
  switch (fieldType) {
    case MYSQL_TYPE_NEWDECIMAL: {
      if (data.length < 2) throw new BinlogError("truncated decimal in binary JSON");
      return decimal(new Cursor(data, 2), data[0], data[1]);
    }
    case MYSQL_TYPE_DATE:
    case MYSQL_TYPE_NEWDATE:
    case MYSQL_TYPE_DATETIME:
    case MYSQL_TYPE_TIMESTAMP:
    case MYSQL_TYPE_DATETIME2:
    case MYSQL_TYPE_TIMESTAMP2:
      return JSON.stringify(opaqueDatetime(fieldType, data));
    case MYSQL_TYPE_TIME:
    case MYSQL_TYPE_TIME2: {
      const [neg, hms, us] = unpackTemporal(data);
      const h = Number((hms >> 12n) % 1024n), m = Number((hms >> 6n) % 64n);
      const s = Number(hms % 64n);
      return JSON.stringify(`${neg ? "-" : ""}${pad(h)}:${pad(m)}:${pad(s)}${fraction(us, 6)}`);
    }
    default: {
      const b64 = (data.slice() as Uint8Array & { toBase64(): string }).toBase64();
      return JSON.stringify(`base64:type${fieldType}:${b64}`);
    }
  }
}

/** A DATE or DATETIME/TIMESTAMP opaque: the date, or date and time with 6 digits. */
function opaqueDatetime(fieldType: number, data: Uint8Array): string {
  const [, ymdhms, us] = unpackTemporal(data);
  const ymd = Number(ymdhms >> 17n);
  const hms = Number(ymdhms % (1n << 17n));
  const ym = Math.floor(ymd / 32);
  const date = `${pad(Math.floor(ym / 13), 4)}-${pad(ym % 13)}-${pad(ymd % 32)}`;
  if (fieldType === MYSQL_TYPE_DATE || fieldType === MYSQL_TYPE_NEWDATE) return date;
  return `${date} ${pad(hms >> 12)}:${pad((hms >> 6) & 63)}:${pad(hms & 63)}${fraction(us, 6)}`;
}
