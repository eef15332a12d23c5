/**
 * The schema a rows event was written with. With `binlog_row_metadata = FULL` the TABLE_MAP
 * carries column names, signedness, charsets, ENUM/SET members and the primary key, so
 * events written before an ALTER TABLE decode with the columns they had then. Otherwise the
 * current information_schema definition is used when it still fits.
 */
import { realType, type TableMap } from "./binlog.ts";
import type { MysqlColumn, TableSchema } from "./types.ts";

const NUMERIC = new Set([1, 2, 3, 4, 5, 8, 9, 246]);
const CHARACTER = new Set([254, 15, 253, 252, 249, 250, 251]);

/** Character set of a collation id (the common ones; unknown ids are read as UTF-8). */
export function charsetOfCollation(id: number): string | null {
  if (id === 63) return null; // binary
  if (id === 8 || id === 5 || id === 15 || id === 31 || id === 47 || id === 48 || id === 49) {
    return "latin1";
  }
  if (id === 11 || id === 65) return "ascii";
  if (id === 33 || id === 83 || (id >= 192 && id <= 215) || id === 223) return "utf8mb3";
  return "utf8mb4";
}

function dataTypeOf(type: number, binary: boolean): string {
  switch (type) {
    case 1:
      return "tinyint";
    case 2:
      return "smallint";
    case 9:
      return "mediumint";
    case 3:
      return "int";
    case 8:
      return "bigint";
    case 4:
      return "float";
    case 5:
      return "double";
    case 0:
    case 246:
      return "decimal";
    case 13:
      return "year";
    case 10:
    case 14:
      return "date";
    case 11:
    case 19:
      return "time";
    case 12:
    case 18:
      return "datetime";
    case 7:
    case 17:
      return "timestamp";
    case 16:
      return "bit";
    case 15:
    case 253:
      return binary ? "varbinary" : "varchar";
    case 254:
      return binary ? "binary" : "char";
    case 247:
      return "enum";
    case 248:
      return "set";
    case 245:
      return "json";
    case 255:
      return "geometry";
    default:
      return binary ? "blob" : "text";
  }
}

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
    if (NUMERIC.has(type)) unsigned = meta.unsigned?.[numeric++] ?? cur?.unsigned ?? false;
    if (CHARACTER.has(type)) {
      const coll = meta.collations?.[character++];
      charset = coll === undefined ? (cur?.charset ?? "utf8mb4") : charsetOfCollation(coll);
    }
    if (type === 247 || type === 248) {
      const coll = meta.enumSetCollations?.[enumSet++];
      charset = coll === undefined ? (cur?.charset ?? "utf8mb4") : charsetOfCollation(coll);
      members = (type === 247 ? meta.enumValues?.[enums++] : meta.setValues?.[sets++]) ??
        cur?.members ?? [];
    }
    const dataType = dataTypeOf(type, CHARACTER.has(type) && charset === null);
    const fsp = type === 17 || type === 18 || type === 19 ? map.columnMeta[i] : 0;
    columns.push({
      name,
      dataType,
      columnType: cur?.columnType ?? dataType,
      charset,
      fsp,
      unsigned,
      json: type === 245 || (cur?.json ?? false),
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
