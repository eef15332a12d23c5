/** What the binlog decoder produces: event headers, table maps, decoded events, its error. */

export interface EventHeader {
  timestamp: number;
  type: number;
  serverId: number;
  eventSize: number;
  /** Position just past this event in its binlog file. */
  logPos: number;
  flags: number;
}

export interface TableMap {
  tableId: bigint;
  schema: string;
  table: string;
  columnTypes: Uint8Array;
  /** Per-column metadata, decoded per type (see `readMeta`). */
  columnMeta: number[];
  nullable: boolean[];
  /** Optional metadata (binlog_row_metadata = MINIMAL or FULL), when the server sent it. */
  meta?: TableMapMeta;
}

/** TABLE_MAP optional metadata (MySQL 8.0.1+, MariaDB 10.5+). */
export interface TableMapMeta {
  /** Per numeric column, in order of the numeric columns: true when unsigned. */
  unsigned?: boolean[];
  /** Collation id per character column (string, varchar, blob types), in their order. */
  collations?: number[];
  /** Collation id per ENUM/SET column, in their order. */
  enumSetCollations?: number[];
  columnNames?: string[];
  setValues?: string[][];
  enumValues?: string[][];
  /** Primary-key column indexes, in key order. */
  primaryKey?: number[];
}

export type RowsOp = "insert" | "update" | "delete";

export type BinlogEvent =
  | { kind: "format"; binlogVersion: number; serverVersion: string; checksum: boolean }
  | { kind: "rotate"; file: string; position: bigint }
  | { kind: "query"; schema: string; query: string }
  | { kind: "xid"; xid: bigint }
  | { kind: "table_map"; map: TableMap }
  | {
    kind: "rows";
    op: RowsOp;
    tableId: bigint;
    flags: number;
    /** Column count, present-column bitmaps and row images (decoded by rows.ts). */
    body: Uint8Array;
    version: 1 | 2;
    /**
     * MySQL 8 PARTIAL_UPDATE_ROWS (type 39, binlog_row_value_options=PARTIAL_JSON): every
     * after image starts with its value options (rows.ts reads them).
     */
    partial?: boolean;
  }
  | { kind: "gtid"; gtid: string }
  | { kind: "mariadb_gtid"; domain: number; server: number; seq: bigint; standalone: boolean }
  | { kind: "gtid_list"; gtids: string[] }
  | { kind: "heartbeat"; file: string }
  /**
   * MySQL 8.0.20+ TRANSACTION_PAYLOAD (binlog_transaction_compression): the events of one
   * transaction, uncompressed and already decoded in order (table maps inside are
   * remembered by the decoder like any other).
   */
  | {
    kind: "transaction_payload";
    events: { header: EventHeader; event: BinlogEvent }[];
  }
  /** Any other event (ANNOTATE_ROWS, BINLOG_CHECKPOINT, ...), skipped by its length. */
  | { kind: "other"; type: number };

/** One decoded event with its header. */
export interface Decoded {
  header: EventHeader;
  event: BinlogEvent;
}

export class BinlogError extends Error {
  override name = "BinlogError";
}
