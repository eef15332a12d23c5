/**
 * The schema a rows event was written with. With `binlog_row_metadata = FULL` the TABLE_MAP
 * carries column names, signedness, charsets, ENUM/SET members and the primary key, so
 * events written before an ALTER TABLE decode with the columns they had then. Otherwise the
 * current information_schema definition is used when it still fits.
 */
import {
  CHARACTER_TYPES,
  isEnumOrSet,
  MYSQL_TYPE_BIT,
  MYSQL_TYPE_DATE,
  MYSQL_TYPE_DATETIME,
  MYSQL_TYPE_DATETIME2,
  MYSQL_TYPE_DECIMAL,
  MYSQL_TYPE_DOUBLE,
  MYSQL_TYPE_ENUM,
  MYSQL_TYPE_FLOAT,
  MYSQL_TYPE_GEOMETRY,
  MYSQL_TYPE_INT24,
  MYSQL_TYPE_JSON,
  MYSQL_TYPE_LONG,
  MYSQL_TYPE_LONGLONG,
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
  MYSQL_TYPE_VAR_STRING,
  MYSQL_TYPE_VARCHAR,
  MYSQL_TYPE_YEAR,
  NUMERIC_TYPES,
  realType,
} from "./binlog/constants.ts";
import type { TableMap } from "./binlog/types.ts";
import type { MysqlColumn, TableSchema } from "./types.ts";

/**
 * Character set of a collation id: the common ones; undefined for the rest, which then
 * take the column's character set from the catalogue (UTF-8 when it has none).
 */
export function charsetOfCollation(id: number): string | null | undefined {
  if (id === 63) return null; // binary
  if (id === 8 || id === 5 || id === 15 || id === 31 || id === 47 || id === 48 || id === 49) {
    return "latin1";
  }
  if (id === 11 || id === 65) return "ascii";
  if (id === 33 || id === 83 || (id >= 192 && id <= 215) || id === 223) return "utf8mb3";
  if (id === 45 || id === 46 || (id >= 224 && id <= 247)) return "utf8mb4";
  return WIDE_COLLATIONS.get(id);
}

/** The default and binary collations of the two-and-four-byte character sets. */
const WIDE_COLLATIONS: ReadonlyMap<number, string> = new Map([
  [35, "ucs2"],
  [90, "ucs2"],
  [54, "utf16"],
  [55, "utf16"],
  [56, "utf16le"],
  [62, "utf16le"],
  [60, "utf32"],
  [61, "utf32"],
]);

/** A column's character set: its collation's where known, else the catalogue's. */
function charsetOf(coll: number | undefined, cur: MysqlColumn | undefined): string | null {
  const known = coll === undefined ? undefined : charsetOfCollation(coll);
  return known !== undefined ? known : (cur?.charset ?? "utf8mb4");
}

/** DATA_TYPE of a column from its binlog type, for types without a text/binary twin. */
const DATA_TYPES: ReadonlyMap<number, string> = new Map([
  [MYSQL_TYPE_TINY, "tinyint"],
  [MYSQL_TYPE_SHORT, "smallint"],
  [MYSQL_TYPE_INT24, "mediumint"],
  [MYSQL_TYPE_LONG, "int"],
  [MYSQL_TYPE_LONGLONG, "bigint"],
  [MYSQL_TYPE_FLOAT, "float"],
  [MYSQL_TYPE_DOUBLE, "double"],
  [MYSQL_TYPE_DECIMAL, "decimal"],
  [MYSQL_TYPE_NEWDECIMAL, "decimal"],
  [MYSQL_TYPE_YEAR, "year"],
  [MYSQL_TYPE_DATE, "date"],
  [MYSQL_TYPE_NEWDATE, "date"],
  [MYSQL_TYPE_TIME, "time"],
  [MYSQL_TYPE_TIME2, "time"],
  [MYSQL_TYPE_DATETIME, "datetime"],
  [MYSQL_TYPE_DATETIME2, "datetime"],
  [MYSQL_TYPE_TIMESTAMP, "timestamp"],
  [MYSQL_TYPE_TIMESTAMP2, "timestamp"],
  [MYSQL_TYPE_BIT, "bit"],
  [MYSQL_TYPE_ENUM, "enum"],
  [MYSQL_TYPE_SET, "set"],
  [MYSQL_TYPE_JSON, "json"],
  [MYSQL_TYPE_GEOMETRY, "geometry"],
]);

function dataTypeOf(type: number, binary: boolean): string {
  const known = DATA_TYPES.get(type);
  if (known) return known;
  if (type === MYSQL_TYPE_VARCHAR || type === MYSQL_TYPE_VAR_STRING) {
    return binary ? "varbinary" : "varchar";
  }
  if (type === MYSQL_TYPE_STRING) return binary ? "binary" : "char";
  return binary ? "blob" : "text";
}

/** Types whose TABLE_MAP metadata is the fractional seconds precision. */
const FSP_TYPES: ReadonlySet<number> = new Set([
  MYSQL_TYPE_TIMESTAMP2,
  MYSQL_TYPE_DATETIME2,
  MYSQL_TYPE_TIME2,
]);

export function schemaForEvent(
  map: TableMap,
  current: TableSchema | undefined,
): TableSchema | undefined {
  const n = map.columnTypes.length;
  const meta = map.meta;
  if (!meta?.columnNames || meta.columnNames.length !== n) {
    return current && current.columns.length === n ? current : undefined;
  }
  let numeric = 0, character = 0, enumSet = 0, enums = 0, sets = 0;
  const columns: MysqlColumn[] = [];
  for (let i = 0; i < n; i++) {
    const name = meta.columnNames[i];
    const cur = current?.columns.find((c) => c.name === name);
    const type = realType(map.columnTypes[i], map.columnMeta[i]);
    let charset: string | null = null;
    let unsigned = false;
    let members: string[] = [];
    if (NUMERIC_TYPES.has(type)) unsigned = meta.unsigned?.[numeric++] ?? cur?.unsigned ?? false;
    if (CHARACTER_TYPES.has(type)) {
      const coll = meta.collations?.[character++];
      charset = charsetOf(coll, cur);
    }
    if (isEnumOrSet(type)) {
      const coll = meta.enumSetCollations?.[enumSet++];
      charset = charsetOf(coll, cur);
      members =
        (type === MYSQL_TYPE_ENUM ? meta.enumValues?.[enums++] : meta.setValues?.[sets++]) ??
          cur?.members ?? [];
    }
    const dataType = dataTypeOf(type, CHARACTER_TYPES.has(type) && charset === null);
    const fsp = FSP_TYPES.has(type) ? map.columnMeta[i] : 0;
    columns.push({
      name,
      dataType,
      columnType: cur?.columnType ?? dataType,
      charset,
      fsp,
      unsigned,
      json: type === MYSQL_TYPE_JSON || (cur?.json ?? false),
      members,
    });
  }
  const keyColumns = meta.primaryKey?.length
    ? meta.primaryKey
    : (current
      ? current.keyColumns.map((k) => meta.columnNames!.indexOf(current.columns[k].name))
      : []);
  if (keyColumns.includes(-1)) return undefined;
  return { schema: map.schema, table: map.table, columns, keyColumns };
}
