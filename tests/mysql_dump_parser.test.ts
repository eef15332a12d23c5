/**
 * The test harness's DumpParser (it reads the recorded fixture's mysqldump output, which
 * the binlog tests compare with) on the captured fixtures and edge cases.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertThrows } from "../testing/assert.ts";
import { type DumpItem, type DumpLiteral, DumpParser } from "../testing/dump_parser.ts";

const enc = new TextEncoder();
const fixture = (name: string) =>
  Deno.readFileSync(new URL(`./fixtures/mysql/${name}`, import.meta.url));

function parse(bytes: Uint8Array, chunk: number): DumpItem[] {
  const p = new DumpParser();
  const out: DumpItem[] = [];
  for (let i = 0; i < bytes.length; i += chunk) out.push(...p.push(bytes.subarray(i, i + chunk)));
  out.push(...p.end());
  return out;
}

function rowsOf(items: DumpItem[], table: string): DumpLiteral[][] {
  return items.flatMap((i) => i.kind === "rows" && i.table === table ? i.rows : []);
}

const q = (s: string): DumpLiteral => ({ quoted: enc.encode(s) });

for (const name of ["dump.sql", "dump-plain.sql"]) {
  test(`DumpParser: ${name} in 1, 7 and whole chunks`, () => {
    const bytes = fixture(name);
    const whole = parse(bytes, bytes.length);
    assertEquals(parse(bytes, 1), whole);
    assertEquals(parse(bytes, 7), whole);
    assertEquals(parse(bytes, 4096), whole);
    assertEquals(whole[0], { kind: "position", file: "bin.000001", offset: 11992 });
    assertEquals(whole.filter((i) => i.kind === "gtid"), [{ kind: "gtid", gtid: "0-1-15" }]);
    assertEquals(whole.filter((i) => i.kind === "database"), [{ kind: "database", name: "fx" }]);
    const tables = new Set(whole.flatMap((i) => i.kind === "rows" ? [i.table] : []));
    for (const t of ["ints", "nums", "times", "strs", "bins", "misc", "comp"]) {
      assert(tables.has(t), `no rows for ${t}: ${[...tables]}`);
    }
    const rows = whole.filter((i) => i.kind === "rows");
    if (name === "dump.sql") {
      // --complete-insert lists the columns.
      assert(rows.every((r) => r.kind === "rows" && r.columns?.length), "columns missing");
    } else {
      assert(rows.every((r) => r.kind === "rows" && r.columns === undefined));
    }
    // Every row of a table has the same width.
    for (const t of tables) {
      const widths = new Set(rowsOf(whole, t).map((r) => r.length));
      assertEquals(widths.size, 1, t);
    }
  });
}

test("DumpParser: same rows with and without --hex-blob/--complete-insert", () => {
  const a = parse(fixture("dump.sql"), 1 << 20);
  const b = parse(fixture("dump-plain.sql"), 1 << 20);
  const norm = (l: DumpLiteral) =>
    l === null
      ? null
      : "hex" in l
      ? { bytes: [...l.hex] }
      : "quoted" in l
      ? { bytes: [...l.quoted] }
      : l;
  for (const t of ["ints", "strs", "bins"]) {
    const ra = rowsOf(a, t).map((r) => r.map(norm));
    const rb = rowsOf(b, t).map((r) => r.map(norm));
    assertEquals(ra.length, rb.length, t);
    assertEquals(ra, rb, t);
  }
});

test("DumpParser: literals and escapes, across every chunk boundary", () => {
  const sql = [
    "-- MySQL dump 10.13",
    "/*!40101 SET NAMES utf8mb4 */;",
    "-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000007', SOURCE_LOG_POS=157;",
    "SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ 'a1b2c3d4-0000-0000-0000-000000000001:1-5,",
    "a1b2c3d4-0000-0000-0000-000000000002:1-3';",
    "USE `we``ird`;",
    "LOCK TABLES `t` WRITE;",
    "CREATE TABLE `t` (`a` int, `b` text) ENGINE=InnoDB;",
    "INSERT INTO `t` VALUES (1,'it''s \\'q\\' \\\"d\\\" \\\\ \\0\\b\\n\\r\\t\\Z;--',NULL,-2.5e-3," +
    "0x00FF10,b'0101',_binary 'a\\0b','é✓ 😀',''),(2,'',0x,B'1',_utf8mb4'x', 'NULL');",
    "UNLOCK TABLES;",
    "INSERT INTO `t` (`a`,`b c`) VALUES (3,'x;y'),(4,\"dq's\");",
    "-- SET GLOBAL gtid_slave_pos='0-1-9';",
    "CHANGE MASTER TO MASTER_LOG_FILE='m.000002', MASTER_LOG_POS=4;",
    "",
  ].join("\n");
  const bytes = enc.encode(sql);
  const whole = parse(bytes, bytes.length);
  assertEquals(whole.slice(0, 3), [
    { kind: "position", file: "binlog.000007", offset: 157 },
    {
      kind: "gtid",
      gtid: "a1b2c3d4-0000-0000-0000-000000000001:1-5,a1b2c3d4-0000-0000-0000-000000000002:1-3",
    },
    { kind: "database", name: "we`ird" },
  ]);
  const ins = whole[3];
  assert(ins.kind === "rows");
  assertEquals(ins.table, "t");
  assertEquals(ins.columns, undefined);
  assertEquals(ins.rows[0], [
    { bare: "1" },
    { quoted: enc.encode("it's 'q' \"d\" \\ \0\b\n\r\t\x1a;--") },
    null,
    { bare: "-2.5e-3" },
    { hex: new Uint8Array([0, 255, 16]) },
    { bare: "b'0101'" },
    { quoted: new Uint8Array([0x61, 0, 0x62]) },
    q("é✓ 😀"),
    q(""),
  ]);
  assertEquals(ins.rows[1], [
    { bare: "2" },
    q(""),
    { hex: new Uint8Array(0) },
    { bare: "B'1'" },
    q("x"),
    q("NULL"),
  ]);
  assertEquals(whole[4], {
    kind: "rows",
    table: "t",
    columns: ["a", "b c"],
    rows: [[{ bare: "3" }, q("x;y")], [{ bare: "4" }, q("dq's")]],
  });
  assertEquals(whole.slice(5), [
    { kind: "gtid", gtid: "0-1-9" },
    { kind: "position", file: "m.000002", offset: 4 },
  ]);
  // Every split point gives the same items.
  for (let cut = 1; cut < bytes.length; cut++) {
    const p = new DumpParser();
    const items = [...p.push(bytes.subarray(0, cut)), ...p.push(bytes.subarray(cut)), ...p.end()];
    assertEquals(items, whole, `split at ${cut}`);
  }
  assertEquals(parse(bytes, 1), whole);
  assertEquals(parse(bytes, 3), whole);
});

test("DumpParser: no trailing newline, empty input, bad INSERT", () => {
  const p = new DumpParser();
  assertEquals(p.push(enc.encode("INSERT INTO `x` VALUES (1)")), []);
  assertEquals(p.end(), [{
    kind: "rows",
    table: "x",
    columns: undefined,
    rows: [[{ bare: "1" }]],
  }]);
  assertEquals(new DumpParser().end(), []);
  // Each bad input on its own: in one shared try, the second's error hid that the first
  // raised none (a string left open is only told from one still arriving at the end).
  for (const bad of ["INSERT INTO `x` VALUES (1,'open);\n", "INSERT INTO `x` VALUES 1;\n"]) {
    const p = new DumpParser();
    const err = assertThrows(() => [...p.push(enc.encode(bad)), ...p.end()]);
    assert(/cannot parse mysqldump INSERT/.test(err.message), `${bad}: ${err}`);
  }
});
