/**
 * The pgoutput decoder on real bytes captured from PostgreSQL 15 (tests/fixtures/pg, see its
 * README), plus hand-built protocol 4 messages and truncated/garbage input.
 */
import { assert, assertEquals, assertMatch } from "../../testing/assert.ts";
import { UNCHANGED } from "../../src/core/change.ts";
import {
  decodePgOutput,
  formatLsn,
  parseLsn,
  PgOutputError,
  type PgOutputMessage,
  type TupleValue,
} from "../../src/pg/pgoutput.ts";
import {
  decodeRowChange,
  isRowChange,
  type RowPlan,
  rowPlan,
  rowRelationId,
} from "../../src/pg/row_change.ts";
import { BUILTIN_TYPES, valueRenderer } from "../../src/pg/values.ts";
import { referenceRowChange } from "./pg_row_reference.ts";

const DIR = new URL("../fixtures/pg/", import.meta.url);

interface Captured {
  lsn: string;
  xid: number;
  bytes: Uint8Array;
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function load(name: string): Captured[] {
  return Deno.readTextFileSync(new URL(name, DIR)).trim().split("\n").map((l) => {
    const { lsn, xid, hex } = JSON.parse(l);
    return { lsn, xid, bytes: hexBytes(hex) };
  });
}

/** Decode a captured slot in order, tracking streams as the driver does. */
function decodeAll(rows: Captured[]): PgOutputMessage[] {
  let inStream = false;
  return rows.map((r) => {
    const m = decodePgOutput(r.bytes, inStream);
    if (m.tag === "stream_start") inStream = true;
    if (m.tag === "stream_stop") inStream = false;
    return m;
  });
}

/** Tags with runs collapsed: `I*3`. */
function shape(msgs: PgOutputMessage[]): string[] {
  const out: string[] = [];
  for (const m of msgs) {
    const last = out.at(-1);
    const base = last?.split("*")[0];
    if (base === m.tag) {
      const n = Number(last!.split("*")[1] ?? 1);
      out[out.length - 1] = `${m.tag}*${n + 1}`;
    } else out.push(m.tag);
  }
  return out;
}

// Microseconds since 2000-01-01 for a date.
const pgTime = (iso: string) =>
  BigInt(Date.parse(iso) - Date.parse("2000-01-01T00:00:00Z")) * 1000n;

function only<T extends PgOutputMessage["tag"]>(
  msgs: PgOutputMessage[],
  tag: T,
): Extract<PgOutputMessage, { tag: T }>[] {
  return msgs.filter((m) => m.tag === tag) as Extract<PgOutputMessage, { tag: T }>[];
}

const TOAST = Deno.readTextFileSync(new URL("toast.txt", DIR)).trim();

for (const file of ["v1.jsonl", "v3.jsonl"]) {
  Deno.test(`pgoutput fixture ${file}: every message kind outside streaming`, () => {
    const rows = load(file);
    const msgs = decodeAll(rows);
    assertEquals(shape(msgs), [
      ...["begin", "type*3", "relation", "insert", "commit"],
      ...["begin", "insert", "commit", "begin", "update", "commit", "begin", "update", "commit"],
      ...["begin", "delete", "commit"],
      ...["begin", "relation", "insert*2", "commit", "begin", "update", "commit"],
      ...["begin", "delete", "commit"],
      ...["begin", "relation", "insert", "commit", "begin", "update", "commit"],
      ...["begin", "delete", "commit"],
      ...["begin", "relation", "insert", "commit", "begin", "relation", "insert", "commit"],
      ...["message", "begin", "message", "insert", "commit"],
      ...["begin", "relation*2", "truncate", "commit"],
      ...["begin", "origin", "relation", "insert", "commit"],
    ]);

    // Transactions: begin's xid is the slot's, its final LSN is the commit's LSN, and the
    // commit's end LSN is where the slot says the next transaction starts.
    let begin: Extract<PgOutputMessage, { tag: "begin" }> | undefined;
    msgs.forEach((m, i) => {
      if (m.tag === "begin") {
        begin = m;
        assertEquals(m.xid, rows[i].xid);
      } else if (m.tag === "commit") {
        assert(begin);
        assertEquals(m.commitLsn, begin.finalLsn);
        assertEquals(m.commitTime, begin.commitTime);
        assertEquals(m.flags, 0);
        assert(m.endLsn > m.commitLsn);
        assertEquals(formatLsn(m.endLsn), rows[i].lsn);
        begin = undefined;
      } else if (m.tag !== "message") assert(begin, `${m.tag} outside a transaction`);
      if ("xid" in m && m.tag !== "begin") assertEquals(m.xid, undefined, "xid outside a stream");
    });
    const first = msgs[0] as Extract<PgOutputMessage, { tag: "begin" }>;
    // Captured in 2026 or later; 2000-01-01 based microseconds.
    assert(first.commitTime > pgTime("2024-01-01T00:00:00Z"));

    // Types that are not built in are announced before the relation.
    assertEquals(only(msgs, "type").map((t) => [t.schema, t.name]), [
      ["public", "mood"],
      ["", "numeric"], // a domain is announced as its base type (pg_catalog written as "")
      ["public", "pair"],
    ]);
    const types = only(msgs, "type");

    const rels = only(msgs, "relation");
    const every = rels[0];
    assertEquals([every.schema, every.name, every.replicaIdentity], ["public", "every_type", "d"]);
    assertEquals(every.columns.length, 39);
    assertEquals(every.columns.filter((c) => c.key).map((c) => c.name), ["id"]);
    assertEquals(every.columns[0], { name: "id", typeOid: 23, typmod: -1, key: true });
    const col = (name: string) => every.columns.find((c) => c.name === name)!;
    assertEquals(col("vc"), { name: "vc", typeOid: 1043, typmod: 14, key: false });
    assertEquals(col("c").typmod, 7);
    assertEquals(col("bt").typmod, 4);
    assertEquals(col("tsa").typeOid, 1185);
    assertEquals(col("bxa").typeOid, 1020);
    assertEquals(col("e").typeOid, types[0].typeOid);
    assertEquals(col("dn").typeOid, types[1].typeOid);
    assertEquals(col("cp").typeOid, types[2].typeOid);
    assertEquals(col("r").typeOid, 3904);

    const inserts = only(msgs, "insert");
    assertEquals(inserts[0].relationId, every.relationId);
    assertEquals(inserts[0].row, [
      "1",
      "t",
      "-32768",
      "9223372036854775807",
      "NaN",
      "Infinity",
      "0",
      "$12.34",
      'h\u00e9llo "w" \\ \n',
      "abc",
      "ab ",
      "nm",
      "\\x00ff10",
      '{"a": [1, 2.50]}',
      '{"b": 1000}',
      "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
      "0044-03-15 BC",
      "23:59:59.999999",
      "12:00:00+05:30",
      "2024-05-01 12:00:00.5",
      "2024-05-01 10:00:00.123+00",
      "1 year 2 mons -3 days +04:05:06.7",
      "192.168.0.1/24",
      "10.0.0.0/8",
      "08:00:2b:01:02:03",
      "1010",
      "101",
      "<a>x</a>",
      "(1.5,-2)",
      "(3,4),(1,2)",
      "{1,NULL,3}",
      '{"a b","c\\"d",NULL,"NULL",""}',
      '{"2024-01-01 00:00:00+00",infinity}',
      '{"\\\\x0102",NULL}',
      "{(3,4),(1,2);(7,8),(5,6)}",
      "happy",
      "12.5",
      '(1,"x,y")',
      "[1,5)",
    ]);
    const nulls = (n: number): TupleValue[] => new Array(n).fill(null);
    assertEquals(inserts[1].row, ["2", ...nulls(38)]);

    const updates = only(msgs, "update");
    // Non-key update with the default replica identity: no old tuple.
    assertEquals(updates[0].oldKind, undefined);
    assertEquals(updates[0].old, undefined);
    assertEquals(updates[0].row[8], "changed");
    assertEquals(updates[0].row[20], "infinity");
    // Key change: the old key ('K': key columns only, others null).
    assertEquals(updates[1].oldKind, "K");
    assertEquals(updates[1].old, ["2", ...nulls(38)]);
    assertEquals(updates[1].row[0], "3");
    // REPLICA IDENTITY FULL: the whole old row.
    assertEquals(rels[1].name, "full_ident");
    assertEquals(rels[1].replicaIdentity, "f");
    assertEquals(rels[1].columns.map((c) => c.key), [true, true]);
    assertEquals(updates[2], {
      tag: "update",
      xid: undefined,
      relationId: rels[1].relationId,
      oldKind: "O",
      old: ["1", "one"],
      row: ["1", "uno"],
    });
    // Unchanged TOAST.
    const toasted = rels[2];
    assertEquals(toasted.name, "toasted");
    const toastInsert = inserts.find((i) => i.relationId === toasted.relationId)!;
    assertEquals(toastInsert.row, ["1", "small", TOAST]);
    assertEquals(updates[3].relationId, toasted.relationId);
    assertEquals(updates[3].row, ["1", "changed", UNCHANGED]);

    const deletes = only(msgs, "delete");
    assertEquals(deletes.map((d) => [d.oldKind, d.old]), [
      ["K", ["3", ...nulls(38)]],
      ["O", ["2", null]],
      ["K", ["1", null, null]],
    ]);

    // Quoted names come through as they are.
    assertEquals(rels[3].name, 'Weird "name"');
    assertEquals(rels[3].columns.map((c) => [c.name, c.key]), [["k/1", true], ["k 2", true]]);
    assertEquals(rels[4].schema, "other");
    assertEquals(rels[4].columns.map((c) => c.typeOid), [20, 25]);

    // Logical messages: the non-transactional one arrives although its transaction rolled
    // back (and nothing else of that transaction does).
    const [nontx, tx] = only(msgs, "message");
    assertEquals(nontx.transactional, false);
    assertEquals(nontx.prefix, "nontx");
    assertEquals(new TextDecoder().decode(nontx.content), "sent even though rolled back");
    assertEquals(tx.transactional, true);
    assertEquals(tx.prefix, "tx");
    assertEquals([...tx.content], [0, 255]);
    assert(!inserts.some((i) => i.row[1] === "rolled back"));

    const [trunc] = only(msgs, "truncate");
    assertEquals(trunc.options, 3); // CASCADE | RESTART IDENTITY
    assertEquals(trunc.relationIds, [rels[4].relationId, rels[1].relationId]);

    const [origin] = only(msgs, "origin");
    assertEquals(origin, { tag: "origin", lsn: parseLsn("0/12345678"), name: "upstream" });
    const originBegin = msgs[msgs.indexOf(origin) - 1] as Extract<
      PgOutputMessage,
      { tag: "begin" }
    >;
    assertEquals(originBegin.commitTime, pgTime("2024-01-02T03:04:05Z"));
    assertEquals(inserts.at(-1)!.row, ["4", "from origin"]);
  });
}

Deno.test("pgoutput fixture v2-stream.jsonl: streamed transactions and aborts", () => {
  const rows = load("v2-stream.jsonl");
  const msgs = decodeAll(rows);
  assertEquals(shape(msgs), [
    ...["stream_start", "relation", "insert*497", "stream_stop", "stream_abort"],
    ...["stream_start", "relation", "insert", "stream_stop", "stream_commit"],
    ...["stream_start", "relation", "insert*497", "stream_stop", "stream_abort"],
    ...["begin", "insert", "commit"],
  ]);
  const starts = only(msgs, "stream_start");
  const top = starts[0].xid;
  assertEquals(starts.map((s) => [s.xid, s.first]), [[top, true], [top, false], [
    starts[2].xid,
    true,
  ]]);
  assertEquals(rows.find((_, i) => msgs[i].tag === "stream_start")!.xid, top);

  // Inside the first stream rows carry the top-level xid or the savepoint's subxid.
  let i = 0;
  const firstStream: PgOutputMessage[] = [];
  while (msgs[i].tag !== "stream_stop") firstStream.push(msgs[i++]);
  const inserts = only(firstStream, "insert");
  const sub = only(msgs, "stream_abort")[0].subXid;
  assert(sub !== top);
  assertEquals(inserts.filter((m) => m.xid === top).length, 300);
  assertEquals(inserts.filter((m) => m.xid === sub).length, 197);
  assertEquals(inserts.map((m) => Number(m.row[0])), Array.from({ length: 497 }, (_, k) => k + 1));
  assertEquals(only(firstStream, "relation")[0].xid, top);
  assertEquals(only(firstStream, "relation")[0].name, "big");

  // The savepoint's rollback aborts only the subtransaction (protocol 2: no LSN/time).
  const [subAbort, topAbort] = only(msgs, "stream_abort");
  assertEquals(subAbort, { tag: "stream_abort", xid: top, subXid: sub });
  // A rolled-back streamed transaction: subXid is the transaction itself.
  assertEquals(topAbort, { tag: "stream_abort", xid: starts[2].xid, subXid: starts[2].xid });

  const [commit] = only(msgs, "stream_commit");
  assertEquals(commit.xid, top);
  assertEquals(commit.flags, 0);
  assert(commit.endLsn > commit.commitLsn);
  assert(commit.commitTime > pgTime("2024-01-01T00:00:00Z"));
  const afterSavepoint = msgs[msgs.indexOf(commit) - 2] as Extract<
    PgOutputMessage,
    { tag: "insert" }
  >;
  assertEquals(afterSavepoint.row, ["5000"]);
  assert(afterSavepoint.xid !== undefined && afterSavepoint.xid !== top); // a new subxact

  // After the streams, an ordinary transaction: no xids on its rows.
  const last = msgs.at(-2) as Extract<PgOutputMessage, { tag: "insert" }>;
  assertEquals(last.row, ["6000"]);
  assertEquals(last.xid, undefined);
});

// Hand-built messages.

function build(parts: (number[] | Uint8Array | string)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "string") out.push(...new TextEncoder().encode(p), 0);
    else out.push(...p);
  }
  return new Uint8Array(out);
}
const u32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const u64 = (n: bigint) => [...u32(Number(n >> 32n)), ...u32(Number(n & 0xffffffffn))];
const u16 = (n: number) => [(n >>> 8) & 255, n & 255];

