/**
 * Chunk rows (text protocol result rows) read straight from their packets into what the
 * snapshot engine takes, by a plan built once per table: integers as their own cell and
 * key part, string-rendered text quoted as is when no byte needs escaping, every other
 * column through `cellOf` / `keyPartOf` (values.ts), the one definition of how a value
 * renders. What it gives equals decoding each value with TextDecoder and rendering it with
 * `cellOf` / `keyOf` (tests/unit/mysql_text_rows.test.ts compares them on random rows). Pure.
 */
import { encodeKeyPart } from "../core/keys.ts";
import { jsonString } from "../core/json.ts";
import type { SnapshotRow } from "../core/snapshot_types.ts";
import { jsonSafeBytes, utf8Slice } from "../core/text.ts";
import { MysqlConnectionError } from "./packets.ts";
import type { TableSchema } from "./types.ts";
import { cellOf, isBinary, keyPartOf, type MysqlValue, rendersAsString } from "./values.ts";

/** GENERAL: text, then cellOf / keyPartOf. INTEGER: its text is the cell and key part. */
const GENERAL = 0, INTEGER = 1, TEXT = 2;
const INT_TYPES = new Set(["tinyint", "smallint", "mediumint", "int", "integer", "bigint"]);

/** How one table's chunk rows are read: built once per chunk read (a few thousand rows). */
export interface TextRowPlan {
  readonly columns: readonly string[];
  readonly schema: TableSchema;
  /** Per table column. */
  readonly kind: readonly number[];
  readonly binary: readonly boolean[];
  /** Per table column: its place in the key, or -1. */
  readonly keyAt: readonly number[];
  /**
   * Per result column: the cursor part its text is (a FLOAT key part's comes from its extra
   * column, its exact double), or -1.
   */
  readonly cursorAt: readonly number[];
  readonly keyParts: number;
  /** Values per row: the table's columns, then one per FLOAT key part. */
  readonly width: number;
}

/**
 * The plan for rows selected as chunks.ts selects them: every column (binary ones as HEX,
 * BIT as its number), then `(k + 0e0)` per FLOAT key column.
 */
export function textRowPlan(t: TableSchema, columns: readonly string[]): TextRowPlan {
  const keyAt = t.columns.map(() => -1);
  t.keyColumns.forEach((c, k) => (keyAt[c] = k));
  const cursorAt = t.columns.map(() => -1);
  t.keyColumns.forEach((c, k) => {
    if (t.columns[c].dataType === "float") cursorAt.push(k);
    else cursorAt[c] = k;
  });
  const kind = t.columns.map((c) => {
    if (c.json || isBinary(c)) return GENERAL;
    if (INT_TYPES.has(c.dataType)) return INTEGER;
    return rendersAsString(c) ? TEXT : GENERAL;
  });
  const binary = t.columns.map(isBinary);
  const keyParts = t.keyColumns.length;
  return { columns, schema: t, kind, binary, keyAt, cursorAt, keyParts, width: cursorAt.length };
}

const dec = new TextDecoder();

/** A decimal integer as JSON writes it (no `+`, no leading zero: ZEROFILL prints them). */
function plainInteger(b: Uint8Array, start: number, end: number): boolean {
  let k = start;
  if (b[k] === 0x2d /* - */) k++;
  if (k >= end) return false;
  if (b[k] === 0x30 /* 0 */) return k + 1 === end && k === start;
  for (; k < end; k++) {
    const c = b[k];
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

function bytesOf(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function truncated(): never {
  throw new MysqlConnectionError("truncated packet from the server");
}

/**
 * One result row packet (lenenc values, 0xfb for NULL) of `plan`'s table. The packet is
 * decoded as UTF-8 once; when that gives one character per byte, each value's text is a
 * substring of it (what decoding its bytes alone gives), else each value is decoded alone.
 */
export function readTextRow(plan: TextRowPlan, p: Uint8Array): SnapshotRow {
  const { kind, keyAt, cursorAt, keyParts, width } = plan;
  const cols = plan.schema.columns;
  const n = cols.length;
  const whole = utf8Slice(p, 0, p.length);
  const oneToOne = whole.length === p.length;
  const cells = new Array<string>(n);
  // The cursor, and the key parts (one key column needs no array of parts).
  const after = new Array<string>(keyParts);
  const parts = keyParts === 1 ? null : new Array<string>(keyParts);
  let key = "";
  let at = 0;
  for (let i = 0; i < width; i++) {
    if (at >= p.length) truncated();
    let len = p[at++];
    if (len === 0xfb) {
      // As chunks.ts read cursors: a NULL key part's text is "", a FLOAT's exact value null.
      if (cursorAt[i] >= 0) after[cursorAt[i]] = i < n ? "" : null as unknown as string;
      if (i >= n) continue;
      cells[i] = "null";
      if (keyAt[i] >= 0) {
        if (parts === null) key = "";
        else parts[keyAt[i]] = "";
      }
      continue;
    }
    if (len >= 0xfc) {
      const size = len === 0xfc ? 2 : len === 0xfd ? 3 : 8;
      if (at + size > p.length) truncated();
      len = p[at] | (p[at + 1] << 8) | (size > 2 ? p[at + 2] << 16 : 0);
      if (size === 8) len += (p[at + 3] << 24 >>> 0) + 2 ** 32 * (p[at + 4] | (p[at + 5] << 8));
      at += size;
    }
    const start = at;
    at += len;
    if (at > p.length) truncated();
    const s = oneToOne ? whole.substring(start, at) : dec.decode(p.subarray(start, at));
    if (cursorAt[i] >= 0) after[cursorAt[i]] = s;
    if (i >= n) continue;
    let part: string;
    const how = kind[i];
    if (how === INTEGER && plainInteger(p, start, at)) {
      cells[i] = part = s;
    } else if (how === TEXT) {
      cells[i] = jsonSafeBytes(p, start, at) ? '"' + s + '"' : jsonString(s);
      if (keyAt[i] < 0) continue;
      part = encodeKeyPart(s);
    } else {
      const v: MysqlValue = plan.binary[i] ? bytesOf(s) : s;
      cells[i] = cellOf(cols[i], v);
      if (keyAt[i] < 0) continue;
      part = keyPartOf(cols[i], v);
    }
    const k = keyAt[i];
    if (k < 0) continue;
    if (parts === null) key = part;
    else parts[k] = part;
  }
  if (at !== p.length) {
    throw new MysqlConnectionError(`result row has ${p.length - at} bytes past its values`);
  }
  return { key: parts === null ? key : parts.join("/"), after, columns: plan.columns, cells };
}
