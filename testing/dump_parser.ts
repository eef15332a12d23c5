/**
 * mysqldump output, parsed incrementally from chunks of bytes (pure). Only one statement
 * is held at a time (mysqldump keeps each INSERT under net_buffer_length), never the dump.
 * sync no longer runs mysqldump; the tests read the recorded fixture's dump with it, to
 * compare the binlog's rendering with the server's own text (tests/fixtures/mysql).
 */
import {
  bitsToDecimal,
  cellOf,
  isBinary,
  keyPartOf,
  type MysqlValue,
} from "../src/mysql/values.ts";
import type { MysqlColumn } from "../src/mysql/types.ts";

/**
 * One value as mysqldump wrote it in an INSERT statement, after SQL unescaping:
 * `NULL`; a quoted string as its raw bytes (in the column's charset); a bare token
 * (number, or `b'0101'` bit literal kept as written); a `0x...` hex literal (--hex-blob)
 * as bytes.
 */
export type DumpLiteral =
  | null
  | { readonly quoted: Uint8Array }
  | { readonly bare: string }
  | { readonly hex: Uint8Array };

export type DumpItem =
  | { kind: "position"; file: string; offset: number }
  | { kind: "gtid"; gtid: string }
  | { kind: "database"; name: string }
  | { kind: "rows"; table: string; columns?: string[]; rows: DumpLiteral[][] };

export class DumpParseError extends Error {
  override name = "DumpParseError";
}

const dec = new TextDecoder();
const Q1 = 0x27, Q2 = 0x22, BT = 0x60, BS = 0x5c, SEMI = 0x3b, NL = 0x0a, DASH = 0x2d;

export class DumpParser {
  #buf = new Uint8Array(1 << 16);
  #len = 0;
  /** Scan position and quote state, kept across chunks. */
  #i = 0;
  #quote = 0;
  #escape = false;
  #comment = false;

  push(chunk: Uint8Array): DumpItem[] {
    if (this.#len + chunk.length > this.#buf.length) {
      const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + chunk.length));
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    this.#buf.set(chunk, this.#len);
    this.#len += chunk.length;
    const out: DumpItem[] = [];
    this.#scan(out);
    return out;
  }

  end(): DumpItem[] {
    const out: DumpItem[] = [];
    this.#scan(out);
    const rest = dec.decode(this.#buf.subarray(0, this.#len)).trim();
    if (rest && !rest.startsWith("--")) this.#statement(this.#buf.subarray(0, this.#len), out);
    else if (rest) this.#commentLine(rest, out);
    this.#len = 0;
    this.#i = 0;
    return out;
  }

  #scan(out: DumpItem[]) {
    const b = this.#buf;
    let start = 0;
    let i = this.#i;
    for (; i < this.#len; i++) {
      const c = b[i];
      if (this.#comment) {
        if (c === NL) {
          this.#commentLine(dec.decode(b.subarray(start, i)), out);
          this.#comment = false;
          start = i + 1;
        }
        continue;
      }
      if (this.#quote) {
        if (this.#escape) this.#escape = false;
        else if (c === BS && this.#quote !== BT) this.#escape = true;
        else if (c === this.#quote) this.#quote = 0;
        continue;
      }
      if (c === Q1 || c === Q2 || c === BT) this.#quote = c;
      else if (c === SEMI) {
        this.#statement(b.subarray(start, i), out);
        start = i + 1;
      } else if (c === DASH && i + 1 < this.#len && b[i + 1] === DASH && blankBefore(b, start, i)) {
        this.#comment = true;
        start = i;
      } else if (c === DASH && i + 1 === this.#len && blankBefore(b, start, i)) {
        break; // need the next byte to tell a comment from a statement
      }
    }
    // Keep the unfinished statement at the start of the buffer.
    if (start > 0) b.copyWithin(0, start, this.#len);
    this.#len -= start;
    this.#i = i - start;
  }

  #commentLine(line: string, out: DumpItem[]) {
    const pos =
      /(?:MASTER|SOURCE)_LOG_FILE\s*=\s*'([^']+)'\s*,\s*(?:MASTER|SOURCE)_LOG_POS\s*=\s*(\d+)/i
        .exec(line);
    if (pos) out.push({ kind: "position", file: pos[1], offset: Number(pos[2]) });
    const gtid = /gtid_slave_pos\s*=\s*'([^']*)'/i.exec(line);
    if (gtid) out.push({ kind: "gtid", gtid: gtid[1] });
    else if (/GTID_PURGED/i.test(line)) {
      const m = /'([^']*)'\s*;?\s*$/.exec(line);
      if (m) out.push({ kind: "gtid", gtid: m[1].replace(/^\+/, "").replace(/\s+/g, "") });
    }
  }

  #statement(s: Uint8Array, out: DumpItem[]) {
    let i = 0;
    while (i < s.length && (s[i] === 0x20 || s[i] === NL || s[i] === 0x0d || s[i] === 0x09)) i++;
    const head = dec.decode(s.subarray(i, Math.min(s.length, i + 64)));
    const ins = /^(?:INSERT(?:\s+IGNORE)?|REPLACE)\s+INTO\s+/i.exec(head);
    if (ins) out.push(parseInsert(s, i + ins[0].length));
    else if (/^CHANGE\s+(?:MASTER|REPLICATION\s+SOURCE)\s+TO\s/i.test(head)) {
      this.#commentLine(dec.decode(s.subarray(i)), out);
    } else if (/^SET\s+GLOBAL\s+gtid_slave_pos\s*=/i.test(head)) {
      this.#commentLine(dec.decode(s.subarray(i)), out);
    } else if (/^USE\s/i.test(head)) {
      const m = /^USE\s+`((?:[^`]|``)+)`/i.exec(dec.decode(s.subarray(i)));
      if (m) out.push({ kind: "database", name: m[1].replaceAll("``", "`") });
    } else if (/GTID_PURGED/i.test(head)) {
      const m = /'([^']*)'\s*$/.exec(dec.decode(s.subarray(i)));
      if (m) out.push({ kind: "gtid", gtid: m[1].replace(/^\+/, "").replace(/\s+/g, "") });
    }
  }
}