Deno.test("pgoutput protocol 4 stream abort carries the abort LSN and time", () => {
  const lsn = parseLsn("16/B374D848");
  const time = pgTime("2024-05-01T12:00:00Z") + 5n;
  const v4 = build([[0x41], u32(900), u32(901), u64(lsn), u64(time)]);
  assertEquals(decodePgOutput(v4, false), {
    tag: "stream_abort",
    xid: 900,
    subXid: 901,
    abortLsn: lsn,
    abortTime: time,
  });
  assertEquals(decodePgOutput(v4.subarray(0, 9), false), {
    tag: "stream_abort",
    xid: 900,
    subXid: 901,
  });
  // Anything in between is not a stream abort of any version.
  for (let n = 10; n < v4.length; n++) {
    assertThrowsPg(() => decodePgOutput(v4.subarray(0, n), false), /'A'/);
  }
});

Deno.test("pgoutput rows inside a stream carry the xid; values of every kind", () => {
  const row = build([
    [0x49],
    u32(77),
    u32(16384),
    [0x4e],
    u16(4),
    [0x74],
    u32(3),
    [0x61, 0xc3, 0xa9], // "aé"
    [0x6e],
    [0x75],
    [0x74],
    u32(0),
  ]);
  assertEquals(decodePgOutput(row, true), {
    tag: "insert",
    xid: 77,
    relationId: 16384,
    row: ["a\u00e9", null, UNCHANGED, ""],
  });
  // Outside a stream the same bytes do not parse (the xid would be the relation id).
  assertThrowsPg(() => decodePgOutput(row, false));
  const binary = build([[0x49], u32(16384), [0x4e], u16(1), [0x62], u32(1), [1]]);
  assertThrowsPg(() => decodePgOutput(binary, false), /binary/);
  const rel = build([
    [0x52],
    u32(5),
    u32(16384),
    "s",
    "t",
    [0x64],
    u16(1),
    [1],
    "c",
    u32(23),
    u32(-1),
  ]);
  assertEquals(decodePgOutput(rel, true), {
    tag: "relation",
    xid: 5,
    relationId: 16384,
    schema: "s",
    name: "t",
    replicaIdentity: "d",
    columns: [{ name: "c", typeOid: 23, typmod: -1, key: true }],
  });
});

