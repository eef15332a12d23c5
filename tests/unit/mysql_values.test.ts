/**
 * MySQL value rendering (design: Values) on hand-built binlog row images and mysqldump
 * literals: both paths go through values.ts, so the same value renders the same bytes.
 */
import { assert, assertEquals } from "../../testing/assert.ts";

function assertThrows(fn: () => unknown, cls: new (...a: never[]) => Error): void {
  try {
    fn();
  } catch (e) {
    assert(e instanceof cls, `expected ${cls.name}, got ${e}`);
    return;
  }
  throw new Error(`expected ${cls.name}, nothing was thrown`);
}
import { BinlogError, type TableMap } from "../../src/mysql/binlog.ts";
import { decodeMysqlJson, decodeRowsEvent, floatText } from "../../src/mysql/rows.ts";
import { imageKey } from "../../src/mysql/values.ts";
import { dumpCell, dumpKeyPart } from "../../testing/dump_parser.ts";
import type { MysqlColumn } from "../../src/mysql/types.ts";
import { rowKey } from "../../src/core/keys.ts";

const hex = (s: string) =>
  Uint8Array.from(s.replace(/\s+/g, "").match(/../g) ?? [], (h) => parseInt(h, 16));
const enc = new TextEncoder();

function col(dataType: string, over: Partial<MysqlColumn> = {}): MysqlColumn {
  return {
    name: "c",
    dataType,
    columnType: dataType,
    charset: null,
    fsp: 0,
    unsigned: false,
    json: false,
    members: [],
    ...over,
  };
}

/** One-column WRITE_ROWS image holding `bytes` as the value of a column of binlog `type`. */
function cell(type: number, meta: number, c: MysqlColumn, bytes: Uint8Array): string {
  const body = new Uint8Array([1, 1, 0, ...bytes]); // 1 column, present, not null
  const map: TableMap = {
    tableId: 1n,
    schema: "s",
    table: "t",
    columnTypes: new Uint8Array([type]),
    columnMeta: [meta],
    nullable: [true],
  };
  const rows = decodeRowsEvent(
    { kind: "rows", op: "insert", tableId: 1n, flags: 0, body, version: 2 },
    map,
    { schema: "s", table: "t", columns: [c], keyColumns: [0] },
  );
  assertEquals(rows.length, 1);
  return rows[0].after!.cells[0];
}

// DECIMAL binary format: MySQL source strings/decimal.c, comment of decimal2bin() ("the
// decimal 1234567890.1234 in DECIMAL(14,4) is stored as 81 0D FB 38 D2 04 D2"; negative
// values invert every byte).
Deno.test("binlog DECIMAL: documented examples, negative, zero scale, leading zeros", () => {
  const d = (p: number, s: number, h: string) => cell(246, (p << 8) | s, col("decimal"), hex(h));
  assertEquals(d(14, 4, "81 0D FB 38 D2 04 D2"), "1234567890.1234");
  assertEquals(d(14, 4, "7E F2 04 C7 2D FB 2D"), "-1234567890.1234");
  assertEquals(d(5, 0, "81 86 9F"), "99999");
  assertEquals(d(5, 0, "7F FF FA"), "-5");
  assertEquals(d(5, 0, "80 00 00"), "0");
  assertEquals(d(10, 2, "80 00 00 00 01"), "0.01");
  assertEquals(d(10, 2, "7F FF FF FF FE"), "-0.01");
  // DECIMAL(30,10): 20 integer digits = 2 leftover (1 byte) + 2 x 9 (4 bytes each).
  assertEquals(
    d(30, 10, "80 00000000 00000001 00000000 01"),
    "1.0000000001",
  );
});

// TIME2: MySQL source sql-common/my_time.cc, my_time_packed_to_binary /
// my_time_packed_from_binary (3 integer bytes offset by 0x800000, fraction bytes signed
// against it).
Deno.test("binlog TIME2: negative values and fractions", () => {
  const t = (fsp: number, h: string) => cell(19, fsp, col("time", { fsp }), hex(h));
  assertEquals(t(0, "7F FF FF"), '"-00:00:01"');
  assertEquals(t(0, "80 00 00"), '"00:00:00"');
  assertEquals(t(3, "7F FF FF FF F6"), '"-00:00:00.001"');
  // 838:59:59 = (838 << 12 | 59 << 6 | 59) + 0x800000
  const hms = (838 << 12) | (59 << 6) | 59;
  const neg = 0x800000 - hms;
  assertEquals(
    t(0, neg.toString(16).padStart(6, "0")),
    '"-838:59:59"',
  );
  // fsp 6: 6 bytes, the packed value offset by 0x800000000000; -12:00:00.000001.
  const packed = -((12 << 12) * 2 ** 24 + 1);
  assertEquals(
    t(6, (packed + 0x800000000000).toString(16).padStart(12, "0")),
    '"-12:00:00.000001"',
  );
});