function blankBefore(b: Uint8Array, start: number, i: number): boolean {
  for (let k = start; k < i; k++) {
    if (b[k] !== 0x20 && b[k] !== NL && b[k] !== 0x0d && b[k] !== 0x09) return false;
  }
  return true;
}

const ESC: Record<number, number> = {
  0x30: 0x00, // \0
  0x62: 0x08, // \b
  0x6e: 0x0a, // \n
  0x72: 0x0d, // \r
  0x74: 0x09, // \t
  0x5a: 0x1a, // \Z
};

function parseInsert(s: Uint8Array, at: number): DumpItem {
  return new InsertParser(s, at).parse();
}

/**
 * One `INSERT INTO `t` [(`col`, ...)] VALUES (...),(...)` statement as mysqldump writes
 * it: identifiers in backticks, strings in quotes with backslash escapes, bare tokens.
 */
class InsertParser {
  constructor(readonly s: Uint8Array, public i: number) {}

  parse(): DumpItem {
    const s = this.s;
    this.ws();
    let table = this.ident();
    if (s[this.i] === 0x2e /* . */) {
      this.i++;
      table = this.ident();
    }
    this.ws();
    const columns = s[this.i] === 0x28 /* ( */ ? this.columnList() : undefined;
    if (dec.decode(s.subarray(this.i, this.i + 6)).toUpperCase() !== "VALUES") this.fail("VALUES");
    this.i += 6;
    const rows: DumpLiteral[][] = [];
    for (;;) {
      this.ws();
      if (this.i >= s.length) break;
      if (s[this.i] !== 0x28) this.fail("row");
      this.i++;
      rows.push(this.row());
      this.ws();
      if (s[this.i] === 0x2c) this.i++;
      else break;
    }
    return { kind: "rows", table, columns, rows };
  }

  fail(what: string): never {
    throw new DumpParseError(
      `cannot parse mysqldump INSERT (${what}) near: ${
        dec.decode(this.s.subarray(this.i, this.i + 60))
      }`,
    );
  }

  ws() {
    const s = this.s;
    let i = this.i;
    while (i < s.length && (s[i] === 0x20 || s[i] === NL || s[i] === 0x0d || s[i] === 0x09)) i++;
    this.i = i;
  }

  /** A backticked identifier (a doubled backtick is one). */
  ident(): string {
    const s = this.s;
    if (s[this.i] !== BT) this.fail("identifier");
    let out = "";
    let i = this.i + 1;
    let from = i;
    for (; i < s.length; i++) {
      if (s[i] === BT) {
        if (s[i + 1] === BT) {
          out += dec.decode(s.subarray(from, i + 1));
          i++;
          from = i + 1;
          continue;
        }
        break;
      }
    }
    out += dec.decode(s.subarray(from, i));
    this.i = i + 1;
    return out;
  }

