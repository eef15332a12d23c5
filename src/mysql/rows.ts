/**
 * Row images of WRITE/UPDATE/DELETE_ROWS events, decoded with the table map (types,
 * metadata) and the table's schema (signedness, charsets, ENUM/SET members). Pure.
 */
import { BinlogError, type BinlogEvent, lenenc, type TableMap } from "./binlog.ts";
import { bitsToDecimal, cellOf, keyOf, type MysqlValue } from "./values.ts";
import type { MysqlColumn, TableSchema } from "./types.ts";

export interface RowImage {
  /** JSON fragment per column of the schema, in table order. */
  cells: string[];
  /**
   * The row key: the key columns' parts encoded by `keyPartOf` (values.ts) joined by `/`;
   * the same string `rowKey` (core/keys.ts) gives for text parts, and for binary key
   * columns the raw bytes percent-encoded by `encodeKeyBytes`.
   */
  key: string;
  /**
   * Columns the image does not carry (binlog_row_image MINIMAL/NOBLOB): their cells are
   * `null` here and the value is really unknown (the sink should keep the current one).
   */
  missing?: number[];
}

export interface RowChange {
  op: "insert" | "update" | "delete";
  before?: RowImage;
  after?: RowImage;
}

const T = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/** Text decoders by MySQL character set name. */
const decoders = new Map<string, TextDecoder>();
function decoderFor(charset: string | null): TextDecoder {
  const name = !charset
    ? "utf-8"
    : charset === "latin1"
    ? "windows-1252"
    : charset.startsWith("utf16") || charset === "ucs2"
    ? "utf-16be"
    : charset === "utf16le"
    ? "utf-16le"
    : charset === "cp1251" || charset === "cp1256" || charset === "cp1257" || charset === "cp1250"
    ? `windows-${charset.slice(2)}`
    : charset === "greek"
    ? "iso-8859-7"
    : charset === "hebrew"
    ? "iso-8859-8"
    : charset === "koi8r"
    ? "koi8-r"
    : charset === "sjis" || charset === "cp932"
    ? "shift_jis"
    : charset === "gbk" || charset === "gb2312"
    ? "gbk"
    : charset === "big5"
    ? "big5"
    : charset === "euckr"
    ? "euc-kr"
    : "utf-8";
  let d = decoders.get(name);
  if (!d) decoders.set(name, d = new TextDecoder(name));
  return d;
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

function fraction(us: number, fsp: number): string {
  return fsp > 0 ? "." + String(us).padStart(6, "0").slice(0, fsp) : "";
}

/** Reads one row image's values. */
class Cursor {
  readonly v: DataView;
  constructor(readonly b: Uint8Array, public at: number) {
    this.v = new DataView(b.buffer, b.byteOffset, b.byteLength);
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
  le(n: number): number {
    this.need(n);
    let x = 0;
    for (let i = n - 1; i >= 0; i--) x = x * 256 + this.b[this.at + i];
    this.at += n;
    return x;
  }
  be(n: number): number {
    this.need(n);
    let x = 0;
    for (let i = 0; i < n; i++) x = x * 256 + this.b[this.at + i];
    this.at += n;
    return x;
  }
}

function decimal(c: Cursor, precision: number, scale: number): string {
  const intg = precision - scale;
  const intg0 = Math.floor(intg / 9), intg0x = intg % 9;
  const frac0 = Math.floor(scale / 9), frac0x = scale % 9;
  const size = intg0 * 4 + DIG2BYTES[intg0x] + frac0 * 4 + DIG2BYTES[frac0x];
  const b = c.take(size).slice();
  const neg = (b[0] & 0x80) === 0;
  b[0] ^= 0x80;
  if (neg) { for (let i = 0; i < b.length; i++) b[i] ^= 0xff; }
  const r = new Cursor(b, 0);
  let intPart = "";
  if (DIG2BYTES[intg0x]) intPart += String(r.be(DIG2BYTES[intg0x]));
  for (let i = 0; i < intg0; i++) intPart += pad(r.be(4), 9);
  intPart = intPart.replace(/^0+/, "") || "0";
  let frac = "";
  for (let i = 0; i < frac0; i++) frac += pad(r.be(4), 9);
  if (DIG2BYTES[frac0x]) frac += pad(r.be(DIG2BYTES[frac0x]), frac0x);
  return (neg ? "-" : "") + intPart + (scale > 0 ? "." + frac : "");
}

/** Fractional seconds of TIME2/DATETIME2/TIMESTAMP2 in microseconds. */
function fracUs(c: Cursor, fsp: number): number {
  if (fsp <= 0) return 0;
  const n = (fsp + 1) >> 1;
  const v = c.be(n);
  return n === 1 ? v * 10000 : n === 2 ? v * 100 : v;
}

function time2(c: Cursor, fsp: number): string {
  // MySQL's packed TIME: ((hours<<12 | minutes<<6 | seconds) << 24) + microseconds, signed.
  let packed: number;
  if (fsp >= 5) packed = c.be(6) - 0x800000000000;
  else {
    let intpart = c.be(3) - 0x800000;
    let frac = 0;
    if (fsp >= 1) {
      const n = (fsp + 1) >> 1;
      frac = c.be(n);
      if (intpart < 0 && frac) {
        intpart++;
        frac -= n === 1 ? 0x100 : 0x10000;
      }
      frac *= n === 1 ? 10000 : 100;
    }
    packed = intpart * 0x1000000 + frac;
  }
  const neg = packed < 0;
  const a = Math.abs(packed);
  const hms = Math.floor(a / 0x1000000);
  const us = a % 0x1000000;
  const h = (hms >> 12) & 0x3ff, m = (hms >> 6) & 63, s = hms & 63;
  return `${neg ? "-" : ""}${pad(h)}:${pad(m)}:${pad(s)}${fraction(us, fsp)}`;
}

function datetime2(c: Cursor, fsp: number): string {
  const v = c.be(5) - 0x8000000000;
  const us = fracUs(c, fsp);
  const ymd = Math.floor(v / 0x20000);
  const hms = v % 0x20000;
  const ym = Math.floor(ymd / 32);
  const day = ymd % 32, year = Math.floor(ym / 13), month = ym % 13;
  const h = hms >> 12, m = (hms >> 6) & 63, s = hms & 63;
  return `${pad(year, 4)}-${pad(month)}-${pad(day)} ${pad(h)}:${pad(m)}:${pad(s)}${
    fraction(us, fsp)
  }`;
}

function timestampText(seconds: number, us: number, fsp: number): string {
  if (seconds === 0 && us === 0) {
    return "0000-00-00 00:00:00" + (fsp > 0 ? "." + "0".repeat(fsp) : "");
  }
  const d = new Date(seconds * 1000);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${
    pad(d.getUTCHours())
  }:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${fraction(us, fsp)}`;
}

/**
 * FLOAT/DOUBLE as the server prints them (my_gcvt): FLOAT to 6 significant digits, DOUBLE
 * to the shortest round trip; fixed notation unless the decimal point is more than 15
 * places right or 14 places left of the first digit (measured against MariaDB 10.11).
 */
export function floatText(x: number, single: boolean): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const [mant, exp] = (single ? x.toExponential(5) : x.toExponential()).split("e");
  const neg = mant.startsWith("-");
  const digits = mant.replace(/^-/, "").replace(".", "").replace(/0+$/, "") || "0";
  const e = Number(exp);
  const decpt = e + 1;
  const sign = neg ? "-" : "";
  if (decpt > 15 || decpt < -14) {
    return `${sign}${digits[0]}${digits.length > 1 ? "." + digits.slice(1) : ""}e${e}`;
  }
  if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return sign + digits + "0".repeat(decpt - digits.length);
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

function value(c: Cursor, type: number, meta: number, col: MysqlColumn): MysqlValue {
  switch (type) {
    case T.TINY:
    case T.SHORT:
    case T.INT24:
    case T.LONG: {
      const n = type === T.TINY ? 1 : type === T.SHORT ? 2 : type === T.INT24 ? 3 : 4;
      const u = c.le(n);
      const bits = 8 * n;
      return String(!col.unsigned && u >= 2 ** (bits - 1) ? u - 2 ** bits : u);
    }
    case T.LONGLONG: {
      c.need(8);
      const x = col.unsigned ? c.v.getBigUint64(c.at, true) : c.v.getBigInt64(c.at, true);
      c.at += 8;
      return x.toString();
    }
    case T.FLOAT: {
      c.need(4);
      const x = c.v.getFloat32(c.at, true);
      c.at += 4;
      return floatText(x, true);
    }
    case T.DOUBLE: {
      c.need(8);
      const x = c.v.getFloat64(c.at, true);
      c.at += 8;
      return floatText(x, false);
    }
    case T.NEWDECIMAL:
      return decimal(c, meta >> 8, meta & 0xff);
    case T.YEAR: {
      const y = c.le(1);
      return y === 0 ? "0000" : String(1900 + y);
    }
    case T.DATE:
    case T.NEWDATE: {
      const x = c.le(3);
      return `${pad(x >> 9, 4)}-${pad((x >> 5) & 15)}-${pad(x & 31)}`;
    }
    case T.TIME2:
      return time2(c, meta);
    case T.DATETIME2:
      return datetime2(c, meta);
    case T.TIMESTAMP2: {
      const s = c.be(4);
      return timestampText(s, fracUs(c, meta), meta);
    }
    case T.TIMESTAMP:
      return timestampText(c.le(4), 0, 0);
    case T.DATETIME: {
      c.need(8);
      const x = c.v.getBigUint64(c.at, true);
      c.at += 8;
      const s = x.toString().padStart(14, "0");
      return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)} ${s.slice(8, 10)}:${
        s.slice(10, 12)
      }:${s.slice(12, 14)}`;
    }
    case T.TIME: {
      const x = c.le(3);
      const s = String(x).padStart(6, "0");
      return `${s.slice(0, -4)}:${s.slice(-4, -2)}:${s.slice(-2)}`;
    }
    case T.BIT: {
      const n = (meta >> 8) + ((meta & 0xff) ? 1 : 0);
      return bitsToDecimal(c.take(n));
    }
    case T.VARCHAR:
    case T.VAR_STRING: {
      const len = c.le(meta > 255 ? 2 : 1);
      return text(c.take(len), col);
    }
    case T.STRING: {
      // The real type hides in the metadata (ENUM and SET are logged as STRING).
      let real = meta >> 8;
      let max = meta & 0xff;
      if ((real & 0x30) !== 0x30) {
        max |= ((real & 0x30) ^ 0x30) << 4;
        real |= 0x30;
      }
      if (real === T.ENUM) {
        const i = c.le(max);
        return i === 0 ? "" : (col.members[i - 1] ?? String(i));
      }
      if (real === T.SET) {
        let bits = 0n;
        const raw = c.take(max);
        for (let i = raw.length - 1; i >= 0; i--) bits = (bits << 8n) | BigInt(raw[i]);
        return col.members.filter((_, i) => (bits >> BigInt(i)) & 1n).join(",");
      }
      const len = c.le(max > 255 ? 2 : 1);
      const v = text(c.take(len), col);
      // BINARY(n) is logged without its trailing zero bytes; the server pads them back.
      if (v instanceof Uint8Array && col.dataType === "binary" && v.length < max) {
        const padded = new Uint8Array(max);
        padded.set(v);
        return padded;
      }
      return v;
    }
    case T.ENUM:
      return col.members[c.le(meta & 0xff) - 1] ?? "";
    case T.BLOB:
    case T.GEOMETRY:
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB: {
      const len = c.le(meta);
      return text(c.take(len), col);
    }
    case T.JSON: {
      const len = c.le(meta);
      return decodeMysqlJson(c.take(len));
    }
    default:
      throw new BinlogError(`column ${col.name}: unsupported binlog column type ${type}`);
  }
}

