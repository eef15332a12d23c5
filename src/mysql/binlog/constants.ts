/**
 * The numbers of the MySQL binlog format, named once: column type codes (as MySQL's
 * `enum_field_types` names them) and event type codes. Everything else in the binlog
 * decoder uses these names.
 */

export const MYSQL_TYPE_DECIMAL = 0;
export const MYSQL_TYPE_TINY = 1;
export const MYSQL_TYPE_SHORT = 2;
export const MYSQL_TYPE_LONG = 3;
export const MYSQL_TYPE_FLOAT = 4;
export const MYSQL_TYPE_DOUBLE = 5;
export const MYSQL_TYPE_NULL = 6;
export const MYSQL_TYPE_TIMESTAMP = 7;
export const MYSQL_TYPE_LONGLONG = 8;
export const MYSQL_TYPE_INT24 = 9;
export const MYSQL_TYPE_DATE = 10;
export const MYSQL_TYPE_TIME = 11;
export const MYSQL_TYPE_DATETIME = 12;
export const MYSQL_TYPE_YEAR = 13;
export const MYSQL_TYPE_NEWDATE = 14;
export const MYSQL_TYPE_VARCHAR = 15;
export const MYSQL_TYPE_BIT = 16;
export const MYSQL_TYPE_TIMESTAMP2 = 17;
export const MYSQL_TYPE_DATETIME2 = 18;
export const MYSQL_TYPE_TIME2 = 19;
export const MYSQL_TYPE_JSON = 245;
export const MYSQL_TYPE_NEWDECIMAL = 246;
export const MYSQL_TYPE_ENUM = 247;
export const MYSQL_TYPE_SET = 248;
export const MYSQL_TYPE_TINY_BLOB = 249;
export const MYSQL_TYPE_MEDIUM_BLOB = 250;
export const MYSQL_TYPE_LONG_BLOB = 251;
export const MYSQL_TYPE_BLOB = 252;
export const MYSQL_TYPE_VAR_STRING = 253;
export const MYSQL_TYPE_STRING = 254;
export const MYSQL_TYPE_GEOMETRY = 255;

/**
 * Columns that count as numeric in TABLE_MAP optional metadata (one SIGNEDNESS bit each,
 * in column order). MySQL source: `is_numeric_type` in rpl_utility / log_event.
 */
export const NUMERIC_TYPES: ReadonlySet<number> = new Set([
  MYSQL_TYPE_TINY,
  MYSQL_TYPE_SHORT,
  MYSQL_TYPE_LONG,
  MYSQL_TYPE_FLOAT,
  MYSQL_TYPE_DOUBLE,
  MYSQL_TYPE_LONGLONG,
  MYSQL_TYPE_INT24,
  MYSQL_TYPE_NEWDECIMAL,
]);

/**
 * Columns that carry a character set in TABLE_MAP optional metadata (one collation each,
 * in column order); ENUM and SET have their own list.
 */
export const CHARACTER_TYPES: ReadonlySet<number> = new Set([
  MYSQL_TYPE_STRING,
  MYSQL_TYPE_VARCHAR,
  MYSQL_TYPE_VAR_STRING,
  MYSQL_TYPE_BLOB,
  MYSQL_TYPE_TINY_BLOB,
  MYSQL_TYPE_MEDIUM_BLOB,
  MYSQL_TYPE_LONG_BLOB,
]);

/** ENUM and SET, which TABLE_MAP logs as STRING with the real type in the metadata. */
export function isEnumOrSet(type: number): boolean {
  return type === MYSQL_TYPE_ENUM || type === MYSQL_TYPE_SET;
}

/** The real type of a column (ENUM and SET are logged as STRING with the type in meta). */
export function realType(type: number, meta: number): number {
  if (type !== MYSQL_TYPE_STRING) return type;
  let real = meta >> 8;
  if ((real & 0x30) !== 0x30) real |= 0x30;
  return isEnumOrSet(real) ? real : MYSQL_TYPE_STRING;
}

/** Binlog event type codes (the byte at offset 4 of the event header). */
export const EVENT = {
  QUERY: 2,
  ROTATE: 4,
  FORMAT_DESCRIPTION: 15,
  XID: 16,
  TABLE_MAP: 19,
  WRITE_ROWS_V1: 23,
  UPDATE_ROWS_V1: 24,
  DELETE_ROWS_V1: 25,
  HEARTBEAT: 27,
  WRITE_ROWS: 30,
  UPDATE_ROWS: 31,
  DELETE_ROWS: 32,
  GTID: 33,
  PARTIAL_UPDATE_ROWS: 39,
  TRANSACTION_PAYLOAD: 40,
  MARIADB_ANNOTATE_ROWS: 160,
  MARIADB_BINLOG_CHECKPOINT: 161,
  MARIADB_GTID: 162,
  MARIADB_GTID_LIST: 163,
  /** MariaDB's compressed events (log_bin_compress): the payload is zlib-compressed. */
  MARIADB_QUERY_COMPRESSED: 165,
  MARIADB_WRITE_ROWS_COMPRESSED_V1: 166,
  MARIADB_UPDATE_ROWS_COMPRESSED_V1: 167,
  MARIADB_DELETE_ROWS_COMPRESSED_V1: 168,
  MARIADB_WRITE_ROWS_COMPRESSED: 169,
  MARIADB_UPDATE_ROWS_COMPRESSED: 170,
  MARIADB_DELETE_ROWS_COMPRESSED: 171,
} as const;

/** Length of the v4 event header. */
export const HEADER_LEN = 19;

/**
 * Bytes of a FORMAT_DESCRIPTION body before its post-header length per event type:
 * binlog version (2), server version (50), create time (4), header length (1).
 */
export const FDE_FIXED_LEN = 57;
