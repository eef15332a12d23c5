/**
 * The per-table row readers (binlog/row_plan.ts) give exactly what reading each value with
 * `value` and rendering it with `cellOf` / `keyOf` gives: random rows of integers at their
 * edges, text in UTF-8 and Latin-1 with quotes, backslashes, controls, `/`, `%`, multi-byte
 * and invalid bytes, NULLs, absent columns, a composite key, and columns the readers leave
 * to the general path (UTF-16, VARBINARY, ENUM).
 */
import { assertEquals } from "../../testing/assert.ts";
import { Rng } from "../../scripts/torture_lib/prng.ts";
import { decodeRowsEvent, type RowChange, type RowImage } from "../../src/mysql/rows.ts";
import { Cursor } from "../../src/mysql/binlog/cursor.ts";
import { value } from "../../src/mysql/binlog/row_values.ts";
import type { TableMap } from "../../src/mysql/binlog/types.ts";
import { cellOf, keyOf } from "../../src/mysql/values.ts";
import type { MysqlColumn, TableSchema } from "../../src/mysql/types.ts";

/** The torture runs' seeded generator, as a function. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

const enc = new TextEncoder();
const le = (x: bigint, n: number) =>
  Array.from({ length: n }, (_, i) => Number((x >> BigInt(8 * i)) & 255n));
const lenPrefixed = (b: number[], n: number) => [...le(BigInt(b.length), n), ...b];

interface Col {
  col: Partial<MysqlColumn> & { name: string; dataType: string };
  type: number;
  meta: number;
  gen: (r: () => number) => number[];
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const PIECES = ["a", "row 1", '"', "\\", "\n", "\u0001", "\u007f", "é", "😀", "/", "%", " ", "~"];
const RAW = [[0x80], [0xc3], [0xe2, 0x82], [0xff], [0xef, 0xbb, 0xbf]];
function text(r: () => number, max: number): number[] {
  const out: number[] = [];
  while (r() < 0.8 && out.length < max - 4) {
    out.push(...(r() < 0.15 ? pick(r, RAW) : enc.encode(pick(r, PIECES))));
  }
  return out;
}
function int(r: () => number, bits: number, unsigned: boolean): bigint {
  const span = 1n << BigInt(bits);
  const edges = unsigned
    ? [0n, 1n, span - 1n, span >> 1n, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n]
    : [
      0n,
      -1n,
      (span >> 1n) - 1n,
      -(span >> 1n),
      (1n << 53n) - 1n,
      -(1n << 53n),
      -(1n << 53n) - 1n,
    ];
  const x = r() < 0.5
    ? pick(r, edges)
    : BigInt(Math.floor(r() * 2 ** 30)) * BigInt(Math.floor(r() * 2 ** 30)) *
      (r() < 0.5 ? -1n : 1n);
  const m = ((x % span) + span) % span; // the two's complement bytes
  return m;
}

const utf8 = { charset: "utf8mb4" };
const COLS: Col[] = [
  { col: { name: "id", dataType: "int" }, type: 3, meta: 0, gen: (r) => le(int(r, 32, false), 4) },
  {
    col: { name: "name", dataType: "varchar", ...utf8 },
    type: 15,
    meta: 1200,
    gen: (r) => lenPrefixed(text(r, 300), 2),
  },
  {
    col: { name: "t", dataType: "tinyint", unsigned: true },
    type: 1,
    meta: 0,
    gen: (r) => le(int(r, 8, true), 1),
  },
  {
    col: { name: "s", dataType: "smallint" },
    type: 2,
    meta: 0,
    gen: (r) => le(int(r, 16, false), 2),
  },
  {
    col: { name: "m", dataType: "mediumint" },
    type: 9,
    meta: 0,
    gen: (r) => le(int(r, 24, false), 3),
  },
  {
    col: { name: "b", dataType: "bigint" },
    type: 8,
    meta: 0,
    gen: (r) => le(int(r, 64, false), 8),
  },
  {
    col: { name: "ub", dataType: "bigint", unsigned: true },
    type: 8,
    meta: 0,
    gen: (r) => le(int(r, 64, true), 8),
  },
  {
    col: { name: "short", dataType: "varchar", ...utf8 },
    type: 15,
    meta: 40,
    gen: (r) => lenPrefixed(text(r, 40), 1),
  },
  {
    col: { name: "l1", dataType: "varchar", charset: "latin1" },
    type: 15,
    meta: 100,
    gen: (r) =>
      lenPrefixed(Array.from({ length: Math.floor(r() * 12) }, () => Math.floor(r() * 256)), 1),
  },
  {
    col: { name: "ch", dataType: "char", ...utf8 },
    type: 254,
    meta: (0xfe << 8) | 40,
    gen: (r) => lenPrefixed(text(r, 40), 1),
  },
  {
    col: { name: "txt", dataType: "text", ...utf8 },
    type: 252,
    meta: 2,
    gen: (r) => lenPrefixed(text(r, 200), 2),
  },
  {
    col: { name: "u16", dataType: "varchar", charset: "utf16" },
    type: 15,
    meta: 80,
    gen: () => lenPrefixed([0, 0x41, 0, 0x2f], 1),
  },
  {
    col: { name: "vb", dataType: "varbinary", charset: null },
    type: 15,
    meta: 20,
    gen: (r) =>
      lenPrefixed(Array.from({ length: Math.floor(r() * 8) }, () => Math.floor(r() * 256)), 1),
  },
  {
    col: { name: "en", dataType: "enum", ...utf8, members: ["a", "b/c"] },
    type: 254,
    meta: (0xf7 << 8) | 1,
    gen: (r) => [Math.floor(r() * 3)],
  },
];

function column(c: Col["col"]): MysqlColumn {
  return {
    columnType: c.dataType,
    charset: null,
    fsp: 0,
    unsigned: false,
    json: false,
    members: [],
    ...c,
  };
}

const schema: TableSchema = {
  schema: "fx",
  table: "plan",
  columns: COLS.map((c) => column(c.col)),
  keyColumns: [0, 1], // id, name: a composite key with text in it
};
const map: TableMap = {
  tableId: 1n,
  schema: "fx",
  table: "plan",
  columnTypes: new Uint8Array(COLS.map((c) => c.type)),
  columnMeta: COLS.map((c) => c.meta),
  nullable: COLS.map(() => true),
};

/** One image's bytes: the null bitmap of the present columns, then their values. */
function image(r: () => number, present: boolean[]): number[] {
  const cols = COLS.filter((_, i) => present[i]);
  const nulls = new Array<number>((cols.length + 7) >> 3).fill(0);
  const values: number[] = [];
  cols.forEach((c, p) => {
    // Key columns are never NULL in a real table; NULL elsewhere one time in eight.
    const i = COLS.indexOf(c);
    if (i > 1 && r() < 0.125) nulls[p >> 3] |= 1 << (p & 7);
    else values.push(...c.gen(r));
  });
  return [...nulls, ...values];
}

