/**
 * A table's row reader, built once per table map and schema: one closure per column that
 * reads its value at the cursor and writes its JSON cell (and key part), so the common
 * types (integers, text in an ASCII-compatible character set) skip the per-value type
 * switch, the decoder look-up and the decoder call. Every other column goes through
 * `value` and `cellOf`, the one definition of how a value renders; the fast paths give
 * the same bytes (tests/unit/mysql_row_plan.test.ts compares them). Pure.
 */
import { jsonString } from "../../core/json.ts";
import { encodeKeyPart } from "../../core/keys.ts";
import { cellOf, isBinary, keyPartOf } from "../values.ts";
import type { MysqlColumn, TableSchema } from "../types.ts";
import {
  MYSQL_TYPE_BLOB,
  MYSQL_TYPE_INT24,
  MYSQL_TYPE_LONG,
  MYSQL_TYPE_LONG_BLOB,
  MYSQL_TYPE_LONGLONG,
  MYSQL_TYPE_MEDIUM_BLOB,
  MYSQL_TYPE_SHORT,
  MYSQL_TYPE_STRING,
  MYSQL_TYPE_TINY,
  MYSQL_TYPE_TINY_BLOB,
  MYSQL_TYPE_VAR_STRING,
  MYSQL_TYPE_VARCHAR,
} from "./constants.ts";
import type { Cursor } from "./cursor.ts";
import { asciiCompatible, decoderFor, value } from "./row_values.ts";
import type { TableMap } from "./types.ts";

/** Where one image's reads go: cells in table order, key parts in key order. */
export interface ImageOut {
  cells: string[];
  keys: string[];
}

/** Reads one present, non-NULL column at the cursor into `out`. */
type Reader = (c: Cursor, out: ImageOut) => void;

export interface RowPlan {
  readonly map: TableMap;
  readonly schema: TableSchema;
  /** Per column, in table order. */
  readonly readers: Reader[];
  /** Per column: the positions in the key it fills (undefined: not a key column). */
  readonly keyAt: (number[] | undefined)[];
}

const INT_BYTES: Readonly<Record<number, number>> = {
  [MYSQL_TYPE_TINY]: 1,
  [MYSQL_TYPE_SHORT]: 2,
  [MYSQL_TYPE_INT24]: 3,
  [MYSQL_TYPE_LONG]: 4,
  [MYSQL_TYPE_LONGLONG]: 8,
};
/** Integer columns: cellOf writes their text as is (a JSON number), keyPartOf too. */
const INT_DATA_TYPES = new Set(["tinyint", "smallint", "mediumint", "int", "integer", "bigint"]);
/** Text columns cellOf writes with jsonString (its default branch). */
const TEXT_DATA_TYPES = new Set(["char", "varchar", "tinytext", "text", "mediumtext", "longtext"]);
const BLOB_TYPES = new Set([
  MYSQL_TYPE_BLOB,
  MYSQL_TYPE_TINY_BLOB,
  MYSQL_TYPE_MEDIUM_BLOB,
  MYSQL_TYPE_LONG_BLOB,
]);
/** Printable ASCII but `"` and `\`: UTF-8 (or any ASCII-compatible set) and JSON as is. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7f]*$/;

export function buildPlan(map: TableMap, schema: TableSchema): RowPlan {
  const keyAt = schema.columns.map((_, i) => {
    const at = schema.keyColumns.flatMap((k, pos) => (k === i ? [pos] : []));
    return at.length ? at : undefined;
  });
  const readers = schema.columns.map((col, i) =>
    fastReader(map.columnTypes[i], map.columnMeta[i], col, i, keyAt[i]) ??
      generalReader(map.columnTypes[i], map.columnMeta[i], col, i, keyAt[i])
  );
  return { map, schema, readers, keyAt };
}

/** Any column: `value` then `cellOf` and `keyPartOf`, as every value once was. */
function generalReader(
  type: number,
  meta: number,
  col: MysqlColumn,
  i: number,
  keyAt: number[] | undefined,
): Reader {
  return (c, out) => {
    const v = value(c, type, meta, col);
    out.cells[i] = cellOf(col, v);
    if (keyAt) { for (const k of keyAt) out.keys[k] = keyPartOf(col, v); }
  };
}

