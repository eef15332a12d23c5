/**
 * MySQL values to the design's JSON (design: Values), one place for both paths: chunk reads
 * (the text protocol) and the binlog (decoded row images) first turn a value into its text
 * form as the server prints it (or raw bytes for binary columns); this module renders that.
 */
import { encodeKeyBytes, encodeKeyPart } from "../core/keys.ts";
import { jsonBase64, jsonNumber, jsonRaw, jsonString } from "../core/json.ts";
import type { MysqlColumn } from "./types.ts";

/** A value as the server prints it (text), raw bytes of a binary column, or NULL. */
export type MysqlValue = string | Uint8Array | null;

/** Types whose values the server prints as numbers. */
export const NUMERIC: ReadonlySet<string> = new Set([
  "tinyint",
  "smallint",
  "mediumint",
  "int",
  "integer",
  "bigint",
  "decimal",
  "float",
  "double",
  "year",
  "bit",
]);
const BINARY = new Set([
  "binary",
  "varbinary",
  "tinyblob",
  "blob",
  "mediumblob",
  "longblob",
  "geometry",
  "point",
  "linestring",
  "polygon",
  "multipoint",
  "multilinestring",
  "multipolygon",
  "geometrycollection",
]);
const TWO_53 = 2n ** 53n;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Columns whose values are bytes, not text. */
export function isBinary(col: MysqlColumn): boolean {
  return BINARY.has(col.dataType);
}

function isZeroDate(s: string): boolean {
  return s.startsWith("0000-00-00");
}

/** Types `cellOf` renders their own way although they are neither numbers nor bytes. */
const OWN_RENDERING = new Set(["set", "datetime", "timestamp"]);

/**
 * Whether `cellOf` writes the column's values as JSON strings of their text as it is (its
 * default branch: text, ENUM labels, DATE, TIME, ...): fast paths may quote them directly.
 */
export function rendersAsString(col: MysqlColumn): boolean {
  return !isBinary(col) && !col.json && !NUMERIC.has(col.dataType) &&
    !OWN_RENDERING.has(col.dataType);
}

/** The JSON fragment of one value (see `rendersAsString` when adding a branch). */
export function cellOf(col: MysqlColumn, v: MysqlValue): string {
  if (v === null) return "null";
  if (isBinary(col)) return jsonBase64(typeof v === "string" ? enc.encode(v) : v);
  const text = typeof v === "string" ? v : dec.decode(v);
  if (col.json) return jsonRaw(text);
  if (col.dataType === "bit") return BigInt(text) > TWO_53 ? jsonString(text) : text;
  // YEAR 0 prints as 0000, which JSON cannot write as a number.
  if (col.dataType === "year" && text === "0000") return "0";
  if (NUMERIC.has(col.dataType)) return jsonNumber(text);
  switch (col.dataType) {
    case "set":
      return JSON.stringify(text === "" ? [] : text.split(","));
    case "datetime":
      return jsonString(isZeroDate(text) ? text : text.replace(" ", "T"));
    case "timestamp":
      return jsonString(isZeroDate(text) ? text : text.replace(" ", "T") + "Z");
    default:
      return jsonString(text);
  }
}

/** One key part, percent-encoded (bytes for binary columns, UTF-8 text otherwise). */
export function keyPartOf(_col: MysqlColumn, v: MysqlValue): string {
  if (v === null) return "";
  if (typeof v !== "string") return encodeKeyBytes(v);
  return encodeKeyPart(v);
}

/**
 * A row key from its key columns' values (parts joined by `/`). Key parts from
 * `keyPartOf` are already percent-encoded: join them with `imageKey`, never
 * pass them to `rowKey` (which would encode the `%` again). For text parts the result is
 * exactly `rowKey(texts)`; binary parts are `encodeKeyBytes` of the raw bytes.
 */
export function keyOf(cols: readonly MysqlColumn[], values: readonly MysqlValue[]): string {
  return cols.map((c, i) => keyPartOf(c, values[i])).join("/");
}

/** Big-endian bytes as an unsigned decimal. */
export function bitsToDecimal(bytes: Uint8Array): string {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n.toString();
}

/** A row key from encoded key parts (`keyPartOf` results), in key-column order. */
export function imageKey(parts: readonly string[]): string {
  return parts.join("/");
}
