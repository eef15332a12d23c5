/**
 * TABLE_MAP events: the table's name, column types and per-type metadata, nullability,
 * and the optional metadata (binlog_row_metadata = MINIMAL or FULL) that names columns,
 * signedness, charsets, ENUM/SET members and the primary key. Pure.
 */
import { lenenc } from "./bytes.ts";
import {
  CHARACTER_TYPES,
  isEnumOrSet,
  MYSQL_TYPE_BIT,
  MYSQL_TYPE_BLOB,
  MYSQL_TYPE_DATETIME2,
  MYSQL_TYPE_DOUBLE,
  MYSQL_TYPE_ENUM,
  MYSQL_TYPE_FLOAT,
  MYSQL_TYPE_GEOMETRY,
  MYSQL_TYPE_JSON,
  MYSQL_TYPE_NEWDECIMAL,
  MYSQL_TYPE_SET,
  MYSQL_TYPE_STRING,
  MYSQL_TYPE_TIME2,
  MYSQL_TYPE_TIMESTAMP2,
  MYSQL_TYPE_VAR_STRING,
  MYSQL_TYPE_VARCHAR,
  NUMERIC_TYPES,
  realType,
} from "./constants.ts";
import { tableIdAt } from "./events.ts";
import { BinlogError, type TableMap, type TableMapMeta } from "./types.ts";

const dec = new TextDecoder();

export function tableMapEvent(b: Uint8Array, idLen: 4 | 6): TableMap {
  if (b.length < idLen + 2) throw new BinlogError("truncated TABLE_MAP event");
  const tableId = tableIdAt(new DataView(b.buffer, b.byteOffset, b.byteLength), idLen);
  let at = idLen + 2;
  const dbLen = b[at++];
  const schema = dec.decode(b.subarray(at, at + dbLen));
  at += dbLen + 1;
  const tLen = b[at++];
  const table = dec.decode(b.subarray(at, at + tLen));
  at += tLen + 1;
  let n: number;
  [n, at] = lenenc(b, at);
  const columnTypes = b.slice(at, at + n);
  at += n;
  let metaLen: number;
  [metaLen, at] = lenenc(b, at);
  const meta = b.subarray(at, at + metaLen);
  at += metaLen;
  const nullBits = b.subarray(at, at + ((n + 7) >> 3));
  if (at + ((n + 7) >> 3) > b.length || meta.length < metaLen || columnTypes.length < n) {
    throw new BinlogError("truncated TABLE_MAP event");
  }
  const columnMeta: number[] = [];
  let m = 0;
  for (let i = 0; i < n; i++) {
    const [value, size] = readMeta(columnTypes[i], meta, m);
    columnMeta.push(value);
    m += size;
  }
  const nullable = Array.from({ length: n }, (_, i) => (nullBits[i >> 3] & (1 << (i & 7))) !== 0);
  at += nullBits.length;
  const map: TableMap = { tableId, schema, table, columnTypes, columnMeta, nullable };
  if (at < b.length) map.meta = optionalMeta(b.subarray(at), map);
  return map;
}

/** A column's metadata in a TABLE_MAP: [value, bytes used]. */
function readMeta(type: number, meta: Uint8Array, at: number): [number, number] {
  switch (type) {
    case MYSQL_TYPE_FLOAT:
    case MYSQL_TYPE_DOUBLE:
    case MYSQL_TYPE_BLOB: // length bytes
    case MYSQL_TYPE_GEOMETRY:
    case MYSQL_TYPE_JSON:
    case MYSQL_TYPE_TIMESTAMP2: // fsp
    case MYSQL_TYPE_DATETIME2:
    case MYSQL_TYPE_TIME2:
      return [meta[at], 1];
    case MYSQL_TYPE_VARCHAR: // max length, little-endian
    case MYSQL_TYPE_VAR_STRING:
    case MYSQL_TYPE_BIT: // bits%8, bytes
      return [meta[at] | (meta[at + 1] << 8), 2];
    case MYSQL_TYPE_NEWDECIMAL: // precision, scale
    case MYSQL_TYPE_STRING: // real type, length (big-endian pair)
    case MYSQL_TYPE_ENUM:
    case MYSQL_TYPE_SET:
      return [(meta[at] << 8) | meta[at + 1], 2];
    default:
      return [0, 0];
  }
}

// Optional metadata: type-length-value fields, each read by its own function.

/** How many columns of each kind the per-kind lists count. */
interface Counts {
  numeric: number;
  character: number;
  enumSet: number;
}

