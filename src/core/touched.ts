/**
 * The keys the stream changed in a table since its snapshot began (design: Snapshots): the
 * stream's values win over the chunks'. A PostgreSQL UPDATE may leave unchanged TOAST
 * columns out; for a row etcd did not hold yet those became null, and the row's chunk,
 * which has them, supplies them (the stream only leaves out columns it did not change).
 */
import { type Change, UNCHANGED } from "./change.ts";

export class Touched {
  readonly #keys = new Set<string>();
  /** Keys whose stream changes so far left columns out, with the columns they gave. */
  readonly #partial = new Map<string, Set<string>>();

  has(key: string): boolean {
    return this.#keys.has(key);
  }

  /** A stream change to the table. */
  add(c: Exclude<Change, { op: "truncate" }>): void {
    const partial = c.op === "put" && c.cells.includes(UNCHANGED);
    if (!partial) this.#partial.delete(c.key);
    else if (!this.#keys.has(c.key) || this.#partial.has(c.key)) {
      const known = this.#partial.get(c.key) ?? new Set<string>();
      c.columns.forEach((col, i) => c.cells[i] !== UNCHANGED && known.add(col));
      this.#partial.set(c.key, known);
    }
    this.#keys.add(c.key);
  }

  /**
   * What a chunk's differing row becomes: itself for a key the stream did not touch;
   * nothing when it did, except where the stream gave only some columns: then the row with
   * those columns unchanged, so etcd's value (the stream's) keeps them and the chunk gives
   * the rest.
   */
  chunkRow(c: Change): Change[] {
    if (c.op !== "put") return [];
    if (!this.#keys.has(c.key)) return [c];
    const known = this.#partial.get(c.key);
    if (!known) return [];
    this.#partial.delete(c.key);
    const cells = c.columns.map((col, i) => (known.has(col) ? UNCHANGED : c.cells[i]));
    return [{ op: "put", table: c.table, key: c.key, columns: c.columns, cells }];
  }

  clear(): void {
    this.#keys.clear();
    this.#partial.clear();
  }
}