function assertThrowsPg(fn: () => unknown, re?: RegExp): PgOutputError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof PgOutputError)) {
      throw new Error(
        `expected PgOutputError, got ${(e as Error)?.name}: ${(e as Error)?.message}`,
      );
    }
    if (re) assertMatch(e.message, re);
    return e;
  }
  throw new Error("expected a PgOutputError, got none");
}

Deno.test("pgoutput: unknown, truncated and garbage messages fail with PgOutputError", () => {
  assertThrowsPg(() => decodePgOutput(new Uint8Array(0), false), /empty/);
  for (const tag of "PKrbpSz") {
    if (tag === "S") continue;
    const e = assertThrowsPg(() => decodePgOutput(build([[tag.charCodeAt(0)], u32(1)]), false));
    assertMatch(e.message, new RegExp(`'${tag}'.*offset 0`));
  }
  // Every strict prefix of every captured message is an error, never a RangeError.
  let n = 0;
  for (const file of ["v1.jsonl", "v2-stream.jsonl"]) {
    let inStream = false;
    for (const { bytes } of load(file)) {
      const full = decodePgOutput(bytes, inStream);
      for (let len = 0; len < bytes.length; len++) {
        if (bytes.length > 64 && len > 32 && len < bytes.length - 32 && len % 97 !== 0) continue;
        const e = assertThrowsPg(() => decodePgOutput(bytes.subarray(0, len), inStream));
        if (len > 0) assertMatch(e.message, new RegExp(`'${String.fromCharCode(bytes[0])}'`));
        n++;
      }
      // And one extra byte is an error too.
      const longer = new Uint8Array(bytes.length + 1);
      longer.set(bytes);
      assertThrowsPg(() => decodePgOutput(longer, inStream), /unexpected bytes/);
      if (full.tag === "stream_start") inStream = true;
      if (full.tag === "stream_stop") inStream = false;
    }
  }
  assert(n > 3000);

  // Random garbage behind every tag: a message or a PgOutputError, quickly.
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8;
  const tags = "BCORYIUDTMSEcA";
  const started = Date.now();
  for (let k = 0; k < 20000; k++) {
    const len = 1 + (rand() % 64);
    const b = new Uint8Array(len);
    b[0] = tags.charCodeAt(rand() % tags.length);
    for (let j = 1; j < len; j++) b[j] = rand() & 255;
    // Huge counts and lengths are common in garbage.
    if (len > 8 && rand() % 2) b.set([0x7f, 0xff, 0xff, 0xff], 1 + (rand() % (len - 5)));
    try {
      decodePgOutput(b, rand() % 2 === 0);
    } catch (e) {
      if (!(e instanceof PgOutputError)) throw e;
    }
  }
  assert(Date.now() - started < 5000);
});

