/**
 * Row images of WRITE/UPDATE/DELETE_ROWS events, decoded with the table map (types,
 * metadata) and the table's schema (signedness, charsets, ENUM/SET members). Pure.
 * The value of each column is read by binlog/row_values.ts.
 */
import { lenenc } from "./binlog/bytes.ts";
import { MYSQL_TYPE_JSON } from "./binlog/constants.ts";
import { Cursor } from "./binlog/cursor.ts";
import { buildPlan, type ImageOut, type RowPlan, samePlanInput } from "./binlog/row_plan.ts";
import { BinlogError, type BinlogEvent, type TableMap } from "./binlog/types.ts";
import type { TableSchema } from "./types.ts";

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

/** An image's present columns and the size of its null bitmap (one bit per present one). */
interface Present {
  bits: Uint8Array;
  nullBytes: number;
}

function present(bits: Uint8Array, n: number): Present {
  let k = 0;
  for (let i = 0; i < n; i++) if (bits[i >> 3] & (1 << (i & 7))) k++;
  return { bits, nullBytes: (k + 7) >> 3 };
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
  const present1 = present(b.subarray(at, at + bitmapLen), n);
  at += bitmapLen;
  let present2 = present1;
  if (ev.op === "update") {
    present2 = present(b.subarray(at, at + bitmapLen), n);
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

/**
 * Row plans by table: a table map arrives with every transaction, so plans are kept by
 * table name and reused while the map and schema read rows the same way.
 */
const plans = new Map<string, RowPlan>();

function planFor(map: TableMap, schema: TableSchema): RowPlan {
  const name = `${schema.schema}\u0000${schema.table}`;
  let plan = plans.get(name);
  if (!plan || !samePlanInput(plan, map, schema)) plans.set(name, plan = buildPlan(map, schema));
  return plan;
}

/** Reads the row images of one rows event. */
class ImageReader {
  readonly #n: number;
  readonly #jsonCols: number;
  readonly #plan: RowPlan;

  constructor(
    readonly ev: RowsEvent,
    readonly map: TableMap,
    readonly schema: TableSchema,
  ) {
    this.#n = schema.columns.length;
    this.#jsonCols = Array.from(map.columnTypes).filter((t) => t === MYSQL_TYPE_JSON).length;
    this.#plan = planFor(map, schema);
  }

  /** One image: the null bitmap of its present columns, then their values. */
  read({ bits, nullBytes }: Present, c: Cursor, after: boolean): RowImage {
    const n = this.#n;
    if (after && this.ev.partial) this.#partialOptions(c);
    c.need(nullBytes);
    const nullsAt = c.at;
    c.at += nullBytes;
    const b = c.b;
    const readers = this.#plan.readers;
    const out: ImageOut = {
      cells: new Array<string>(n),
      keys: new Array<string>(this.schema.keyColumns.length),
    };
    let missing: number[] | undefined;
    let p = 0;
    for (let i = 0; i < n; i++) {
      if (!(bits[i >> 3] & (1 << (i & 7)))) {
        (missing ??= []).push(i);
        this.#null(out, i);
        continue;
      }
      if (b[nullsAt + (p >> 3)] & (1 << (p & 7))) this.#null(out, i);
      else readers[i](c, out);
      p++;
    }
    const keys = out.keys;
    const img: RowImage = { cells: out.cells, key: keys.length === 1 ? keys[0] : keys.join("/") };
    if (missing) this.#missing(img, missing);
    return img;
  }

  /** A NULL (or absent) column: `null`, and an empty key part. */
  #null(out: ImageOut, i: number) {
    out.cells[i] = "null";
    const at = this.#plan.keyAt[i];
    if (at) { for (const k of at) out.keys[k] = ""; }
  }

  #missing(img: RowImage, missing: number[]) {
    const schema = this.schema;
    if (schema.keyColumns.some((k) => missing.includes(k))) {
      throw new BinlogError(
        `table ${schema.schema}.${schema.table}: a row image lacks key columns ` +
          "(binlog_row_image must be FULL, or the key must be the primary key)",
      );
    }
    img.missing = missing;
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
