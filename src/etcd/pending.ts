/** One etcd transaction being built, and the limits it must keep (ops and request bytes). */
import type { ChangeBatch } from "../core/change.ts";
import type { TxnOp } from "./types.ts";
import { tablePrefix } from "../core/keys.ts";

export interface Pending {
  /** Merged puts (value) and deletes (null), in first-seen order. */
  ops: Map<string, { value: string | null; bytes: number }>;
  /** Truncated tables' key ranges. */
  ranges: { start: string; end: string }[];
  bytes: number;
}

export const newPending = (): Pending => ({ ops: new Map(), ranges: [], bytes: 0 });

export class Budget {
  constructor(
    readonly maxOps: number,
    readonly maxBytes: number,
    readonly prefix: string,
  ) {}

  /**
   * Whether all of `batch` would fit in `p` (an estimate from above: operations as if no
   * two touched one key, values as their cells and column names).
   */
  fitsWhole(p: Pending, batch: ChangeBatch, reserve: number): boolean {
    let bytes = 0;
    for (const c of batch.changes) {
      bytes += c.table.length + (c.op === "truncate" ? 16 : c.key.length) + this.prefix.length +
        24;
      if (c.op !== "put") continue;
      for (let i = 0; i < c.cells.length; i++) {
        const cell = c.cells[i];
        // An unchanged TOAST value is not known here: its row's size decides later.
        bytes += c.columns[i].length + 4 + (typeof cell === "string" ? cell.length * 3 : 0);
      }
    }
    const ops = p.ops.size + p.ranges.length + batch.changes.length + 2;
    return ops <= this.maxOps && p.bytes + bytes + reserve <= this.maxBytes;
  }

  fits(p: Pending, key: string, bytes: number, reserve: number): boolean {
    // The state key, and the table definitions beside it when they changed.
    const ops = p.ops.size + p.ranges.length + (p.ops.has(key) ? 0 : 1) + (reserve ? 2 : 0);
    return ops <= this.maxOps && p.bytes + bytes + reserve <= this.maxBytes;
  }
}

/** The operations of `p`: its truncated ranges, then its puts and deletes. */
export function txnOps(p: Pending): TxnOp[] {
  const ops: TxnOp[] = [];
  for (const r of p.ranges) ops.push({ delete: { key: r.start, rangeEnd: r.end } });
  for (const [key, op] of p.ops) {
    ops.push(op.value === null ? { delete: { key } } : { put: { key, value: op.value } });
  }
  return ops;
}

/** Drop `p`'s ops on keys in [start, end): a truncate of their table supersedes them. */
export function dropRange(p: Pending, start: string, end: string): void {
  for (const [k, op] of p.ops) {
    if (k >= start && k < end) {
      p.bytes -= op.bytes;
      p.ops.delete(k);
    }
  }
}

/** Add a put (value) or delete (null) to `p`, merged with an earlier op on the key. */
export function addOp(p: Pending, key: string, value: string | null, bytes: number): void {
  const old = p.ops.get(key);
  if (old) {
    p.bytes -= old.bytes;
    // Re-insert so the merged op keeps the position of its last write.
    p.ops.delete(key);
  }
  p.ops.set(key, { value, bytes });
  p.bytes += bytes;
}

/**
 * `s`'s UTF-8 length, or for a short string a bound from above (3 bytes per UTF-16 unit)
 * that spares the scan: a transaction of such rows is far from its byte limit anyway.
 */
export function utf8Bound(s: string): number {
  return s.length <= 1024 ? 3 * s.length : utf8Length(s);
}

/** Each table's key prefix, built (and percent-encoded) once, not for every row. */
export class TablePrefixes {
  readonly #of = new Map<string, string>();
  constructor(readonly prefix: string) {}

  of(table: string): string {
    let p = this.#of.get(table);
    if (p === undefined) this.#of.set(table, p = tablePrefix(this.prefix, table));
    return p;
  }
}

// deno-lint-ignore no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * `s`'s length in UTF-8, as TextEncoder would encode it (a lone surrogate as U+FFFD), without
 * encoding it: the value is encoded once, into the request. Most rows are ASCII: one regex.
 */
export function utf8Length(s: string): number {
  if (!NON_ASCII.test(s)) return s.length;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** A transaction etcd refused as too large although it fit our budget. */
export function tooLargeTxn(p: Pending, limitFlag: string): string {
  let big = "";
  let most = -1;
  for (const [key, op] of p.ops) if (op.bytes > most) [big, most] = [key, op.bytes];
  return `etcd refused a ${p.bytes}-byte transaction as too large (largest op: key ${big}, ` +
    `${most} bytes): set ${limitFlag} below etcd's --max-request-bytes`;
}