function fastReader(
  type: number,
  meta: number,
  col: MysqlColumn,
  i: number,
  keyAt: number[] | undefined,
): Reader | undefined {
  if (col.json || isBinary(col)) return undefined;
  const intBytes = INT_BYTES[type];
  if (intBytes && INT_DATA_TYPES.has(col.dataType)) {
    const read = intBytes === 8 ? int64Reader(col.unsigned) : intReader(intBytes, col.unsigned);
    return (c, out) => {
      const s = read(c);
      out.cells[i] = s;
      if (keyAt) { for (const k of keyAt) out.keys[k] = s; }
    };
  }
  const lenBytes = textLengthBytes(type, meta);
  if (!lenBytes || !TEXT_DATA_TYPES.has(col.dataType)) return undefined;
  const charset = col.charset;
  if (!charset || charset === "binary" || !asciiCompatible(charset)) return undefined;
  const dec = decoderFor(charset);
  return (c, out) => {
    const len = c.le(lenBytes);
    c.need(len);
    const at = c.at;
    c.at += len;
    let s = c.latin1(at, at + len);
    if (PLAIN.test(s)) out.cells[i] = '"' + s + '"';
    else {
      s = dec.decode(c.b.subarray(at, at + len));
      out.cells[i] = jsonString(s);
    }
    if (keyAt) { for (const k of keyAt) out.keys[k] = encodeKeyPart(s); }
  };
}

/**
 * The length prefix size of a text value of this binlog type, or 0 when the type is not
 * plain text (CHAR that is really ENUM or SET, anything else).
 */
function textLengthBytes(type: number, meta: number): number {
  if (type === MYSQL_TYPE_VARCHAR || type === MYSQL_TYPE_VAR_STRING) return meta > 255 ? 2 : 1;
  if (BLOB_TYPES.has(type)) return meta;
  if (type !== MYSQL_TYPE_STRING) return 0;
  // As row_values.ts's stringValue: the real type and length hide in the metadata.
  let real = meta >> 8;
  let max = meta & 0xff;
  if ((real & 0x30) !== 0x30) {
    max |= ((real & 0x30) ^ 0x30) << 4;
    real |= 0x30;
  }
  if (real !== MYSQL_TYPE_STRING) return 0;
  return max > 255 ? 2 : 1;
}

/** A little-endian integer of `n` ≤ 4 bytes, as `value` prints it. */
function intReader(n: number, unsigned: boolean): (c: Cursor) => string {
  const half = 2 ** (8 * n - 1), full = 2 ** (8 * n);
  return (c) => {
    const u = c.le(n);
    return String(!unsigned && u >= half ? u - full : u);
  };
}

/** BIGINT: exact as a double below 2^53, through BigInt beyond. */
function int64Reader(unsigned: boolean): (c: Cursor) => string {
  return (c) => {
    c.need(8);
    const b = c.b, at = c.at;
    const lo = (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
    const hi = (b[at + 4] | (b[at + 5] << 8) | (b[at + 6] << 16) | (b[at + 7] << 24)) >>> 0;
    if (hi < 0x200000) {
      c.at += 8;
      return String(hi * 0x100000000 + lo);
    }
    if (!unsigned && hi >= 0xffe00000) {
      c.at += 8;
      return String((hi - 0x100000000) * 0x100000000 + lo);
    }
    return (unsigned ? c.u64() : c.i64()).toString();
  };
}

/** True when a plan built for `a` reads rows of `b` the same way. */
export function samePlanInput(p: RowPlan, map: TableMap, schema: TableSchema): boolean {
  if (p.map === map && p.schema === schema) return true;
  const a = p.map, s = p.schema;
  if (a.columnTypes.length !== map.columnTypes.length) return false;
  for (let i = 0; i < a.columnTypes.length; i++) {
    if (a.columnTypes[i] !== map.columnTypes[i] || a.columnMeta[i] !== map.columnMeta[i]) {
      return false;
    }
  }
  return s === schema || sameSchema(s, schema);
}

function sameSchema(a: TableSchema, b: TableSchema): boolean {
  if (a.columns.length !== b.columns.length) return false;
  if (a.keyColumns.join() !== b.keyColumns.join()) return false;
  return a.columns.every((x, i) => sameColumn(x, b.columns[i]));
}

function sameColumn(x: MysqlColumn, y: MysqlColumn): boolean {
  return x.name === y.name && x.dataType === y.dataType && x.columnType === y.columnType &&
    x.charset === y.charset && x.fsp === y.fsp && x.unsigned === y.unsigned &&
    x.json === y.json && x.members.length === y.members.length &&
    x.members.every((m, i) => m === y.members[i]);
}
