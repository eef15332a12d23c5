/**
 * Chunk rows read by their table's plan (src/mysql/text_rows.ts) equal what chunk reads gave
 * before it: each value decoded alone with TextDecoder (packets.ts textRowValues, as
 * conn.query does), binary columns from their HEX, then `cellOf` and `keyOf` per value, the
 * cursor from the key columns' texts (a FLOAT's from its extra column). Random rows of every
 * kind of column, text with quotes, controls, `/`, `%`, multi-byte, invalid bytes and BOMs,
 * numbers with leading zeros and signs, NULLs, long values (2-byte lengths), composite keys.
 */
import { assertEquals } from "../../testing/assert.ts";
import { Rng } from "../../scripts/torture_lib/prng.ts";
import { textRowValues } from "../../src/mysql/packets.ts";
import { readTextRow, textRowPlan } from "../../src/mysql/text_rows.ts";
import { cellOf, isBinary, keyOf, type MysqlValue } from "../../src/mysql/values.ts";
import type { MysqlColumn, TableSchema } from "../../src/mysql/types.ts";

/** The torture runs' seeded generator, as a function. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

const enc = new TextEncoder();
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];

const PIECES = ["a", "row 1", '"', "\\", "\n", "\u0001", "\u007f", "é", "😀", "/", "%", " ", "~"];
const RAW = [[0x80], [0xc3], [0xe2, 0x82], [0xff], [0xef, 0xbb, 0xbf], [0xa5], [0xfb]];
function text(r: () => number): number[] {
  const out: number[] = [];
  const long = r() < 0.1 ? 300 : 0;
  while ((r() < 0.8 || out.length < long) && out.length < 700) {
    out.push(...(r() < 0.15 ? pick(r, RAW) : enc.encode(pick(r, PIECES))));
  }
  return out;
}
const INTS = ["0", "-0", "1", "-1", "00042", "+5", "2147483647", "-9223372036854775808", ""];
function integer(r: () => number): number[] {
  if (r() < 0.3) return [...enc.encode(pick(r, INTS))];
  const s = String(Math.floor((r() - 0.5) * 2 ** (1 + Math.floor(r() * 60))));
  return [...enc.encode(s)];
}
const NUMS = ["1.5", "-0.25", "1e300", "NaN", "-inf", "1.", ".5", "007", "3.40282e38"];
const number = (r: () => number) => [...enc.encode(r() < 0.5 ? pick(r, NUMS) : String(r()))];
const hex = (
  r: () => number,
) => [...enc.encode(Array.from(text(r), (b) => b.toString(16).padStart(2, "0")).join(""))];
const fixed = (xs: string[]) => (r: () => number) => [...enc.encode(pick(r, xs))];

interface Kind {
  col: Partial<MysqlColumn> & { dataType: string };
  gen: (r: () => number) => number[];
}
const KINDS: Kind[] = [
  { col: { dataType: "int" }, gen: integer },
  { col: { dataType: "bigint", unsigned: true }, gen: integer },
  { col: { dataType: "tinyint" }, gen: integer },
  { col: { dataType: "varchar", charset: "utf8mb4" }, gen: text },
  { col: { dataType: "char", charset: "latin1" }, gen: text },
  { col: { dataType: "longtext", charset: "utf8mb4" }, gen: text },
  { col: { dataType: "enum", members: ["a", "b"] }, gen: text },
  { col: { dataType: "date" }, gen: fixed(["2024-02-29", "0000-00-00"]) },
  { col: { dataType: "time" }, gen: fixed(["-838:59:59.000000", "12:00:00"]) },
  { col: { dataType: "datetime" }, gen: fixed(["2024-02-29 01:02:03.50", "0000-00-00 00:00:00"]) },
  { col: { dataType: "timestamp" }, gen: fixed(["2024-02-29 01:02:03", "0000-00-00 00:00:00"]) },
  { col: { dataType: "year" }, gen: fixed(["0000", "2024", "1901"]) },
  { col: { dataType: "decimal" }, gen: number },
  { col: { dataType: "float" }, gen: number },
  { col: { dataType: "double" }, gen: number },
  { col: { dataType: "bit" }, gen: fixed(["0", "5", "9007199254740993", "18446744073709551615"]) },
  { col: { dataType: "set", members: ["a", "b"] }, gen: fixed(["", "a", "a,b"]) },
  { col: { dataType: "longtext", charset: "utf8mb4", json: true }, gen: fixed(['{"a": [1, 2]}']) },
  { col: { dataType: "varbinary" }, gen: hex },
  { col: { dataType: "blob" }, gen: hex },
];

function column(k: Kind, i: number): MysqlColumn {
  return {
    name: `c${i}`,
    columnType: k.col.dataType,
    charset: null,
    fsp: 0,
    unsigned: false,
    json: false,
    members: [],
    ...k.col,
  };
}

function lenenc(n: number): number[] {
  if (n < 0xfb) return [n];
  if (n < 0x10000) return [0xfc, n & 0xff, n >> 8];
  return [0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16];
}

/** The row chunk reads made before text_rows.ts (chunks.ts at b1eb3f8), from its values. */
function before(t: TableSchema, columns: string[], row: (string | null)[]) {
  const keyCols = t.keyColumns.map((i) => t.columns[i]);
  const floats = keyCols.map((c) => c.dataType === "float");
  const binary = t.columns.map(isBinary);
  const bytesOf = (hex: string) =>
    Uint8Array.from(
      { length: hex.length >> 1 },
      (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16),
    );
  const values: MysqlValue[] = row.slice(0, columns.length).map((v, i) =>
    v !== null && binary[i] ? bytesOf(v) : v
  );
  const cells = t.columns.map((c, i) => cellOf(c, values[i]));
  let f = columns.length;
  const after = t.keyColumns.map((k, i) => floats[i] ? row[f++]! : row[k] ?? "");
  const key = keyOf(keyCols, t.keyColumns.map((k) => values[k]));
  return { key, after, columns, cells };
}

