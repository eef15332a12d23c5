/**
 * The binlog decoder on a real MariaDB binlog (tests/fixtures/mysql, made by
 * scripts/capture-mysql-fixtures.sh): every event decodes, and rows decoded from the stream
 * render exactly as the same rows parsed from mysqldump's output (design: Values).
 */
import { assert, assertEquals, assertMatch } from "./harness/assert.ts";
import { BinlogDecoder, BinlogError, type BinlogEvent, crc32 } from "../src/mysql/binlog.ts";
import { decodeRowsEvent } from "../src/mysql/rows.ts";
import { schemaForEvent } from "../src/mysql/tablemeta.ts";
import { parseMembers } from "../src/mysql/schema.ts";
import { DumpParser } from "../src/mysql/dump_parser.ts";
import { dumpCell } from "../src/mysql/values.ts";
import type { TableSchema } from "../src/mysql/types.ts";

const FIX = new URL("./fixtures/mysql/", import.meta.url);

interface ColRow {
  table: string;
  name: string;
  dataType: string;
  columnType: string;
  charset: string | null;
  fsp: number | null;
  key: string;
  json: boolean;
}

function schemas(file: string): Map<string, TableSchema> {
  const rows = JSON.parse(Deno.readTextFileSync(new URL(file, FIX))) as ColRow[];
  const out = new Map<string, TableSchema>();
  for (const r of rows) {
    let t = out.get(r.table);
    if (!t) out.set(r.table, t = { schema: "fx", table: r.table, columns: [], keyColumns: [] });
    if (r.key === "PRI") t.keyColumns.push(t.columns.length);
    t.columns.push({
      name: r.name,
      dataType: r.dataType,
      columnType: r.columnType,
      charset: r.charset,
      fsp: r.fsp ?? 0,
      unsigned: r.columnType.includes("unsigned"),
      json: r.json,
      members: r.dataType === "enum" || r.dataType === "set" ? parseMembers(r.columnType) : [],
    });
  }
  return out;
}

/** Every event of the three fixture files, in order. */
function events(): { file: string; event: BinlogEvent; decoder: BinlogDecoder }[] {
  const out: { file: string; event: BinlogEvent; decoder: BinlogDecoder }[] = [];
  for (const file of ["bin.000001", "bin.000002", "bin.000003"]) {
    const bytes = Deno.readFileSync(new URL(file, FIX));
    const decoder = new BinlogDecoder();
    let at = 4; // magic
    while (at < bytes.length) {
      const size = new DataView(bytes.buffer, at + 9, 4).getUint32(0, true);
      out.push({ file, event: decoder.decode(bytes.subarray(at, at + size)).event, decoder });
      at += size;
    }
  }
  return out;
}

/** The dump's rows per table: cells rendered by the dump path. */
function dumpRows(all: Map<string, TableSchema>): Map<string, string[][]> {
  const parser = new DumpParser();
  const items = [...parser.push(Deno.readFileSync(new URL("dump.sql", FIX))), ...parser.end()];
  const out = new Map<string, string[][]>();
  for (const it of items) {
    if (it.kind !== "rows") continue;
    const s = all.get(it.table)!;
    const rows = out.get(it.table) ?? [];
    for (const lits of it.rows) {
      rows.push(s.columns.map((c) => dumpCell(c, lits[it.columns!.indexOf(c.name)])));
    }
    out.set(it.table, rows);
  }
  return out;
}

Deno.test("binlog fixtures: every event decodes, all kinds present", () => {
  const kinds = new Map<string, number>();
  for (const { event } of events()) {
    const k = event.kind === "rows" ? `rows:${event.op}` : event.kind;
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  }
  for (
    const k of [
      "format",
      "mariadb_gtid",
      "gtid_list",
      "query",
      "table_map",
      "rows:insert",
      "rows:update",
      "rows:delete",
      "xid",
      "rotate",
    ]
  ) {
    assert((kinds.get(k) ?? 0) > 0, `no ${k} event in ${JSON.stringify([...kinds])}`);
  }
});