// MySQL binary JSON: MySQL source sql/json_binary.h ("The binary format of JSON documents":
// type 0x00 small object, 0x01 large object, 0x02 small array, 0x03 large array, 0x04
// literal, 0x05 int16, 0x06 uint16, 0x07 int32, 0x08 uint32, 0x09 int64, 0x0A uint64, 0x0B
// double, 0x0C utf8mb4 string, 0x0F custom/opaque data; key-entry ::= key-offset
// key-length(uint16); value-entry ::= type offset-or-inlined-value).
Deno.test("MySQL binary JSON: containers, scalars, opaque values", () => {
  // {"a": 1, "b": [true, null, "x"]} as a small object.
  assertEquals(
    decodeMysqlJson(hex(
      "00 0200 2300 1200 0100 1300 0100 05 0100 02 1400 61 62" +
        " 0300 0F00 04 0100 04 0000 0C 0D00 01 78",
    )),
    '{"a":1,"b":[true,null,"x"]}',
  );
  // {"k": 100000} as a large object: int32 inlined in the 4-byte value slot.
  assertEquals(
    decodeMysqlJson(hex("01 01000000 14000000 13000000 0100 07 A0860100 6B")),
    '{"k":100000}',
  );
  assertEquals(decodeMysqlJson(hex("02 0000 0400")), "[]");
  assertEquals(decodeMysqlJson(hex("05 0080")), "-32768");
  assertEquals(decodeMysqlJson(hex("06 FFFF")), "65535");
  assertEquals(decodeMysqlJson(hex("07 FFFFFFFF")), "-1");
  assertEquals(decodeMysqlJson(hex("08 FFFFFFFF")), "4294967295");
  assertEquals(decodeMysqlJson(hex("09 FEFFFFFFFFFFFFFF")), "-2");
  assertEquals(decodeMysqlJson(hex("0A FFFFFFFFFFFFFFFF")), "18446744073709551615");
  assertEquals(decodeMysqlJson(hex("0B 000000000000F83F")), "1.5");
  assertEquals(decodeMysqlJson(hex("0B 0000000000000840")), "3.0");
  assertEquals(decodeMysqlJson(hex("0C 05 68656C6C6F")), '"hello"');
  assertEquals(decodeMysqlJson(hex("0C 03 22 0A E2")).startsWith('"\\"\\n'), true);
  assertEquals(decodeMysqlJson(hex("04 00")), "null");
  // Opaque DATETIME: field type 12, 8 bytes of TIME_to_longlong_datetime_packed
  // (sql-common/my_time.cc): ((((year*13+month)<<5|day)<<17 | hour<<12|min<<6|sec)<<24)+µs.
  const ymd = ((2015n * 13n + 1n) << 5n) | 15n;
  const hms = (23n << 12n) | (24n << 6n) | 25n;
  const packed = (((ymd << 17n) | hms) << 24n) + 500000n;
  const dt = new Uint8Array(8);
  new DataView(dt.buffer).setBigInt64(0, packed, true);
  assertEquals(
    decodeMysqlJson(new Uint8Array([0x0f, 12, 8, ...dt])),
    '"2015-01-15 23:24:25.500000"',
  );
  assertEquals(decodeMysqlJson(new Uint8Array([0x0f, 10, 8, ...dt])), '"2015-01-15"');
  // Opaque TIME: negative packed time.
  const tm = new Uint8Array(8);
  new DataView(tm.buffer).setBigInt64(0, -(((1n << 12n) | (2n << 6n) | 3n) << 24n), true);
  assertEquals(decodeMysqlJson(new Uint8Array([0x0f, 11, 8, ...tm])), '"-01:02:03.000000"');
  // Opaque DECIMAL: precision, scale, binary decimal.
  assertEquals(decodeMysqlJson(hex("0F F6 09 0E 04 810DFB38D204D2")), "1234567890.1234");
  // Any other opaque type: base64 with the type.
  assertEquals(decodeMysqlJson(hex("0F FC 03 616263")), '"base64:type252:YWJj"');
  assertThrows(() => decodeMysqlJson(hex("00 0200 2300 1200")), BinlogError);
  assertThrows(() => decodeMysqlJson(hex("0E 00")), BinlogError);
});

Deno.test("binlog JSON column (MySQL type 245) renders the document", () => {
  const doc = hex("02 0100 0700 05 0700");
  assertEquals(
    cell(245, 4, col("json", { json: true }), new Uint8Array([doc.length, 0, 0, 0, ...doc])),
    "[7]",
  );
});

