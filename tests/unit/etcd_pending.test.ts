/**
 * The sink's dump path: a value's UTF-8 length counted without encoding it is what
 * TextEncoder gives (random strings lean on multi-byte characters and lone surrogates).
 */
import { assert, assertEquals } from "../../testing/assert.ts";
import { utf8Bound, utf8Length } from "../../src/etcd/pending.ts";

Deno.test("utf8Length is TextEncoder's length, lone surrogates as U+FFFD", () => {
  const enc = new TextEncoder();
  const cases = ["", "abc", "é", "€", "😀", "a😀b", "\ud800", "\udc00", "\ud800x", "x\ud800"];
  cases.push("\udc00\ud800", "\u007f\u0080\u07ff\u0800\uffff", '\u0000\n"\\');
  const units = [0x41, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000];
  for (let i = 0; i < 5000; i++) {
    let s = "";
    for (let j = Math.floor(Math.random() * 10); j > 0; j--) {
      s += String.fromCharCode(units[Math.floor(Math.random() * units.length)]);
    }
    cases.push(s);
  }
  for (const s of cases) assertEquals(utf8Length(s), enc.encode(s).length, JSON.stringify(s));
});

Deno.test("utf8Bound is never below the UTF-8 length, and exact past 1,024 units", () => {
  const enc = new TextEncoder();
  for (const s of ["", "a", "é".repeat(128), "😀".repeat(64), "x".repeat(1025), "€".repeat(2000)]) {
    const n = enc.encode(s).length;
    const b = utf8Bound(s);
    assert(b >= n, `${b} < ${n} for ${s.length} units`);
    if (s.length > 1024) assertEquals(b, n);
  }
});
