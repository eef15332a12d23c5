/** Types shared by the MySQL driver's parts (schema look-ups, binlog rows, chunk reads). */

/** One column of a replicated table, from information_schema.COLUMNS. */
export interface MysqlColumn {
  /** COLUMN_NAME. */
  name: string;
  /** DATA_TYPE, lower case: `int`, `varchar`, `enum`, `datetime`, ... */
  dataType: string;
  /** COLUMN_TYPE, lower case: `int(10) unsigned`, `enum('a','b')`, `decimal(10,2)`, ... */
  columnType: string;
  /** CHARACTER_SET_NAME (null for non-text columns). */
  charset: string | null;
  /** DATETIME_PRECISION / fractional seconds digits (0 when none). */
  fsp: number;
  /** True when the column is unsigned (integer, decimal, float types). */
  unsigned: boolean;
  /** A JSON column (MySQL JSON type, or MariaDB's LONGTEXT with a JSON_VALID check). */
  json: boolean;
  /** ENUM labels or SET members in declaration order (empty otherwise). */
  members: string[];
}

/** A replicated table: columns in table order and the primary-key column indexes. */
export interface TableSchema {
  schema: string;
  table: string;
  columns: MysqlColumn[];
  /** Indexes into `columns`, in primary-key order. Empty when the table has no key. */
  keyColumns: number[];
  /**
   * A table without a primary key: the column indexes of each unique index whose columns
   * are all NOT NULL and none an expression (candidates to cover a configured key).
   */
  uniqueKeys?: number[][];
  /**
   * False when the key is configured and no unique index covers it: keyset pagination could
   * skip rows sharing a key value (a primary key, or unset: pageable).
   */
  pageable?: boolean;
}
