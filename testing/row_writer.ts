/**
 * A seeded writer for tests that race a table `(id int PRIMARY KEY, v text, ...)`: small
 * transactions of UPDATEs, DELETEs and INSERTs, one after another, on a fixed subset of ids
 * only (`ownsId`), so a test knows exactly which keys no one but sync ever wrote. The SQL is
 * the same for PostgreSQL and MariaDB; the test runs each transaction its own way.
 */
import { step } from "./steps.ts";

/** A deterministic PRNG (mulberry32): the same seed gives the same numbers. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RowWriterOptions {
  /** Runs these statements in one transaction. */
  txn: (statements: string[]) => Promise<unknown>;
  /** The table as the SQL names it (`big`, `app.big`). */
  table: string;
  /** Ids 1..rows exist when the writer starts. */
  rows: number;
  /** Every `stride`-th id is the writer's (default 10); it also inserts up to 1.0333 × rows. */
  stride?: number;
  rand: () => number;
  /** Pause between transactions, ms (default 15 to 35). */
  pauseMs?: [number, number];
}

export class RowWriter {
  readonly #o: RowWriterOptions;
  readonly #stride: number;
  readonly #maxId: number;
  /** The writer's ids that exist now. */
  readonly #present = new Set<number>();
  /** Every id a statement of the writer named (added before the statement is sent). */
  readonly touched = new Set<number>();
  readonly counts = { txns: 0, update: 0, insert: 0, delete: 0 };
  #stopped = false;
  #loop?: Promise<void>;
  /** What a transaction failed with (the writer stops there). */
  error?: unknown;

  constructor(o: RowWriterOptions) {
    this.#o = o;
    this.#stride = o.stride ?? 10;
    this.#maxId = Math.ceil((o.rows * 1.0333) / this.#stride) * this.#stride;
    for (let id = this.#stride; id <= o.rows; id += this.#stride) this.#present.add(id);
  }

  /** True for the ids this writer may change; no other row is ever written by it. */
  ownsId(id: number): boolean {
    return id % this.#stride === 0;
  }

  /** One statement on `id` (now touched); keeps the set of ids that exist up to date. */
  statement(id: number, n: number): string {
    this.touched.add(id);
    const t = this.#o.table;
    if (!this.#present.has(id)) {
      this.#present.add(id);
      this.counts.insert++;
      return `INSERT INTO ${t} (id, v) VALUES (${id}, 'ins ${n}')`;
    }
    if (this.#o.rand() < 0.75) {
      this.counts.update++;
      return `UPDATE ${t} SET v = 'upd ${n}' WHERE id = ${id}`;
    }
    this.#present.delete(id);
    this.counts.delete++;
    return `DELETE FROM ${t} WHERE id = ${id}`;
  }

  start(): void {
    const r = this.#o.rand;
    const [lo, hi] = this.#o.pauseMs ?? [15, 35];
    step(`writer on ${this.#o.table} started`);
    this.#loop = (async () => {
      let n = 0;
      while (!this.#stopped) {
        const stmts: string[] = [];
        const ids = new Set<number>();
        for (let i = 1 + Math.floor(r() * 3); i > 0; i--) {
          const id = this.#stride * (1 + Math.floor(r() * (this.#maxId / this.#stride)));
          if (ids.has(id)) continue; // one statement per id and transaction
          ids.add(id);
          stmts.push(this.statement(id, ++n));
        }
        await this.#o.txn(stmts);
        this.counts.txns++;
        await new Promise((res) => setTimeout(res, lo + r() * (hi - lo)));
      }
    })().catch((e) => {
      this.error = e;
    });
  }

  /** Stop after the transaction under way; throws what a transaction failed with. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    if (this.error) throw new Error(`the writer failed: ${this.error}`);
    const c = this.counts;
    step(
      `writer stopped: ${c.txns} txns, ${c.update} updates, ${c.insert} inserts, ` +
        `${c.delete} deletes`,
    );
  }
}
