/**
 * mysqldump output, parsed incrementally from chunks of bytes (pure). Only one statement
 * is held at a time (mysqldump keeps each INSERT under net_buffer_length), never the dump.
 */
import type { DumpLiteral } from "./types.ts";

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
  let i = at;
  const fail = (what: string): never => {
    throw new DumpParseError(
      `cannot parse mysqldump INSERT (${what}) near: ${dec.decode(s.subarray(i, i + 60))}`,
    );
  };
  const ws = () => {
    while (i < s.length && (s[i] === 0x20 || s[i] === NL || s[i] === 0x0d || s[i] === 0x09)) i++;
  };
  const ident = (): string => {
    if (s[i] !== BT) fail("identifier");
    let out = "";
    let from = ++i;
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
    i++;
    return out;
  };
  ws();
  let table = ident();
  if (s[i] === 0x2e /* . */) {
    i++;
    table = ident();
  }
  ws();
  let columns: string[] | undefined;
  if (s[i] === 0x28 /* ( */) {
    columns = [];
    i++;
    for (;;) {
      ws();
      columns.push(ident());
      ws();
      if (s[i] === 0x2c) i++;
      else if (s[i] === 0x29) {
        i++;
        break;
      } else fail("column list");
    }
    ws();
  }
  if (dec.decode(s.subarray(i, i + 6)).toUpperCase() !== "VALUES") fail("VALUES");
  i += 6;
  const rows: DumpLiteral[][] = [];
  for (;;) {
    ws();
    if (i >= s.length) break;
    if (s[i] !== 0x28) fail("row");
    i++;
    const row: DumpLiteral[] = [];
    for (;;) {
      ws();
      row.push(literal());
      ws();
      if (s[i] === 0x2c) i++;
      else if (s[i] === 0x29) {
        i++;
        break;
      } else fail("value separator");
    }
    rows.push(row);
    ws();
    if (s[i] === 0x2c) i++;
    else break;
  }
  return { kind: "rows", table, columns, rows };

  function literal(): DumpLiteral {
    const c = s[i];
    if (c === Q1 || c === Q2) return { quoted: quoted() };
    if (c === 0x5f /* _ */) {
      // _binary '...' (introducer)
      while (i < s.length && s[i] !== Q1 && s[i] !== 0x2c && s[i] !== 0x29) i++;
      if (s[i] === Q1) return { quoted: quoted() };
    }
    const start = i;
    if ((c === 0x62 || c === 0x42) && s[i + 1] === Q1) {
      i += 2;
      while (i < s.length && s[i] !== Q1) i++;
      i++;
      return { bare: dec.decode(s.subarray(start, i)) };
    }
    while (
      i < s.length && s[i] !== 0x2c && s[i] !== 0x29 && s[i] !== 0x20 && s[i] !== NL
    ) i++;
    const tok = dec.decode(s.subarray(start, i));
    if (tok === "NULL") return null;
    if (/^0x[0-9a-f]*$/i.test(tok)) {
      const hex = tok.slice(2);
      const out = new Uint8Array(hex.length >> 1);
      for (let k = 0; k < out.length; k++) out[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
      return { hex: out };
    }
    if (!tok) fail("empty value");
    return { bare: tok };
  }

  function quoted(): Uint8Array {
    const q = s[i++];
    const out: number[] = [];
    let from = i;
    const flush = (to: number) => {
      for (let k = from; k < to; k++) out.push(s[k]);
    };
    for (; i < s.length; i++) {
      const c = s[i];
      if (c === BS) {
        flush(i);
        const e = s[++i];
        out.push(ESC[e] ?? e);
        from = i + 1;
      } else if (c === q) {
        if (s[i + 1] === q) {
          flush(i + 1);
          i++;
          from = i + 1;
          continue;
        }
        flush(i);
        i++;
        return new Uint8Array(out);
      }
    }
    return fail("unterminated string");
  }
}
