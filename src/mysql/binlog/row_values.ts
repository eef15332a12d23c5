/**
 * One column value of a row image, read at a cursor by its binlog type and metadata and
 * turned into its text as the server prints it (raw bytes for binary columns). Pure.
 * `value` is called once per value of every row: the common types are read inline.
 */
import { bitsToDecimal, type MysqlValue } from "../values.ts";
import type { MysqlColumn } from "../types.ts";
import {
  MYSQL_TYPE_BIT,
  MYSQL_TYPE_BLOB,
  MYSQL_TYPE_DATE,
  MYSQL_TYPE_DATETIME,
  MYSQL_TYPE_DATETIME2,
  MYSQL_TYPE_DOUBLE,
  MYSQL_TYPE_ENUM,
  MYSQL_TYPE_FLOAT,
  MYSQL_TYPE_GEOMETRY,
  MYSQL_TYPE_INT24,
  MYSQL_TYPE_JSON,
  MYSQL_TYPE_LONG,
  MYSQL_TYPE_LONG_BLOB,
  MYSQL_TYPE_LONGLONG,
  MYSQL_TYPE_MEDIUM_BLOB,
  MYSQL_TYPE_NEWDATE,
  MYSQL_TYPE_NEWDECIMAL,
  MYSQL_TYPE_SET,
  MYSQL_TYPE_SHORT,
  MYSQL_TYPE_STRING,
  MYSQL_TYPE_TIME,
  MYSQL_TYPE_TIME2,
  MYSQL_TYPE_TIMESTAMP,
  MYSQL_TYPE_TIMESTAMP2,
  MYSQL_TYPE_TINY,
  MYSQL_TYPE_TINY_BLOB,
  MYSQL_TYPE_VAR_STRING,
  MYSQL_TYPE_VARCHAR,
  MYSQL_TYPE_YEAR,
} from "./constants.ts";
import type { Cursor } from "./cursor.ts";
import { decodeMysqlJson } from "./json_binary.ts";
import { decimal, floatText } from "./numbers.ts";
import {
  dateText,
  datetime2,
  datetimeText,
  fracUs,
  time2,
  timestampText,
  timeText,
  yearText,
} from "./temporal.ts";
import { BinlogError } from "./types.ts";

export function value(c: Cursor, type: number, meta: number, col: MysqlColumn): MysqlValue {
  switch (type) {
    case MYSQL_TYPE_TINY:
      return int(c.le(1), 1, col.unsigned);
    case MYSQL_TYPE_SHORT:
      return int(c.le(2), 2, col.unsigned);
    case MYSQL_TYPE_INT24:
      return int(c.le(3), 3, col.unsigned);
    case MYSQL_TYPE_LONG:
      return int(c.le(4), 4, col.unsigned);
    case MYSQL_TYPE_LONGLONG:
      return (col.unsigned ? c.u64() : c.i64()).toString();
    case MYSQL_TYPE_FLOAT:
      return floatText(c.f32(), true);
    case MYSQL_TYPE_DOUBLE:
      return floatText(c.f64(), false);
    case MYSQL_TYPE_NEWDECIMAL:
      return decimal(c, meta >> 8, meta & 0xff);
    case MYSQL_TYPE_VARCHAR:
    case MYSQL_TYPE_VAR_STRING: {
      const len = c.le(meta > 255 ? 2 : 1);
      return text(c.take(len), col);
    }
    case MYSQL_TYPE_STRING:
      return stringValue(c, meta, col);
    case MYSQL_TYPE_BLOB:
    case MYSQL_TYPE_GEOMETRY:
    case MYSQL_TYPE_TINY_BLOB:
    case MYSQL_TYPE_MEDIUM_BLOB:
    case MYSQL_TYPE_LONG_BLOB: {
      const len = c.le(meta);
      return text(c.take(len), col);
    }
    case MYSQL_TYPE_JSON: {
      const len = c.le(meta);
      return decodeMysqlJson(c.take(len));
    }
    default:
      return otherValue(c, type, meta, col);
  }
}

/** A little-endian integer of `n` bytes, two's complement unless unsigned. */
function int(u: number, n: number, unsigned: boolean): string {
  const bits = 8 * n;
  return String(!unsigned && u >= 2 ** (bits - 1) ? u - 2 ** bits : u);
}

