/**
 * The decoders' text fast paths give exactly what the plain ways give: pgoutput values cut
 * from one decoded string as TextDecoder decodes each value's bytes alone; jsonString as
 * JSON.stringify; the Buffer slices of core/text.ts as TextDecoder (UTF-8) and byte for
 * byte (Latin-1); jsonSafeBytes as a loop over the bytes; pgoutput row plans (and the same plans
 * reading a query's DataRow) as decoding, rendering and keying one step after the other; etcd transactions (strings copied by a
 * loop while ASCII, nested lengths sized in advance) as a plain protobuf writer. Random values lean on what breaks such paths: quotes, backslashes,
 * controls, multi-byte and invalid UTF-8, a BOM, lone surrogates.
 */
import { assertEquals } from "../../testing/assert.ts";
import { Rng } from "../../scripts/torture_lib/prng.ts";
import { decodePgOutput } from "../../src/pg/pgoutput.ts";
import { decodeDataRow, decodeRowChange, rowPlan } from "../../src/pg/row_change.ts";
import { parseDataRow } from "../../src/pg/protocol.ts";
import { rowKey } from "../../src/core/keys.ts";
import { BUILTIN_TYPES, valueRenderer } from "../../src/pg/values.ts";
import { jsonString, renderRow } from "../../src/core/json.ts";
import { referenceRowChange } from "./pg_row_reference.ts";
import { jsonSafeBytes, latin1Slice, utf8Slice } from "../../src/core/text.ts";
import { encodeTxn } from "../../src/etcd/messages.ts";
import type { TxnOp } from "../../src/etcd/types.ts";

/** A small deterministic PRNG (mulberry32), so a failure repeats. */
/** The torture runs' seeded generator, as a function. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const PIECES = [
  "a",
  "row 1",
  '"',
  "\\",
  "\n",
  "\u0001",
  "\u007f",
  "é",
  "€",
  "😀",
  "\ufeff",
  "/",
  "%",
  "x".repeat(40),
];
/** Bytes a UTF-8 encoder never writes: lone continuation, truncated lead, overlong, 0xff. */
const RAW = [[0x80], [0xc3], [0xe2, 0x82], [0xc0, 0xaf], [0xff], [0xed, 0xa0, 0x80]];

function randomValue(r: () => number): Uint8Array {
  const parts: number[] = [];
  const n = Math.floor(r() * 6);
  for (let i = 0; i < n; i++) {
    if (r() < 0.15) parts.push(...RAW[Math.floor(r() * RAW.length)]);
    else parts.push(...enc.encode(PIECES[Math.floor(r() * PIECES.length)]));
  }
  return new Uint8Array(parts);
}

/** An Insert message ('I', relation id, 'N', the tuple) of text values (null for `null`). */
function insert(values: (Uint8Array | null)[]): Uint8Array {
  const out: number[] = [0x49, 0, 0, 0x40, 0x01, 0x4e, values.length >> 8, values.length & 255];
  for (const v of values) {
    if (v === null) {
      out.push(0x6e);
      continue;
    }
    const n = v.length;
    out.push(0x74, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255, ...v);
  }
  return new Uint8Array(out);
}

Deno.test("pgoutput: every text value decodes as TextDecoder decodes it alone", () => {
  const r = rng(7);
  for (let t = 0; t < 5000; t++) {
    const values = Array.from(
      { length: 1 + Math.floor(r() * 5) },
      () => (r() < 0.1 ? null : randomValue(r)),
    );
    // Inside a bigger buffer at an odd offset, as a read chunk holds messages.
    const msg = insert(values);
    const chunk = new Uint8Array(msg.length + 7);
    chunk.set(msg, 3);
    const got = decodePgOutput(chunk.subarray(3, 3 + msg.length), false);
    if (got.tag !== "insert") throw new Error(got.tag);
    const want = values.map((v) => (v === null ? null : dec.decode(v)));
    assertEquals(got.row, want, `values ${JSON.stringify(values.map((v) => v && [...v]))}`);
  }
});

Deno.test("jsonString writes what JSON.stringify writes", () => {
  const r = rng(11);
  const extra = ["\ud800", "\udfff", "a\ud83d", "\ude00b", "\u2028", "\u0000", ""];
  for (let t = 0; t < 20000; t++) {
    let s = dec.decode(randomValue(r));
    if (r() < 0.2) s += extra[Math.floor(r() * extra.length)];
    assertEquals(jsonString(s), JSON.stringify(s), JSON.stringify([...s]));
  }
});