  /** `(`col`, ...)`, after the opening parenthesis is seen. */
  columnList(): string[] {
    const s = this.s;
    const columns: string[] = [];
    this.i++;
    for (;;) {
      this.ws();
      columns.push(this.ident());
      this.ws();
      if (s[this.i] === 0x2c) this.i++;
      else if (s[this.i] === 0x29) {
        this.i++;
        break;
      } else this.fail("column list");
    }
    this.ws();
    return columns;
  }

  /** The values of one row, after its opening parenthesis, through its closing one. */
  row(): DumpLiteral[] {
    const s = this.s;
    const row: DumpLiteral[] = [];
    for (;;) {
      this.ws();
      row.push(this.literal());
      this.ws();
      if (s[this.i] === 0x2c) this.i++;
      else if (s[this.i] === 0x29) {
        this.i++;
        return row;
      } else this.fail("value separator");
    }
  }

  literal(): DumpLiteral {
    const s = this.s;
    const c = s[this.i];
    if (c === Q1 || c === Q2) return { quoted: this.quoted() };
    if (c === 0x5f /* _ */) {
      // _binary '...' (introducer)
      while (this.i < s.length && s[this.i] !== Q1 && s[this.i] !== 0x2c && s[this.i] !== 0x29) {
        this.i++;
      }
      if (s[this.i] === Q1) return { quoted: this.quoted() };
    }
    const start = this.i;
    let i = start;
    if ((c === 0x62 || c === 0x42) && s[i + 1] === Q1) {
      i += 2;
      while (i < s.length && s[i] !== Q1) i++;
      this.i = i + 1;
      return { bare: dec.decode(s.subarray(start, i + 1)) };
    }
    while (i < s.length && s[i] !== 0x2c && s[i] !== 0x29 && s[i] !== 0x20 && s[i] !== NL) i++;
    this.i = i;
    const tok = dec.decode(s.subarray(start, i));
    if (tok === "NULL") return null;
    if (/^0x[0-9a-f]*$/i.test(tok)) return { hex: hexBytes(tok.slice(2)) };
    if (!tok) this.fail("empty value");
    return { bare: tok };
  }

  /** A quoted string, unescaped, as its bytes. */
  quoted(): Uint8Array {
    const s = this.s;
    let i = this.i;
    const q = s[i++];
    const out: number[] = [];
    let from = i;
    for (; i < s.length; i++) {
      const c = s[i];
      if (c === BS) {
        for (let k = from; k < i; k++) out.push(s[k]);
        const e = s[++i];
        out.push(ESC[e] ?? e);
        from = i + 1;
      } else if (c === q) {
        if (s[i + 1] === q) {
          for (let k = from; k <= i; k++) out.push(s[k]);
          i++;
          from = i + 1;
          continue;
        }
        for (let k = from; k < i; k++) out.push(s[k]);
        this.i = i + 1;
        return new Uint8Array(out);
      }
    }
    this.i = i;
    return this.fail("unterminated string");
  }
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let k = 0; k < out.length; k++) out[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
  return out;
}

const text = new TextDecoder();

/** A mysqldump literal as a value (mysqldump runs with --default-character-set=utf8mb4). */
export function dumpValue(col: MysqlColumn, lit: DumpLiteral): MysqlValue {
  if (lit === null) return null;
  const binary = isBinary(col);
  if ("hex" in lit) {
    if (col.dataType === "bit") return bitsToDecimal(lit.hex);
    return binary ? lit.hex : text.decode(lit.hex);
  }
  if ("quoted" in lit) return binary ? lit.quoted : text.decode(lit.quoted);
  const bare = lit.bare;
  if (col.dataType === "bit") {
    const m = /^b'([01]*)'$/i.exec(bare);
    if (m) return m[1] ? BigInt("0b" + m[1]).toString() : "0";
  }
  return bare;
}

/** A mysqldump literal as the JSON fragment of its column. */
export function dumpCell(col: MysqlColumn, lit: DumpLiteral): string {
  return cellOf(col, dumpValue(col, lit));
}

/** One percent-encoded key part (join the parts with `imageKey`). */
export function dumpKeyPart(col: MysqlColumn, lit: DumpLiteral): string {
  return keyPartOf(col, dumpValue(col, lit));
}