Deno.test("row plans read every captured row change as decodePgOutput and the renderers do", () => {
  let n = 0;
  for (const file of ["v1.jsonl", "v3.jsonl", "v2-stream.jsonl"]) {
    const plans = new Map<
      number,
      { plan: RowPlan; render: ((t: string) => string)[]; keyIdx: number[] }
    >();
    let inStream = false;
    for (const { bytes } of load(file)) {
      const m = decodePgOutput(bytes, inStream);
      if (m.tag === "stream_start") inStream = true;
      if (m.tag === "stream_stop") inStream = false;
      if (m.tag === "relation") {
        const render = m.columns.map((c) => valueRenderer(c.typeOid, (o) => BUILTIN_TYPES.get(o)));
        // The replica identity as the key, and every column as a (composite) key too.
        const keyIdx = m.columns.flatMap((c, i) => (c.key ? [i] : []));
        plans.set(m.relationId, { plan: rowPlan(render, keyIdx), render, keyIdx });
        const all = m.columns.map((_, i) => i).reverse();
        plans.set(-m.relationId, { plan: rowPlan(render, all), render, keyIdx: all });
        continue;
      }
      assertEquals(
        isRowChange(bytes),
        m.tag === "insert" || m.tag === "update" || m.tag === "delete",
      );
      if (!isRowChange(bytes)) continue;
      const id = (m as { relationId: number }).relationId;
      assertEquals(rowRelationId(bytes, inStream), id);
      const idEnd = inStream ? 9 : 5;
      assertThrowsPg(() => rowRelationId(bytes.subarray(0, idEnd - 1), inStream), /truncated/);
      for (const p of [plans.get(id)!, plans.get(-id)!]) {
        assertEquals(
          decodeRowChange(bytes, inStream, p.plan),
          referenceRowChange(m, p.render, p.keyIdx),
        );
        // Every strict prefix, and one byte more, is a PgOutputError.
        for (let len = 0; len < bytes.length; len += bytes.length > 64 ? 7 : 1) {
          assertThrowsPg(() => decodeRowChange(bytes.subarray(0, len), inStream, p.plan));
        }
        const longer = new Uint8Array(bytes.length + 1);
        longer.set(bytes);
        assertThrowsPg(() => decodeRowChange(longer, inStream, p.plan), /unexpected bytes/);
        n++;
      }
    }
  }
  assert(n > 20, `${n} row changes`);
});

Deno.test("formatLsn / parseLsn", () => {
  assertEquals(formatLsn(parseLsn("16/B374D848")), "16/B374D848");
  assertEquals(parseLsn("16/b374d848"), 0x16b374d848n);
  assertEquals(formatLsn(0n), "0/0");
  assertEquals(formatLsn(0xffffffffffffffffn), "FFFFFFFF/FFFFFFFF");
  assertEquals(parseLsn("FFFFFFFF/FFFFFFFF"), 0xffffffffffffffffn);
  assertEquals(formatLsn(0x100000000n), "1/0");
  for (const bad of ["", "1", "1/", "/1", "x/1", "123456789/0", " 1/2", "1/2 ", "1/-2", "0x1/2"]) {
    let threw = false;
    try {
      parseLsn(bad);
    } catch {
      threw = true;
    }
    assert(threw, `parseLsn accepted ${JSON.stringify(bad)}`);
  }
});
