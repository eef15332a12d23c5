/**
 * The decoders' text fast paths give exactly what the plain ways give: pgoutput values cut
 * from one decoded string as TextDecoder decodes each value's bytes alone; jsonString as
 * JSON.stringify; the Buffer slices of core/text.ts as TextDecoder (UTF-8) and byte for
 * byte (Latin-1). Random values lean on what breaks such paths: quotes, backslashes,
 * controls, multi-byte and invalid UTF-8, a BOM, lone surrogates.
 */
import { assertEquals } from "../../testing/assert.ts";
import { decodePgOutput } from "../../src/pg/pgoutput.ts";
import { jsonString, renderRow } from "../../src/core/json.ts";
import { latin1Slice, utf8Slice } from "../../src/core/text.ts";

/** A small deterministic PRNG (mulberry32), so a failure repeats. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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