Deno.test("binlog fixtures: stream rows render exactly as the dump's rows", () => {
  const after = schemas("columns-after.json");
  const before = schemas("columns-before.json");
  const dumped = dumpRows(before);
  const streamed = new Map<string, string[][]>();
  for (const { event, decoder } of events()) {
    if (event.kind !== "rows" || event.op !== "insert") continue;
    const map = decoder.tableMap(event.tableId)!;
    const base = map.table.replace(/[23]$/, "");
    // ints3 copies ints after an update that the dump predates.
    if (base === map.table || !dumped.has(base) || map.table === "ints3") continue;
    // Twin tables (ints2, misc3, ...) hold copies of the dumped tables' rows.
    const schema = schemaForEvent(map, after.get(map.table) ?? before.get(base));
    assert(schema, `schema for ${map.table}`);
    const rows = streamed.get(map.table) ?? [];
    for (const r of decodeRowsEvent(event, map, schema)) rows.push(r.after!.cells);
    streamed.set(map.table, rows);
  }
  assert(streamed.size >= 8, `twin tables seen: ${[...streamed.keys()]}`);
  for (const [table, rows] of streamed) {
    const want = dumped.get(table.replace(/[23]$/, ""))!;
    assertEquals(rows.length, want.length, table);
    for (let i = 0; i < rows.length; i++) {
      const cols = (after.get(table) ?? before.get(table.replace(/[23]$/, "")))!.columns
        .map((c) => c.name);
      for (let c = 0; c < cols.length; c++) {
        assertEquals(rows[i][c], want[i][c], `${table} row ${i} column ${cols[c]}`);
      }
    }
  }
});

Deno.test("binlog decoder: corrupt and truncated events fail clearly", () => {
  const bytes = Deno.readFileSync(new URL("bin.000001", FIX));
  const d = new BinlogDecoder();
  const fdeSize = new DataView(bytes.buffer, 4 + 9, 4).getUint32(0, true);
  d.decode(bytes.subarray(4, 4 + fdeSize));
  const at = 4 + fdeSize;
  const size = new DataView(bytes.buffer, at + 9, 4).getUint32(0, true);
  const ev = bytes.slice(at, at + size);
  ev[20] ^= 0xff;
  let err: unknown;
  try {
    d.decode(ev);
  } catch (e) {
    err = e;
  }
  assert(err instanceof BinlogError);
  assertMatch((err as Error).message, /checksum mismatch/);
  for (const cut of [0, 5, 18, size - 1]) {
    let e2: unknown;
    try {
      d.decode(bytes.slice(at, at + cut));
    } catch (e) {
      e2 = e;
    }
    assert(e2 instanceof BinlogError, `cut at ${cut}: ${e2}`);
  }
});

Deno.test("binlog decoder fuzz: mutated events raise only BinlogError", () => {
  const after = schemas("columns-after.json");
  const before = schemas("columns-before.json");
  let seed = 12345;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const files = ["bin.000001", "bin.000002", "bin.000003"].map((f) =>
    Deno.readFileSync(new URL(f, FIX))
  );
  let decoded = 0, rejected = 0;
  for (let round = 0; round < 3000; round++) {
    const bytes = files[rand(files.length)];
    // Walk to a random event, decoding what comes before so table maps are known.
    const d = new BinlogDecoder();
    let at = 4;
    const stop = rand(40);
    for (let k = 0; k < stop && at < bytes.length; k++) {
      const size = new DataView(bytes.buffer, at + 9, 4).getUint32(0, true);
      d.decode(bytes.subarray(at, at + size));
      at += size;
    }
    if (at >= bytes.length) continue;
    const size = new DataView(bytes.buffer, at + 9, 4).getUint32(0, true);
    const ev = bytes.slice(at, at + size);
    for (let m = 1 + rand(4); m > 0; m--) ev[19 + rand(Math.max(1, size - 23))] = rand(256);
    // Re-seal the checksum so the mutation reaches the body decoder.
    new DataView(ev.buffer).setUint32(size - 4, crc32(ev.subarray(0, size - 4)), true);
    try {
      const { event } = d.decode(ev);
      if (event.kind === "rows") {
        const map = d.tableMap(event.tableId);
        const base = map?.table.replace(/[23]$/, "") ?? "";
        const schema = map && schemaForEvent(map, after.get(map.table) ?? before.get(base));
        if (map && schema) decodeRowsEvent(event, map, schema);
      }
      decoded++;
    } catch (e) {
      if (!(e instanceof BinlogError)) throw new Error(`round ${round}: ${e}`);
      rejected++;
    }
  }
  assert(decoded > 0 && rejected > 0, `decoded ${decoded}, rejected ${rejected}`);
});