/** What decodeRowsEvent gave before the plans: `value`, then `cellOf` and `keyOf`. */
function oracle(c: Cursor, present: boolean[]): RowImage {
  const n = COLS.length;
  const count = present.filter(Boolean).length;
  const nulls = c.take((count + 7) >> 3);
  const values = new Array(n).fill(null);
  const missing: number[] = [];
  let p = 0;
  for (let i = 0; i < n; i++) {
    if (!present[i]) {
      missing.push(i);
      continue;
    }
    const isNull = (nulls[p >> 3] & (1 << (p & 7))) !== 0;
    p++;
    if (!isNull) values[i] = value(c, map.columnTypes[i], map.columnMeta[i], schema.columns[i]);
  }
  const keyCols = schema.keyColumns.map((k) => schema.columns[k]);
  const img: RowImage = {
    cells: schema.columns.map((col, i) => cellOf(col, values[i])),
    key: keyOf(keyCols, schema.keyColumns.map((k) => values[k])),
  };
  if (missing.length) img.missing = missing;
  return img;
}

function bitmap(present: boolean[]): number[] {
  const out = new Array<number>((present.length + 7) >> 3).fill(0);
  present.forEach((p, i) => (out[i >> 3] |= p ? 1 << (i & 7) : 0));
  return out;
}

Deno.test("row plans read every row as value + cellOf + keyOf", () => {
  const r = rng(5);
  for (let t = 0; t < 300; t++) {
    const update = t % 3 === 0;
    // Some images lack non-key columns (binlog_row_image=MINIMAL/NOBLOB).
    const present = COLS.map((_, i) => i < 2 || r() < 0.9);
    const after = update ? COLS.map((_, i) => i < 2 || r() < 0.9) : present;
    const rows: number[] = [];
    for (let k = 0; k < 20; k++) {
      rows.push(...image(r, present));
      if (update) rows.push(...image(r, after));
    }
    const head = [COLS.length, ...bitmap(present), ...(update ? bitmap(after) : [])];
    const body = new Uint8Array([...head, ...rows]);
    const ev = {
      kind: "rows",
      op: update ? "update" : "insert",
      tableId: 1n,
      flags: 0,
      body,
      version: 2,
    } as const;
    const got = decodeRowsEvent(ev, map, schema);
    const c = new Cursor(body, head.length);
    const want: RowChange[] = [];
    while (c.at < body.length) {
      if (update) want.push({ op: "update", before: oracle(c, present), after: oracle(c, after) });
      else want.push({ op: "insert", after: oracle(c, present) });
    }
    assertEquals(got, want);
  }
});
