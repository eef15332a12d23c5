/**
 * Online snapshots (design: Snapshots): a table is read in key-ordered chunks while the
 * stream goes on. Each chunk is written between two source transactions of the stream,
 * without the rows the stream touched since the table's snapshot began (the stream's
 * values win), without rows equal to what etcd holds, and with the cursor in the same
 * write. docs/snapshots.md argues why etcd ends exact.
 */
import type { Change, ChangeBatch, Position } from "./change.ts";
import { type Job, newJob } from "./snapshot_job.ts";
import { renderRow } from "./json.ts";
import type { Log } from "./log.ts";
import type {
  ChunkSource,
  SnapshotProgress,
  SnapshotRow,
  SnapshotStore,
  TableSnapshot,
} from "./snapshot_types.ts";
import { KeyChangedError, UnpageableTableError } from "./snapshot_types.ts";

export interface SnapshotEvents {
  /** A table's snapshot starts (or resumes) reading in this process. */
  begin?(table: string): void;
  chunk?(table: string, read: number, written: number): void;
  done?(table: string, rows: number, swept: number): void;
  /** It stops reading: done, ended (held, gone) or stopped with the attempt. */
  end?(table: string): void;
}

export interface SnapshotSettings {
  store: SnapshotStore;
  chunkRows: number;
  parallel: number;
}

export interface SnapshotOptions extends SnapshotSettings {
  source: ChunkSource;
  /** The stream's way to the sink: chunks go the same way, so they land in its order. */
  push: (batch: ChangeBatch) => Promise<void>;
  /**
   * Resolves once everything pushed so far is in etcd: a table's first chunk compares with
   * etcd only then (a TRUNCATE still queued would delete rows found equal and skipped).
   */
  settled?: () => Promise<void>;
  log: Log;
  /** The snapshots the state holds (running ones go on from their cursor). */
  progress?: SnapshotProgress;
  events?: SnapshotEvents;
  /** A chunk read or etcd read failed: the attempt ends (and is retried). */
  onFailure?: (e: unknown) => void;
}

export class SnapshotEngine {
  readonly #o: SnapshotOptions;
  #progress: SnapshotProgress;
  readonly #jobs = new Map<string, Job>();
  readonly #queue: Job[] = [];
  #workers = 0;
  #pos?: Position;
  /** The stream's last batch ended a transaction: a chunk may go in here. */
  #between = true;
  /** Chains the stream's batches and the chunks, one at a time. */
  #tail: Promise<unknown> = Promise.resolve();
  #wake: (() => void)[] = [];
  #failure?: unknown;
  #stopped = false;

  constructor(o: SnapshotOptions) {
    this.#o = o;
    this.#progress = o.progress ?? {};
    for (const [table, s] of Object.entries(this.#progress)) {
      if (s.state !== "running") continue;
      this.#enqueue({ ...newJob(table, s.after, s.rows, s.started), requests: s.requests });
    }
  }

  /** Every table's snapshot now (a new object after each change). */
  get progress(): SnapshotProgress {
    return this.#progress;
  }

  /** The stream starts (or stands) at `p`, between transactions. */
  start(p: Position): void {
    this.#pos = p;
    this.#spawn();
  }

  /**
   * Snapshot `tables` again from this point of the stream on (`request`: the id of the
   * operator's request this answers, recorded with their progress). Returns the tables
   * taken (an operator's request for a held table is not).
   */
  request(tables: readonly string[], request?: string): string[] {
    const taken: string[] = [];
    for (const table of tables) {
      if (request !== undefined && this.#progress[table]?.state === "held") {
        // Its changes are not applied: a snapshot now would mark it done, and stale.
        this.#o.log.warn("snapshot request ignored: table held", { table });
        continue;
      }
      taken.push(table);
      const old = this.#jobs.get(table);
      if (old) {
        if (request !== undefined) old.requests = [...old.requests ?? [], request];
        this.#reset(old);
        continue;
      }
      const requests = request === undefined ? undefined : [request];
      this.#enqueue({ ...newJob(table, null, 0, new Date().toISOString()), requests });
    }
    this.#spawn();
    return taken;
  }

  /** One batch of the stream, in order: noted, stamped with the progress, pushed on. */
  take(batch: ChangeBatch): Promise<void> {
    return this.#locked(async () => {
      if (this.#failure) throw this.#failure;
      this.#observe(batch);
      if (!batch.commit) {
        this.#between = false;
        return await this.#o.push(batch);
      }
      await this.#o.push({ ...batch, commit: { ...batch.commit, snapshot: this.#progress } });
      this.#pos = batch.commit.position;
      this.#between = true;
      const wake = this.#wake;
      this.#wake = [];
      for (const w of wake) w();
    });
  }