function outcome(f: () => unknown): unknown {
  try {
    return f();
  } catch (e) {
    return `threw ${(e as Error).name}`;
  }
}

Deno.test("chunk rows by plan equal the value-by-value rendering (random rows)", () => {
  const r = rng(20261202);
  let rows = 0, fast = 0;
  for (let table = 0; table < 400; table++) {
    const kinds = Array.from({ length: 1 + Math.floor(r() * 6) }, () => pick(r, KINDS));
    const cols = kinds.map(column);
    const keyColumns = [...cols.keys()].filter(() => r() < 0.4);
    if (!keyColumns.length) keyColumns.push(Math.floor(r() * cols.length));
    if (r() < 0.3) keyColumns.reverse();
    const t: TableSchema = { schema: "s", table: `t${table}`, columns: cols, keyColumns };
    const columns = cols.map((c) => c.name);
    const floatKeys = keyColumns.filter((k) => cols[k].dataType === "float").length;
    const plan = textRowPlan(t, columns);
    assertEquals(plan.width, cols.length + floatKeys);
    for (let i = 0; i < 60; i++) {
      const packet: number[] = [];
      const gens = [...kinds.map((k) => k.gen), ...Array(floatKeys).fill(number)];
      for (const gen of gens) {
        if (r() < 0.1) packet.push(0xfb);
        else {
          const v = gen(r);
          packet.push(...lenenc(v.length), ...v);
        }
      }
      const p = Uint8Array.from(packet);
      const want = outcome(() => before(t, columns, textRowValues(p, plan.width)));
      const got = outcome(() => readTextRow(plan, p));
      assertEquals(got, want, `table ${JSON.stringify(cols)} key ${keyColumns}, row ${packet}`);
      rows++;
      if (typeof want !== "string") fast++;
    }
  }
  // Most rows render (the others throw alike: a BIT that is not a number).
  assertEquals(rows, 24_000);
  if (fast < rows * 0.6) throw new Error(`only ${fast} of ${rows} rows rendered`);
});

Deno.test("a chunk row with bytes past its values, or cut short, is refused", () => {
  const t: TableSchema = {
    schema: "s",
    table: "t",
    columns: [column(KINDS[0], 0), column(KINDS[3], 1)],
    keyColumns: [0],
  };
  const plan = textRowPlan(t, ["c0", "c1"]);
  assertEquals(readTextRow(plan, Uint8Array.of(1, 0x37, 0xfb)).key, "7");
  assertEquals(
    outcome(() => readTextRow(plan, Uint8Array.of(1, 0x37, 0xfb, 0))),
    "threw MysqlConnectionError",
  );
  assertEquals(
    outcome(() => readTextRow(plan, Uint8Array.of(1, 0x37, 3, 0x61))),
    "threw MysqlConnectionError",
  );
  assertEquals(
    outcome(() => readTextRow(plan, Uint8Array.of(1, 0x37))),
    "threw MysqlConnectionError",
  );
});
