/**
 * Row images of WRITE/UPDATE/DELETE_ROWS events, decoded with the table map (types,
 * metadata) and the table's schema (signedness, charsets, ENUM/SET members). Pure.
 * The value of each column is read by binlog/row_values.ts.
 */
import { lenenc } from "./binlog/bytes.ts";
import { MYSQL_TYPE_JSON } from "./binlog/constants.ts";
import { Cursor } from "./binlog/cursor.ts";
import { value } from "./binlog/row_values.ts";
import { BinlogError, type BinlogEvent, type TableMap } from "./binlog/types.ts";
import { cellOf, keyOf, type MysqlValue } from "./values.ts";
import type { MysqlColumn, TableSchema } from "./types.ts";

export { decodeMysqlJson } from "./binlog/json_binary.ts";
export { floatText } from "./binlog/numbers.ts";

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

type RowsEvent = Extract<BinlogEvent, { kind: "rows" }>;

function bitCount(bits: Uint8Array, n: number): number {
  let k = 0;
  for (let i = 0; i < n; i++) if (bits[i >> 3] & (1 << (i & 7))) k++;
  return k;
}

/** Decode every row of a rows event into cells and keys. */
export function decodeRowsEvent(
  ev: RowsEvent,
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
  const images = new ImageReader(ev, map, schema);
  const out: RowChange[] = [];
  const c = new Cursor(b, at);
  try {
    while (c.at < b.length) {
      if (ev.op === "insert") out.push({ op: "insert", after: images.read(present1, c, true) });
      else if (ev.op === "delete") {
        out.push({ op: "delete", before: images.read(present1, c, false) });
      } else {
        const before = images.read(present1, c, false);
        out.push({ op: "update", before, after: images.read(present2, c, true) });
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

/** Reads the row images of one rows event. */
class ImageReader {
  readonly #n: number;
  readonly #keyCols: MysqlColumn[];
  readonly #jsonCols: number;

  constructor(
    readonly ev: RowsEvent,
    readonly map: TableMap,
    readonly schema: TableSchema,
  ) {
    this.#n = schema.columns.length;
    this.#keyCols = schema.keyColumns.map((k) => schema.columns[k]);
    this.#jsonCols = Array.from(map.columnTypes).filter((t) => t === MYSQL_TYPE_JSON).length;
  }

  /** One image: the null bitmap of its present columns, then their values. */
  read(present: Uint8Array, c: Cursor, after: boolean): RowImage {
    const { map, schema } = this;
    const n = this.#n;
    if (after && this.ev.partial) this.#partialOptions(c);
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
      key: keyOf(this.#keyCols, schema.keyColumns.map((k) => values[k])),
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
  }

  /**
   * PARTIAL_UPDATE_ROWS: value options, then (PARTIAL_JSON_UPDATES) one bit per JSON
   * column telling whether its value is a diff against the before image.
   */
  #partialOptions(c: Cursor) {
    let options: number;
    [options, c.at] = lenenc(c.b, c.at);
    if (!(options & 1)) return;
    const bits = c.take((this.#jsonCols + 7) >> 3);
    if (bits.some((x) => x !== 0)) {
      throw new BinlogError(
        `table ${this.schema.schema}.${this.schema.table}: partial JSON updates are not ` +
          "supported; set binlog_row_value_options='' on the server",
      );
    }
  }
}