function text(bytes: Uint8Array, col: MysqlColumn): MysqlValue {
  if (!col.charset || col.charset === "binary") {
    // Binary columns keep their bytes; a text-typed binary value is shown as UTF-8.
    return col.dataType.includes("text") || col.dataType.includes("char") || col.json
      ? decoderFor(null).decode(bytes)
      : bytes.slice();
  }
  return decoderFor(col.charset).decode(bytes);
}

function bitCount(bits: Uint8Array, n: number): number {
  let k = 0;
  for (let i = 0; i < n; i++) if (bits[i >> 3] & (1 << (i & 7))) k++;
  return k;
}

/** Decode every row of a rows event into cells and keys. */
export function decodeRowsEvent(
  ev: Extract<BinlogEvent, { kind: "rows" }>,
  map: TableMap,
  schema: TableSchema,
): RowChange[] {
  const b = ev.body;
  let [n, at] = lenenc(b, 0);
  if (n !== schema.columns.length) {
    throw new BinlogError(
      `table ${schema.schema}.${schema.table}: the binlog has ${n} columns, the schema ` +
        `${schema.columns.length} (changed under us); reading the schema again`,
    );
  }
  const bitmapLen = (n + 7) >> 3;
  const present1 = b.subarray(at, at + bitmapLen);
  at += bitmapLen;
  let present2 = present1;
  if (ev.op === "update") {
    present2 = b.subarray(at, at + bitmapLen);
    at += bitmapLen;
  }
  if (at > b.length) throw new BinlogError("truncated rows event");
  const keyCols = schema.keyColumns.map((k) => schema.columns[k]);
  const jsonCols = Array.from(map.columnTypes).filter((t) => t === T.JSON).length;
  const image = (present: Uint8Array, c: Cursor, after: boolean): RowImage => {
    if (after && ev.partial) {
      // PARTIAL_UPDATE_ROWS: value options, then (PARTIAL_JSON_UPDATES) one bit per JSON
      // column telling whether its value is a diff against the before image.
      let options: number;
      [options, c.at] = lenenc(c.b, c.at);
      if (options & 1) {
        const bits = c.take((jsonCols + 7) >> 3);
        if (bits.some((x) => x !== 0)) {
          throw new BinlogError(
            `table ${schema.schema}.${schema.table}: partial JSON updates are not supported; ` +
              "set binlog_row_value_options='' on the server",
          );
        }
      }
    }
    const nulls = c.take((bitCount(present, n) + 7) >> 3);
    const values: MysqlValue[] = new Array(n).fill(null);
    const missing: number[] = [];
    let p = 0;
    for (let i = 0; i < n; i++) {
      if (!(present[i >> 3] & (1 << (i & 7)))) {
        missing.push(i);
        continue;
      }
      const isNull = (nulls[p >> 3] & (1 << (p & 7))) !== 0;
      p++;
      if (!isNull) values[i] = value(c, map.columnTypes[i], map.columnMeta[i], schema.columns[i]);
    }
    const img: RowImage = {
      cells: schema.columns.map((col, i) => cellOf(col, values[i])),
      key: keyOf(keyCols, schema.keyColumns.map((k) => values[k])),
    };
    if (missing.length > 0) {
      if (schema.keyColumns.some((k) => missing.includes(k))) {
        throw new BinlogError(
          `table ${schema.schema}.${schema.table}: a row image lacks key columns ` +
            "(binlog_row_image must be FULL, or the key must be the primary key)",
        );
      }
      img.missing = missing;
    }
    return img;
  };
  const out: RowChange[] = [];
  const c = new Cursor(b, at);
  try {
    while (c.at < b.length) {
      if (ev.op === "insert") out.push({ op: "insert", after: image(present1, c, true) });
      else if (ev.op === "delete") out.push({ op: "delete", before: image(present1, c, false) });
      else {
        const before = image(present1, c, false);
        out.push({ op: "update", before, after: image(present2, c, true) });
      }
    }
  } catch (e) {
    if (e instanceof BinlogError) throw e;
    // Garbage that got past the checksum: say where, in the decoder's own error type.
    throw new BinlogError(
      `cannot decode row of ${schema.schema}.${schema.table} at byte ${c.at}: ${
        (e as Error).message
      }`,
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// MySQL binary JSON (JSON columns in MySQL 5.7+ row events; MariaDB logs JSON as LONGTEXT).
// Layout per the MySQL source's json_binary.h ("MySQL binary JSON format"): a type byte,
// then the value. Objects and arrays: element count and byte size (2 bytes each in the
// small form, 4 in the large), key entries (offset, 2-byte length), value entries (type byte
// and an offset, or the value itself inlined for literals and 16-bit integers, and in the
// large form also 32-bit integers), then keys and values. Offsets count from the start of
// the container (after its type byte). Rendered as MySQL prints JSON (Json_wrapper::
// to_string), without whitespace: keys in stored order (sorted by length, then bytes),
// doubles with a ".0" when they would read as integers, DATE/TIME/DATETIME/TIMESTAMP
// opaques as their strings with 6 fractional digits, DECIMAL opaques as numbers and any
// other opaque as "base64:type<N>:<base64>".
// ---------------------------------------------------------------------------------------

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
    case 0x00:
    case 0x01:
      return jsonContainer(b, v, at, true, type === 0x01, depth);
    case 0x02:
    case 0x03:
      return jsonContainer(b, v, at, false, type === 0x03, depth);
    case 0x04:
      jneed(b, at + 1);
      if (b[at] > 2) throw new BinlogError(`bad binary JSON literal ${b[at]}`);
      return b[at] === 1 ? "true" : b[at] === 2 ? "false" : "null";
    case 0x05:
      jneed(b, at + 2);
      return String(v.getInt16(at, true));
    case 0x06:
      jneed(b, at + 2);
      return String(v.getUint16(at, true));
    case 0x07:
      jneed(b, at + 4);
      return String(v.getInt32(at, true));
    case 0x08:
      jneed(b, at + 4);
      return String(v.getUint32(at, true));
    case 0x09:
      jneed(b, at + 8);
      return v.getBigInt64(at, true).toString();
    case 0x0a:
      jneed(b, at + 8);
      return v.getBigUint64(at, true).toString();
    case 0x0b: {
      jneed(b, at + 8);
      const t = floatText(v.getFloat64(at, true), false);
      return /[.e]/.test(t) ? t : t + ".0";
    }
    case 0x0c: {
      const [n, from] = jsonVarlen(b, at);
      jneed(b, from + n);
      return JSON.stringify(jdec.decode(b.subarray(from, from + n)));
    }
    case 0x0f: {
      jneed(b, at + 1);
      const [n, from] = jsonVarlen(b, at + 1);
      jneed(b, from + n);
      return jsonOpaque(b[at], b.subarray(from, from + n));
    }
    default:
      throw new BinlogError(`unknown binary JSON type 0x${type.toString(16)}`);
  }
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
    const inlined = t === 0x04 || t === 0x05 || t === 0x06 ||
      (large && (t === 0x07 || t === 0x08));
    const where = inlined ? e + 1 : at + rd(e + 1);
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
    case T.NEWDECIMAL: {
      if (data.length < 2) throw new BinlogError("truncated decimal in binary JSON");
      return decimal(new Cursor(data, 2), data[0], data[1]);
    }
    case T.DATE:
    case T.NEWDATE:
    case T.DATETIME:
    case T.TIMESTAMP:
    case T.DATETIME2:
    case T.TIMESTAMP2: {
      const [, ymdhms, us] = unpackTemporal(data);
      const ymd = Number(ymdhms >> 17n);
      const hms = Number(ymdhms % (1n << 17n));
      const ym = Math.floor(ymd / 32);
      const date = `${pad(Math.floor(ym / 13), 4)}-${pad(ym % 13)}-${pad(ymd % 32)}`;
      if (fieldType === T.DATE || fieldType === T.NEWDATE) return JSON.stringify(date);
      return JSON.stringify(
        `${date} ${pad(hms >> 12)}:${pad((hms >> 6) & 63)}:${pad(hms & 63)}${fraction(us, 6)}`,
      );
    }
    case T.TIME:
    case T.TIME2: {
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