Deno.test("core/text: UTF-8 slices as TextDecoder, Latin-1 one character per byte", () => {
  const r = rng(13);
  const big = new Uint8Array(4096);
  for (let i = 0; i < big.length; i++) big[i] = Math.floor(r() * 256);
  for (let t = 0; t < 5000; t++) {
    // Two views on one ArrayBuffer and one on another: the cached Buffer must follow.
    const b = t % 3 === 2 ? big.slice(100, 300) : big.subarray(t % 50);
    const start = Math.floor(r() * 100);
    const end = start + Math.floor(r() * 40);
    const bytes = b.subarray(start, end);
    // TextDecoder drops a leading BOM; utf8Slice keeps it (callers that care check).
    const want = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf
      ? "\ufeff" + dec.decode(bytes)
      : dec.decode(bytes);
    assertEquals(utf8Slice(b, start, end), want);
    assertEquals(latin1Slice(b, start, end), String.fromCharCode(...bytes));
  }
});

Deno.test("renderRow writes each column name as JSON.stringify does, once per array", () => {
  const r = rng(17);
  for (let t = 0; t < 2000; t++) {
    const columns = Array.from({ length: Math.floor(r() * 5) }, () => dec.decode(randomValue(r)));
    const cells = columns.map(() => (r() < 0.5 ? "1" : '"x"'));
    const want = "{" + columns.map((c, i) => `${JSON.stringify(c)}:${cells[i]}`).join(",") + "}";
    // Twice: the second time from the cached lead-ins.
    assertEquals(renderRow(columns, cells), want);
    assertEquals(renderRow(columns, cells), want);
  }
});

Deno.test("jsonSafeBytes is a loop over the bytes, at every offset and length", () => {
  const r = rng(19);
  const EDGE = [0x00, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff];
  const buf = new Uint8Array(301);
  for (let t = 0; t < 20000; t++) {
    for (let i = 0; i < buf.length; i++) {
      buf[i] = r() < 0.01 ? EDGE[Math.floor(r() * EDGE.length)] : 0x20 + Math.floor(r() * 0x60);
    }
    // A view at an odd offset of its buffer, as a message inside a read chunk.
    const b = buf.subarray(Math.floor(r() * 5));
    const start = Math.floor(r() * 40);
    const end = Math.min(b.length, start + Math.floor(r() * 120));
    let want = true;
    for (let k = start; k < end; k++) {
      if (b[k] < 0x20 || b[k] === 0x22 || b[k] === 0x5c) want = false;
    }
    assertEquals(jsonSafeBytes(b, start, end), want, JSON.stringify([...b.subarray(start, end)]));
  }
});

/** Renderers the random rows use: each takes any text (arrays would want array literals). */
const TYPES = [23, 20, 25, 1043, 16, 1700, 3802, 17, 1114, 1184, 2950, 99999];
const renderOf = (oid: number) => valueRenderer(oid, (o) => BUILTIN_TYPES.get(o));

/** A random value's text for a column of type `oid`. */
function textOf(r: () => number, oid: number): Uint8Array {
  return oid === 23 || oid === 20
    ? enc.encode(String(Math.floor((r() - 0.3) * 10 ** Math.floor(r() * 12))))
    : r() < 0.3
    ? enc.encode("x".repeat(Math.floor(r() * 200)))
    : randomValue(r);
}

/** One value as the tuple carries it: 'n', 'u', or 't' with length and bytes. */
function tupleValue(r: () => number, oid: number, out: number[]) {
  const x = r();
  if (x < 0.08) return out.push(0x6e);
  if (x < 0.12) return out.push(0x75);
  const v = textOf(r, oid);
  const n = v.length;
  out.push(0x74, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255, ...v);
}

/** 1-6 columns of random types, and key columns in any order: one usually, sometimes several. */
function randomRelation(r: () => number) {
  const oids = Array.from(
    { length: 1 + Math.floor(r() * 6) },
    () => TYPES[Math.floor(r() * TYPES.length)],
  );
  const keyIdx = oids.map((_, i) => i).filter(() => r() < 0.4).sort(() => r() - 0.5);
  if (!keyIdx.length) keyIdx.push(Math.floor(r() * oids.length));
  return { oids, render: oids.map(renderOf), keyIdx };
}