/** MySQL's Table_map_log_event::Optional_metadata_field_type. */
const FIELD = {
  SIGNEDNESS: 1,
  DEFAULT_CHARSET: 2,
  COLUMN_CHARSET: 3,
  COLUMN_NAME: 4,
  SET_STR_VALUE: 5,
  ENUM_STR_VALUE: 6,
  GEOMETRY_TYPE: 7,
  SIMPLE_PRIMARY_KEY: 8,
  PRIMARY_KEY_WITH_PREFIX: 9,
  ENUM_AND_SET_DEFAULT_CHARSET: 10,
  ENUM_AND_SET_COLUMN_CHARSET: 11,
  COLUMN_VISIBILITY: 12,
} as const;

type FieldReader = (v: Uint8Array, out: TableMapMeta, counts: Counts) => void;

/** A reader per field type; GEOMETRY_TYPE and COLUMN_VISIBILITY are not needed. */
const FIELDS: Readonly<Record<number, FieldReader>> = {
  // One bit per numeric column, most significant first.
  [FIELD.SIGNEDNESS]: (v, out, c) => {
    out.unsigned = Array.from(
      { length: c.numeric },
      (_, i) => (v[i >> 3] & (0x80 >> (i & 7))) !== 0,
    );
  },
  [FIELD.DEFAULT_CHARSET]: (v, out, c) => void (out.collations = collations(v, c.character)),
  [FIELD.COLUMN_CHARSET]: (v, out) => void (out.collations = ints(v)),
  [FIELD.COLUMN_NAME]: (v, out) => void (out.columnNames = strs(v)),
  [FIELD.SET_STR_VALUE]: (v, out) => void (out.setValues = lists(v)),
  [FIELD.ENUM_STR_VALUE]: (v, out) => void (out.enumValues = lists(v)),
  [FIELD.SIMPLE_PRIMARY_KEY]: (v, out) => void (out.primaryKey = ints(v)),
  // (column, prefix length) pairs.
  [FIELD.PRIMARY_KEY_WITH_PREFIX]: (v, out) =>
    void (out.primaryKey = ints(v).filter((_, k) => k % 2 === 0)),
  [FIELD.ENUM_AND_SET_DEFAULT_CHARSET]: (v, out, c) =>
    void (out.enumSetCollations = collations(v, c.enumSet)),
  [FIELD.ENUM_AND_SET_COLUMN_CHARSET]: (v, out) => void (out.enumSetCollations = ints(v)),
};

function optionalMeta(b: Uint8Array, map: TableMap): TableMapMeta {
  const out: TableMapMeta = {};
  const types = Array.from(map.columnTypes, (t, i) => realType(t, map.columnMeta[i]));
  const counts: Counts = {
    numeric: types.filter((t) => NUMERIC_TYPES.has(t)).length,
    character: types.filter((t) => CHARACTER_TYPES.has(t)).length,
    enumSet: types.filter(isEnumOrSet).length,
  };
  let at = 0;
  while (at < b.length) {
    const type = b[at];
    let len: number;
    [len, at] = lenenc(b, at + 1);
    const v = b.subarray(at, at + len);
    at += len;
    FIELDS[type]?.(v, out, counts);
  }
  return out;
}

function strs(v: Uint8Array): string[] {
  const list: string[] = [];
  let i = 0;
  while (i < v.length) {
    let len: number;
    [len, i] = lenenc(v, i);
    list.push(dec.decode(v.subarray(i, i + len)));
    i += len;
  }
  return list;
}

function lists(v: Uint8Array): string[][] {
  const all: string[][] = [];
  let i = 0;
  while (i < v.length) {
    let count: number;
    [count, i] = lenenc(v, i);
    const one: string[] = [];
    for (let k = 0; k < count; k++) {
      let len: number;
      [len, i] = lenenc(v, i);
      one.push(dec.decode(v.subarray(i, i + len)));
      i += len;
    }
    all.push(one);
  }
  return all;
}

function ints(v: Uint8Array): number[] {
  const list: number[] = [];
  let i = 0;
  while (i < v.length) {
    let x: number;
    [x, i] = lenenc(v, i);
    list.push(x);
  }
  return list;
}

/** Default collation plus (column, collation) exceptions, expanded to one per column. */
function collations(v: Uint8Array, count: number): number[] {
  const [def, i] = lenenc(v, 0);
  const list = new Array<number>(count).fill(def);
  const pairs = ints(v.subarray(i));
  for (let k = 0; k + 1 < pairs.length; k += 2) list[pairs[k]] = pairs[k + 1];
  return list;
}
