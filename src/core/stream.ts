/**
 * What every driver does with the changes it decodes, written once (design: Ordering and
 * atomicity): source transactions handed on in commit order, a large one in chunks with
 * the position only on its last, an idle source's position moved on, a key change as put
 * then delete, and a stop for a resync recorded in the position first.
 */
import type { Cell, Change, ChangeBatch, Position } from "./change.ts";
import type { Log, LogFields } from "./log.ts";
import { type BatchOutput, ResyncNeeded } from "./source.ts";

/** Changes of one source transaction held before they are passed on as a chunk. */
export const TXN_CHUNK = 1000;
/** Rows per batch handed to the sink during a dump. */
export const DUMP_BATCH = 500;

export class ChangeStream {
  readonly #out: BatchOutput;
  readonly #chunk: number;
  #txn: Change[] | null = null;

  constructor(out: BatchOutput, chunk = TXN_CHUNK) {
    this.#out = out;
    this.#chunk = chunk;
  }

  /** True while a source transaction is open (begun, not yet committed). */
  get open(): boolean {
    return this.#txn !== null;
  }

  /** A source transaction begins (changes outside one open it implicitly). */
  begin(): void {
    this.#txn = [];
  }

  put(table: string, key: string, columns: readonly string[], cells: readonly Cell[]): void {
    this.#changes().push({ op: "put", table, key, columns, cells });
  }

  delete(table: string, key: string): void {
    this.#changes().push({ op: "delete", table, key });
  }

  truncate(table: string): void {
    this.#changes().push({ op: "truncate", table });
  }

  /**
   * An update that moved a row to another key: the new row first (its unchanged values
   * come from the old key), then the old key goes.
   */
  move(
    table: string,
    oldKey: string,
    key: string,
    columns: readonly string[],
    cells: readonly Cell[],
  ): void {
    const txn = this.#changes();
    txn.push({ op: "put", table, key, columns, cells, fillFrom: oldKey });
    txn.push({ op: "delete", table, key: oldKey });
  }

  /** The open transaction holds a chunk's worth: `settle` passes it on. */
  get full(): boolean {
    return this.#txn !== null && this.#txn.length >= this.#chunk;
  }

  /** Pass a large transaction on in chunks; call after each decoded message. */
  async settle(): Promise<void> {
    if (this.#txn === null || this.#txn.length < this.#chunk) return;
    const chunk = this.#txn;
    this.#txn = [];
    await this.#out({ changes: chunk });
  }

  /**
   * The open transaction (or none: an empty one) committed at `position`. With `resync`,
   * the position is saved with that mark and the stream stops for a new snapshot: a crash
   * in between still snapshots, since the mark is in etcd.
   */
  async commit(position: Position, time?: Date, resync?: string): Promise<void> {
    const changes = this.#txn ?? [];
    this.#txn = null;
    const at = resync ? resyncAt(position, resync) : position;
    await this.#out({ changes, commit: time ? { position: at, time } : { position: at } });
    if (resync) throw resyncNeeded(resync);
  }

  /**
   * The open transaction (or none) committed at `position`, and `tables` changed in ways
   * the stream cannot express: they are snapshotted again from here (online when the
   * service runs snapshots, else by a full dump after this commit); `also` holds tables
   * (see ChangeBatch.hold) or says which ones are gone.
   */
  async commitResnapshot(
    position: Position,
    time: Date | undefined,
    tables: string[],
    also?: Pick<ChangeBatch, "hold" | "gone">,
  ) {
    const changes = this.#txn ?? [];
    this.#txn = null;
    const commit = time ? { position, time } : { position };
    await this.#out({ changes, commit, resnapshot: tables, ...also });
  }

  /**
   * The source is idle at `position`: move the saved position with it, so the source can
   * release its log. Ignored inside a transaction. Not a transaction (no commit time).
   */
  async heartbeat(position: Position): Promise<boolean> {
    if (this.#txn !== null) return false;
    await this.#out({ changes: [], commit: { position } });
    return true;
  }

  #changes(): Change[] {
    return this.#txn ??= [];
  }
}

/** `position` marked for a resync of `table`: saved so, a crash before the dump still dumps. */
export function resyncAt(position: Position, table: string): Position {
  return { ...position, resync: table };
}

/** The stop that starts the dump a resync mark asks for. */
export function resyncNeeded(table: string): ResyncNeeded {
  return new ResyncNeeded(`table ${table} was altered; dumping again`);
}

/** A dump's rows handed to the sink in batches (no commits: a dump has no position). */
export class DumpBatches {
  readonly #out: BatchOutput;
  readonly #size: number;
  readonly #signal?: AbortSignal;
  #batch: Change[] = [];

  constructor(out: BatchOutput, signal?: AbortSignal, size = DUMP_BATCH) {
    this.#out = out;
    this.#signal = signal;
    this.#size = size;
  }

  /** Add one row; resolves at once unless a batch went out (then once the sink has room). */
  put(table: string, key: string, columns: readonly string[], cells: readonly Cell[]) {
    this.#batch.push({ op: "put", table, key, columns, cells });
    if (this.#batch.length < this.#size) return undefined;
    if (this.#signal?.aborted) throw new Error("dump aborted");
    return this.flush();
  }

  async flush(): Promise<void> {
    if (!this.#batch.length) return;
    const b = this.#batch;
    this.#batch = [];
    await this.#out({ changes: b });
  }
}

/** The warning about tables without a key, given once per table and process run. */
export class KeylessWarning {
  readonly #warned = new Set<string>();
  readonly #log: Log;

  constructor(log: Log) {
    this.#log = log;
  }

  warn(tables: readonly string[], fields?: LogFields): void {
    const fresh = tables.filter((t) => !this.#warned.has(t));
    if (!fresh.length) return;
    for (const t of fresh) this.#warned.add(t);
    this.#log.warn("tables without a primary key are not replicated", {
      tables: fresh.join(","),
      ...fields,
    });
  }
}