Deno.test("row plans give what decodePgOutput, the renderers and rowKey give", () => {
  const r = rng(23);
  for (let t = 0; t < 5000; t++) {
    const { oids, render, keyIdx } = randomRelation(r);
    const inStream = r() < 0.2;
    const tuple = (out: number[]) => {
      out.push(oids.length >> 8, oids.length & 255);
      for (const oid of oids) tupleValue(r, oid, out);
    };
    const tag = "IUD"[Math.floor(r() * 3)];
    const out = [tag.charCodeAt(0)];
    if (inStream) out.push(0, 0, 0x12, 0x34);
    out.push(0, 0, 0x40, 0x01);
    const old = r();
    if (tag === "D" || (tag === "U" && old < 0.6)) {
      out.push(old < 0.3 ? 0x4b : 0x4f);
      tuple(out);
    }
    if (tag !== "D") {
      out.push(0x4e);
      tuple(out);
    }
    // Inside a bigger buffer at any offset: the four-byte steps of jsonSafeBytes meet
    // every alignment.
    const at = Math.floor(r() * 8);
    const chunk = new Uint8Array(out.length + 16);
    chunk.set(out, at);
    const msg = chunk.subarray(at, at + out.length);
    const plan = rowPlan(render, keyIdx);
    assertEquals(
      decodeRowChange(msg, inStream, plan),
      referenceRowChange(decodePgOutput(msg, inStream), render, keyIdx),
      `${tag} ${oids} key ${keyIdx}: ${JSON.stringify([...msg])}`,
    );
  }
});

Deno.test("DataRow plans give what parseDataRow, the renderers and rowKey give", () => {
  const r = rng(29);
  for (let t = 0; t < 5000; t++) {
    const { oids, render, keyIdx } = randomRelation(r);
    // A DataRow body: the column count, then each value's length (-1: NULL) and bytes.
    const out = [oids.length >> 8, oids.length & 255];
    for (const oid of oids) {
      const v = r() < 0.08 ? null : textOf(r, oid);
      const n = v ? v.length : -1;
      out.push(n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255, ...(v ?? []));
    }
    const at = Math.floor(r() * 8);
    const chunk = new Uint8Array(out.length + 16);
    chunk.set(out, at);
    const body = chunk.subarray(at, at + out.length);
    const cells = new Array<string>(oids.length);
    const texts = new Array<string>(keyIdx.length);
    const key = decodeDataRow(body, rowPlan(render, keyIdx), cells, texts);
    const row = parseDataRow(body);
    const keyTexts = keyIdx.map((i) => row[i] ?? "");
    assertEquals(
      { key, cells, texts },
      {
        key: rowKey(keyTexts),
        cells: row.map((v, i) => (v === null ? "null" : render[i](v))),
        texts: keyTexts,
      },
      `${oids} key ${keyIdx}: ${JSON.stringify(out)}`,
    );
  }
});

/** A plain protobuf writer: canonical varints, each nested message built before its length. */
const pb = {
  varint(n: number | bigint): number[] {
    let v = BigInt.asUintN(64, BigInt(n));
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    return out;
  },
  len(field: number, body: number[]): number[] {
    return [...pb.varint(field * 8 + 2), ...pb.varint(body.length)].concat(body);
  },
  str(field: number, s: string | undefined): number[] {
    return s ? pb.len(field, Array.from(enc.encode(s))) : [];
  },
};

Deno.test("encodeTxn writes what a plain protobuf writer writes, ASCII or not", () => {
  const r = rng(29);
  // Around the lengths where a varint grows, and units UTF-8 writes as 2, 3 and 4 bytes.
  const sizes = [0, 1, 31, 32, 33, 40, 120, 127, 128, 129, 200, 16383, 16384, 16390];
  const text = (n: number) => {
    let s = "";
    while (s.length < n) s += r() < 0.03 ? ["é", "€", "😀", "\ud800"][Math.floor(r() * 4)] : "a";
    return s;
  };
  for (let t = 0; t < 300; t++) {
    const ops: TxnOp[] = Array.from({ length: 1 + Math.floor(r() * 4) }, () => {
      const key = text(sizes[Math.floor(r() * 8)]) || "k";
      const x = r();
      if (x < 0.6) {
        const lease = r() < 0.2 ? String(Math.floor(r() * 2 ** 40)) : undefined;
        return { put: { key, value: text(sizes[Math.floor(r() * sizes.length)]), lease } };
      }
      return x < 0.8 ? { delete: { key, rangeEnd: r() < 0.5 ? key + "0" : undefined } } : {
        range: { key },
      };
    });
    const want = ops.flatMap((op) => {
      if ("put" in op) {
        const { key, value, lease } = op.put as { key: string; value: string; lease?: string };
        const lz = lease ? [...pb.varint(3 * 8), ...pb.varint(BigInt(lease))] : [];
        return pb.len(2, pb.len(2, [...pb.str(1, key), ...pb.str(2, value), ...lz]));
      }
      const [which, o] = "delete" in op ? [3, op.delete] : [1, op.range];
      return pb.len(2, pb.len(which, [...pb.str(1, o.key), ...pb.str(2, o.rangeEnd)]));
    });
    assertEquals(Array.from(encodeTxn({ success: ops })), want);
  }
});