Deno.test("binlog integers, BIT, YEAR, ENUM, SET", () => {
  assertEquals(cell(1, 0, col("tinyint"), hex("FF")), "-1");
  assertEquals(cell(1, 0, col("tinyint", { unsigned: true }), hex("FF")), "255");
  assertEquals(cell(9, 0, col("mediumint"), hex("000080")), "-8388608");
  assertEquals(
    cell(8, 0, col("bigint", { unsigned: true }), hex("FFFFFFFFFFFFFFFF")),
    "18446744073709551615",
  );
  assertEquals(cell(8, 0, col("bigint"), hex("0000000000000080")), "-9223372036854775808");
  // BIT(64): meta = bytes << 8 | bits % 8.
  assertEquals(cell(16, 8 << 8, col("bit"), hex("FFFFFFFFFFFFFFFF")), '"18446744073709551615"');
  assertEquals(cell(16, 8 << 8, col("bit"), hex("0020000000000000")), "9007199254740992");
  assertEquals(cell(16, (1 << 8) | 2, col("bit"), hex("03 FF")), "1023");
  assertEquals(cell(13, 0, col("year"), hex("7C")), "2024");
  assertEquals(cell(13, 0, col("year"), hex("00")), "0");
  const e = col("enum", { members: ["small", "medium"] });
  assertEquals(cell(254, (247 << 8) | 1, e, hex("02")), '"medium"');
  assertEquals(cell(254, (247 << 8) | 1, e, hex("00")), '""');
  const s = col("set", { members: ["red", "green", "blue", "x y"] });
  assertEquals(cell(254, (248 << 8) | 1, s, hex("0D")), '["red","blue","x y"]');
  assertEquals(cell(254, (248 << 8) | 1, s, hex("00")), "[]");
});

Deno.test("floatText: FLOAT to 6 significant digits, DOUBLE shortest", () => {
  assertEquals(floatText(Math.fround(3.1415927), true), "3.14159");
  assertEquals(floatText(Math.fround(0.1), true), "0.1");
  assertEquals(floatText(Math.fround(1e20), true), "1e20");
  assertEquals(floatText(0.1, false), "0.1");
  assertEquals(floatText(1e300, false), "1e300");
  assertEquals(floatText(123456789012345680000, false), "1.2345678901234568e20");
  assertEquals(floatText(1e15, false), "1e15");
  assertEquals(floatText(123456.789, false), "123456.789");
  assertEquals(floatText(1e-5, false), "0.00001");
});

Deno.test("dump literals render as the binlog path", () => {
  const q = (s: string) => ({ quoted: enc.encode(s) });
  assertEquals(dumpCell(col("int"), { bare: "-5" }), "-5");
  assertEquals(dumpCell(col("year"), { bare: "0000" }), "0");
  assertEquals(dumpCell(col("bit"), { bare: "b'1111111111'" }), "1023");
  assertEquals(dumpCell(col("bit"), { hex: hex("FFFFFFFFFFFFFFFF") }), '"18446744073709551615"');
  assertEquals(dumpCell(col("blob"), { hex: hex("00FF") }), '"AP8="');
  assertEquals(dumpCell(col("varchar", { charset: "latin1" }), q("café")), '"café"');
  assertEquals(
    dumpCell(col("datetime", { fsp: 6 }), q("2024-05-01 12:00:00.000000")),
    '"2024-05-01T12:00:00.000000"',
  );
  assertEquals(dumpCell(col("datetime"), q("0000-00-00 00:00:00")), '"0000-00-00 00:00:00"');
  assertEquals(
    dumpCell(col("timestamp", { fsp: 2 }), q("2038-01-19 03:14:07.99")),
    '"2038-01-19T03:14:07.99Z"',
  );
  assertEquals(dumpCell(col("set", { members: ["a", "b"] }), q("a,b")), '["a","b"]');
  assertEquals(
    dumpCell(col("longtext", { json: true, charset: "utf8mb4" }), q('{"a": [1, 2]}')),
    '{"a":[1,2]}',
  );
  assertEquals(dumpCell(col("int"), null), "null");
});

Deno.test("key parts: text as rowKey, binary as encoded bytes", () => {
  const v = col("varchar", { charset: "utf8mb4" });
  const parts = [
    dumpKeyPart(v, { quoted: enc.encode("b/c é") }),
    dumpKeyPart(col("int"), { bare: "-1" }),
  ];
  assertEquals(imageKey(parts), rowKey(["b/c é", "-1"]));
  assertEquals(imageKey(parts), "b%2Fc %C3%A9/-1");
  assertEquals(dumpKeyPart(col("varbinary"), { hex: hex("25 2F 00 41 FF") }), "%25%2F%00A%FF");
  // The binlog path gives the same key for the same binary value.
  const map: TableMap = {
    tableId: 1n,
    schema: "s",
    table: "t",
    columnTypes: new Uint8Array([15]),
    columnMeta: [300],
    nullable: [false],
  };
  const rows = decodeRowsEvent(
    {
      kind: "rows",
      op: "delete",
      tableId: 1n,
      flags: 0,
      body: hex("01 01 00 0500 252F0041FF"),
      version: 1,
    },
    map,
    { schema: "s", table: "t", columns: [col("varbinary")], keyColumns: [0] },
  );
  assertEquals(rows[0].before!.key, "%25%2F%00A%FF");
});