  #observe(batch: ChangeBatch): void {
    for (const c of batch.changes) {
      if (c.op === "truncate") {
        const job = this.#jobs.get(c.table);
        if (job) this.#reset(job);
        continue;
      }
      this.#jobs.get(c.table)?.touched.add(c);
    }
    const since = batch.hold?.length ? new Date().toISOString() : "";
    for (const { table, why } of batch.hold ?? []) this.#end(table, { state: "held", why, since });
    for (const table of batch.gone ?? []) this.#end(table, undefined);
    if (batch.resnapshot?.length) this.request(batch.resnapshot);
  }

  /** The table's snapshot ends where it stands (held, or gone: `s` undefined). */
  #end(table: string, s: TableSnapshot | undefined): void {
    const job = this.#jobs.get(table);
    if (job) {
      job.ended = true;
      job.gen++;
      this.#jobs.delete(table);
      const i = this.#queue.indexOf(job);
      if (i >= 0) this.#queue.splice(i, 1);
    }
    this.#set(table, s);
  }

  #locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn);
    this.#tail = run.catch(() => {});
    return run;
  }

  /** The attempt ends: no more reads or writes. */
  stop(): void {
    this.#stopped = true;
    const wake = this.#wake;
    this.#wake = [];
    for (const w of wake) w();
    this.#o.source.close();
  }

  #enqueue(job: Job): void {
    this.#jobs.set(job.table, job);
    this.#queue.push(job);
    this.#set(job.table, this.#running(job, job.replayTo));
  }

  #reset(job: Job): void {
    job.gen++;
    job.after = null;
    job.replayTo = null;
    job.rows = 0;
    job.seen.clear();
    job.touched.clear();
    this.#set(job.table, this.#running(job));
  }

  #running(job: Job, after = job.after): TableSnapshot {
    const { rows, started, requests } = job;
    return { state: "running", after, rows, started, requests };
  }

  #set(table: string, s: TableSnapshot | undefined): void {
    const next = { ...this.#progress };
    if (s) next[table] = s;
    else delete next[table];
    this.#progress = next;
  }

  #spawn(): void {
    if (this.#pos === undefined) return;
    while (this.#workers < this.#o.parallel && this.#queue.length && !this.#stopped) {
      const job = this.#queue.shift()!;
      this.#workers++;
      this.#work(job).catch((e) => {
        if (this.#stopped || this.#failure) return;
        this.#failure = e;
        this.#o.onFailure?.(e);
      }).finally(() => {
        this.#workers--;
        this.#spawn();
      });
    }
  }

  async #work(job: Job): Promise<void> {
    this.#o.events?.begin?.(job.table);
    try {
      await this.#read(job);
    } finally {
      this.#o.events?.end?.(job.table);
    }
  }

  async #read(job: Job): Promise<void> {
    const t0 = Date.now();
    for (;;) {
      if (this.#stopped || job.ended) return;
      const gen = job.gen;
      let rows;
      try {
        rows = await this.#next(job);
      } catch (e) {
        if (!(e instanceof KeyChangedError)) throw e;
        this.#o.log.info("snapshot starts over: the key columns changed", { table: job.table });
        this.#reset(job);
        continue;
      }
      if (rows === null) return this.#vanished(job);
      if (!(await this.#writeChunk(job, gen, rows))) continue;
      const last = job.whole || rows.length < this.#o.chunkRows;
      if (last && (await this.#sweep(job, gen))) break;
    }
    this.#o.log.info("snapshot done", {
      table: job.table,
      rows: job.rows,
      seconds: Math.round((Date.now() - t0) / 100) / 10,
    });
    this.#forget(job);
  }

  #forget(job: Job): void {
    if (this.#jobs.get(job.table) === job) this.#jobs.delete(job.table);
  }

  /** The next chunk after the job's cursor, or every row when its key may repeat. */
  async #next(job: Job): Promise<SnapshotRow[] | null> {
    try {
      if (!job.whole) {
        if (job.replayTo !== null && !(await this.#replay(job))) return null;
        return await this.#o.source.read(job.table, job.after, this.#o.chunkRows);
      }
    } catch (e) {
      if (!(e instanceof UnpageableTableError)) throw e;
      // Pages of a key that repeats would skip rows (and the sweep delete their keys).
      this.#o.log.warn("table read whole: no unique index covers its configured key columns", {
        table: job.table,
      });
      job.whole = true;
      job.after = null;
      job.replayTo = null;
      job.rows = 0;
    }
    return await this.#o.source.read(job.table, null, Infinity);
  }

  /** Read the rows written before a restart again, to know them at the sweep. */
  async #replay(job: Job): Promise<boolean> {
    const until = job.replayTo!;
    const gen = job.gen;
    let after: readonly string[] | null = null;
    for (;;) {
      const rows = await this.#o.source.read(job.table, after, this.#o.chunkRows, until);
      // Started over meanwhile (a table changed while sync was stopped): nothing to replay.
      if (job.gen !== gen) return true;
      if (rows === null) return false;
      for (const r of rows) job.seen.add(r.key);
      if (rows.length < this.#o.chunkRows) break;
      after = rows[rows.length - 1].after;
    }
    job.after = until;
    job.replayTo = null;
    return true;
  }

  /** Write what differs of one chunk where the stream has passed its read. */
  async #writeChunk(job: Job, gen: number, rows: SnapshotRow[]): Promise<boolean> {
    if (job.settledGen !== gen) {
      await this.#o.settled?.();
      job.settledGen = gen;
    }
    // Rows sharing a key (a configured key without a unique index) are one etcd key: the
    // last one read wins, as in a source transaction that writes a key twice.
    const byKey = new Map<string, SnapshotRow>();
    for (const r of rows) byKey.set(r.key, r);
    const current = byKey.size
      ? await this.#o.store.current(job.table, [...byKey.keys()])
      : new Map<string, string>();
    const differ: Change[] = [];
    for (const r of byKey.values()) {
      const json = renderRow(r.columns, r.cells);
      if (current.get(r.key) === json) continue;
      const { key, columns, cells } = r;
      differ.push({ op: "put", table: job.table, key, columns, cells, json });
    }
    return await this.#emit(() => {
      if (job.gen !== gen) return null;
      const changes = differ.flatMap((c) => job.touched.chunkRow(c));
      for (const r of rows) job.seen.add(r.key);
      job.rows += rows.length;
      if (rows.length && !job.whole) job.after = rows[rows.length - 1].after;
      this.#set(job.table, this.#running(job));
      this.#o.events?.chunk?.(job.table, rows.length, changes.length);
      return { changes };
    });
  }

  /** Remove the table's keys that neither the snapshot nor the stream has seen. */
  async #sweep(job: Job, gen: number): Promise<boolean> {
    const keys = await this.#o.store.keys(job.table);
    return await this.#emit(() => {
      if (job.gen !== gen) return null;
      const changes: Change[] = [];
      for (const key of keys) {
        if (!job.seen.has(key) && !job.touched.has(key)) {
          changes.push({ op: "delete", table: job.table, key });
        }
      }
      const done = new Date().toISOString();
      this.#set(job.table, {
        state: "done",
        rows: job.rows,
        at: this.#pos!,
        done,
        requests: job.requests,
      });
      this.#o.events?.done?.(job.table, job.rows, changes.length);
      return { changes };
    });
  }

  /** The table is no longer replicated (dropped, renamed, deselected): its keys go. */
  async #vanished(job: Job): Promise<void> {
    await this.#emit(() => {
      if (job.ended) return null;
      this.#set(job.table, undefined);
      return { changes: [{ op: "truncate", table: job.table }] };
    });
    this.#forget(job);
  }

  /**
   * Write what `build` returns between two of the stream's transactions, with the state at
   * the stream's position; false when it returned nothing (the read was overtaken).
   */
  async #emit(build: () => ChangeBatch | null): Promise<boolean> {
    // One chunk queued at a time: the stream's transactions wait behind one chunk at most,
    // not behind all the chunks read ahead.
    await this.#o.settled?.();
    for (;;) {
      while (!this.#between && !this.#stopped) await new Promise<void>((r) => this.#wake.push(r));
      if (this.#stopped) throw new Error("snapshot stopped");
      const done = await this.#locked(async () => {
        if (!this.#between) return undefined;
        const batch = build();
        if (!batch) return false;
        const commit = { position: this.#pos!, snapshot: this.#progress };
        await this.#o.push({ ...batch, commit, fromSnapshot: true });
        return true;
      });
      if (done !== undefined) return done;
    }
  }
}