/** Dates, times, BIT and ENUM: the types `value` does not read itself. */
function otherValue(c: Cursor, type: number, meta: number, col: MysqlColumn): MysqlValue {
  switch (type) {
    case MYSQL_TYPE_YEAR:
      return yearText(c.le(1));
    case MYSQL_TYPE_DATE:
    case MYSQL_TYPE_NEWDATE:
      return dateText(c.le(3));
    case MYSQL_TYPE_TIME2:
      return time2(c, meta);
    case MYSQL_TYPE_DATETIME2:
      return datetime2(c, meta);
    case MYSQL_TYPE_TIMESTAMP2: {
      const s = c.be(4);
      return timestampText(s, fracUs(c, meta), meta);
    }
    case MYSQL_TYPE_TIMESTAMP:
      return timestampText(c.le(4), 0, 0);
    case MYSQL_TYPE_DATETIME:
      return datetimeText(c.u64());
    case MYSQL_TYPE_TIME:
      return timeText(c.le(3));
    case MYSQL_TYPE_BIT: {
      const n = (meta >> 8) + ((meta & 0xff) ? 1 : 0);
      return bitsToDecimal(c.take(n));
    }
    case MYSQL_TYPE_ENUM:
      return col.members[c.le(meta & 0xff) - 1] ?? "";
    default:
      throw new BinlogError(`column ${col.name}: unsupported binlog column type ${type}`);
  }
}

/** STRING: CHAR/BINARY, or ENUM/SET, whose real type hides in the metadata. */
function stringValue(c: Cursor, meta: number, col: MysqlColumn): MysqlValue {
  let real = meta >> 8;
  let max = meta & 0xff;
  if ((real & 0x30) !== 0x30) {
    max |= ((real & 0x30) ^ 0x30) << 4;
    real |= 0x30;
  }
  if (real === MYSQL_TYPE_ENUM) {
    const i = c.le(max);
    return i === 0 ? "" : (col.members[i - 1] ?? String(i));
  }
  if (real === MYSQL_TYPE_SET) {
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

function text(bytes: Uint8Array, col: MysqlColumn): MysqlValue {
  if (!col.charset || col.charset === "binary") {
    // Binary columns keep their bytes; a text-typed binary value is shown as UTF-8.
    return col.dataType.includes("text") || col.dataType.includes("char") || col.json
      ? decoderFor(null).decode(bytes)
      : bytes.slice();
  }
  return decoderFor(col.charset).decode(bytes);
}

/** Text decoders by MySQL character set name (null: UTF-8). */
const decoders = new Map<string | null, { decode(bytes: Uint8Array): string }>();
export function decoderFor(charset: string | null): { decode(bytes: Uint8Array): string } {
  let d = decoders.get(charset);
  if (!d) {
    d = charset === "utf32" ? { decode: utf32 } : new TextDecoder(encodingOf(charset));
    decoders.set(charset, d);
  }
  return d;
}

/** UTF-32 (big-endian code points, as MySQL stores it): no WHATWG decoder has it. */
function utf32(bytes: Uint8Array): string {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let out = "";
  for (let i = 0; i + 4 <= bytes.length; i += 4) {
    const cp = v.getUint32(i);
    out += cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? String.fromCodePoint(cp) : "\ufffd";
  }
  return out;
}

const ENCODINGS: ReadonlyMap<string, string> = new Map([
  ["latin1", "windows-1252"],
  ["cp1250", "windows-1250"],
  ["cp1251", "windows-1251"],
  ["cp1256", "windows-1256"],
  ["cp1257", "windows-1257"],
  ["greek", "iso-8859-7"],
  ["hebrew", "iso-8859-8"],
  ["koi8r", "koi8-r"],
  ["sjis", "shift_jis"],
  ["cp932", "shift_jis"],
  ["gbk", "gbk"],
  ["gb2312", "gbk"],
  ["big5", "big5"],
  ["euckr", "euc-kr"],
]);

/**
 * True when the character set's decoder maps each byte below 0x80 to that ASCII character
 * (all of them but the UTF-16 and UTF-32 ones), so ASCII bytes need no decoder call.
 */
export function asciiCompatible(charset: string): boolean {
  const e = encodingOf(charset);
  return e !== "utf-16le" && e !== "utf-16be" && charset !== "utf32";
}

/** The WHATWG encoding of a MySQL character set (UTF-8 for the rest). */
function encodingOf(charset: string | null): string {
  if (!charset) return "utf-8";
  if (charset === "utf16le") return "utf-16le";
  if (charset === "utf16" || charset === "ucs2") return "utf-16be";
  return ENCODINGS.get(charset) ?? "utf-8";
}
