/**
 * Turns ordered change batches into etcd transactions (design: Ordering and atomicity).
 *
 * - The state key rides in the same transaction as the changes it covers.
 * - Consecutive small source transactions share one etcd transaction (group commit).
 * - A transaction too big for one etcd transaction is applied in ordered chunks; the state
 *   key moves only with the chunk that completes it.
 * - Operations on the same key are merged first (etcd rejects a key twice in a txn).
 */
import type { Change, ChangeBatch, Position } from "../core/change.ts";
import { UNCHANGED } from "../core/change.ts";
import { renderRow } from "../core/json.ts";
import type { Log } from "../core/log.ts";
import { silentLog } from "../core/log.ts";
import { ConfigError, type SavedState } from "../core/source.ts";
import { setting } from "../core/errors.ts";
import type { SnapshotProgress } from "../core/snapshot_types.ts";
import { FencedError, StateKeys, StateMovedError } from "./state.ts";
import { addOp, Budget, dropRange, newPending, type Pending, TablePrefixes } from "./pending.ts";
import { tooLargeTxn, txnOps, utf8Bound } from "./pending.ts";
import { Chain, InFlight, Superseded } from "./chain.ts";
import type { SinkOptions, TxnInfo } from "./sink_options.ts";
import { staleKeys } from "./sweep.ts";
import { fillUnchanged } from "./fill.ts";
import { OversizeError, type Sink } from "../core/sink.ts";
import { type EtcdClient, EtcdError, opSize, prefixEnd, type TxnCompare } from "./client.ts";

/** etcd's default --max-request-bytes is 1.5 MiB; keep room for framing. */
export const DEFAULT_MAX_TXN_BYTES = 1536 * 1024 - 32 * 1024;

export type { SinkOptions, TxnInfo };
export { FencedError, OversizeError, StateMovedError };

/**
 * What a transaction is fenced by (docs/topologies.md, "Late writes"): `dump`, the dump
 * marker (dump rows and sweeps, written alongside the dump's states); `part`, the state
 * key (writes beside the sequence of state writes: snapshot parts, running at once);
 * `seq`, the state key, moved by the transaction itself (it carries the state, or the
 * state put again unchanged when it carries part of a source transaction).
 */
type Fenced = "dump" | "part" | "seq";

/**
 * Dump transactions in flight at once. A dump's rows are independent (no state key rides
 * with them), and etcd takes concurrent transactions on one connection faster than one at
 * a time (measured: BENCHMARKS.md, section 1).
 */
const DUMP_IN_FLIGHT = 4;

export class EtcdSink implements Sink {
  readonly client: EtcdClient;
  readonly #prefix: string;
  readonly #state: StateKeys;
  readonly #maxOps: number;
  readonly #maxBytes: number;
  readonly #oversize: "fail" | "skip";
  readonly #log: Log;
  readonly #fence?: () => TxnCompare[];
  readonly #onTxn?: (info: TxnInfo) => void;
  readonly #onOversize?: (table: string, key: string, bytes: number) => void;
  readonly #dumps = new InFlight(DUMP_IN_FLIGHT);
  /** The last batch applied left a source transaction open (its next chunk follows). */
  #midTxn = false;
  readonly #budget: Budget;
  readonly #keys: TablePrefixes;

  constructor(client: EtcdClient, opts: SinkOptions) {
    this.client = client;
    this.#prefix = opts.prefix;
    this.#state = new StateKeys(opts.stateKey);
    this.#maxOps = opts.maxTxnOps ?? 128;
    this.#maxBytes = opts.maxTxnBytes ?? DEFAULT_MAX_TXN_BYTES;
    this.#oversize = opts.oversize ?? "fail";
    this.#log = opts.log ?? silentLog;
    this.#fence = opts.fence;
    this.#onTxn = opts.onTxn;
    this.#onOversize = opts.onOversize;
    if (this.#maxOps < 2) throw new Error(`${setting("etcdMaxTxnOps")} must be at least 2`);
    this.#budget = new Budget(this.#maxOps, this.#maxBytes, this.#prefix);
    this.#keys = new TablePrefixes(this.#prefix);
  }

  get stateKey(): string {
    return this.#state.key;
  }

  /** The state key and the keys beside it. */
  get keys(): StateKeys {
    return this.#state;
  }

  /** The saved state, or null when there is none (or it is unreadable). */
  readState(): Promise<SavedState | null> {
    // An attempt starts at a source transaction's start.
    this.#midTxn = false;
    return this.#state.read(this.client, this.#log);
  }

  /** Write the state on its own (after a dump's sweep). */
  async writeState(state: SavedState): Promise<void> {
    await this.#commit(newPending(), state);
  }

  /**
   * Begin a dump: forget the old position (a crash mid-dump must lead to a new dump, not a
   * resume) and return the revision the sweep compares against.
   */
  startDump(): Promise<number> {
    this.#state.forget();
    return this.#state.startDump(this.client, this.#fence?.() ?? []);
  }

  /**
   * Write dump rows (puts only, no state); safe to call concurrently for disjoint keys.
   * Returns once its transactions are sent: `settleDump()` waits for them and reports the
   * first failure (a failure also surfaces at a later `writeDump`).
   */
  async writeDump(batch: ChangeBatch): Promise<void> {
    let p = newPending();
    for (const c of batch.changes) {
      if (c.op !== "put") continue;
      const key = this.#keys.of(c.table) + c.key;
      const value = renderRow(c.columns, c.cells);
      const bytes = opSize(key, utf8Bound(value));
      if (this.#tooBig(c.table, c.key, bytes, 0)) continue;
      if (!this.#budget.fits(p, key, bytes, 0)) {
        const txn = p;
        await this.#dumps.add(() => this.#commit(txn, null, "dump"));
        p = newPending();
      }
      addOp(p, key, value, bytes);
    }
    if (p.ops.size) await this.#dumps.add(() => this.#commit(p, null, "dump"));
  }

  /**
   * Wait until no dump transaction is in flight; throw the first that failed. Called after
   * a dump, and after a failed one too: a transaction landing after the next dump started
   * would look written by that dump, and its sweep would keep a row deleted meanwhile.
   */
  settleDump(): Promise<void> {
    return this.#dumps.settle();
  }

  /**
   * Delete keys the dump did not write (mod revision not after the dump's start) under the
   * dumped tables, and under any other table `owns` claims (one that no longer exists).
   */
  async sweep(
    tables: readonly string[],
    startRevision: number,
    owns?: (table: string) => boolean,
  ): Promise<number> {
    const stale = await staleKeys(this.client, this.#prefix, tables, startRevision, owns);
    let p = newPending();
    for (const key of stale) {
      if (!this.#budget.fits(p, key, opSize(key, 0), 0)) {
        await this.#commit(p, null, "dump");
        p = newPending();
      }
      addOp(p, key, null, opSize(key, 0));
    }
    if (p.ops.size) await this.#commit(p, null, "dump");
    return stale.length;
  }

  /**
   * Apply streamed batches in order. Returns the position of the last source transaction
   * whose changes and state are now committed (undefined when none completed).
   */
  async apply(
    batches: readonly ChangeBatch[],
    stateAt: (position: Position, snapshot?: SnapshotProgress) => SavedState,
  ): Promise<Position | undefined> {
    if (this.#state.dumpOpen) {
      const t0 = performance.now();
      await this.#state.closeDump(this.client, this.#fence?.() ?? []);
      // An etcd transaction like the others: the metrics count every revision sync makes.
      const seconds = (performance.now() - t0) / 1000;
      this.#onTxn?.({ ops: 1, bytes: 0, seconds, withState: false });
    }
    let p = newPending();
    let pending: ChangeBatch["commit"];
    let committed: Position | undefined;
    const stateOf = (c: NonNullable<ChangeBatch["commit"]>) => stateAt(c.position, c.snapshot);
    const stateBytes = (c: ChangeBatch["commit"]) =>
      this.#state.ops(c ? stateOf(c) : stateAt({})).bytes + 64;
    // Reserve room for the state key in every transaction.
    let reserve = stateBytes(batches[batches.length - 1]?.commit);
    let progress = batches[batches.length - 1]?.commit?.snapshot;
    await this.#state.known(this.client);
    const serial = new Chain();
    const flush = async () => {
      const [txn, commit] = [p, pending];
      [p, pending] = [newPending(), undefined];
      await serial.next(async (prev) => {
        await this.#commit(txn, commit ? stateOf(commit) : null, "seq", prev);
        if (commit) committed = commit.position;
      });
    };
    // A snapshot chunk's rows are independent of each other and of the stream's (design:
    // Snapshots): its parts without the state go several at once, all landed before the
    // next batch.
    const parts = new InFlight(DUMP_IN_FLIGHT);
    const flushPart = async () => {
      await serial.landed();
      const txn = p;
      p = newPending();
      await parts.add(() => this.#commit(txn, null));
    };
    // A TOAST fill reads etcd: only once what was sent before it has landed.
    const landed = () => serial.landed();
    try {
      for (const batch of batches) {
        // A source transaction that fits in an etcd transaction of its own is never split
        // (design: Ordering and atomicity): start a new one when this one has too little room.
        const whole = batch.commit && !this.#midTxn;
        if (
          whole && (p.ops.size || p.ranges.length) && !this.#budget.fitsWhole(p, batch, reserve)
        ) {
          if (this.#budget.fitsWhole(newPending(), batch, reserve)) await flush();
        }
        const chunk = batch.fromSnapshot && !pending && !p.ops.size && !p.ranges.length;
        for (const c of batch.changes) {
          if (this.#addNow(p, c, reserve)) continue;
          await this.#addChange(p, c, reserve, chunk ? flushPart : flush, () => p, landed);
        }
        await parts.settle();
        this.#midTxn = !batch.commit;
        if (batch.commit) {
          pending = batch.commit;
          // Positions grow little and the last batch's was counted: only new progress.
          if (pending.snapshot !== progress) {
            progress = pending.snapshot;
            reserve = Math.max(reserve, stateBytes(pending));
          }
        }
      }
      if (p.ops.size || p.ranges.length || pending) await flush();
      await serial.landed();
    } finally {
      await serial.idle();
      this.#state.settled();
    }
    return committed;
  }

  /**
   * Add a plain put or delete that fits in `p` as it is, with nothing to wait for (most
   * changes); false leaves it to `#addChange`.
   */
  #addNow(p: Pending, c: Change, reserve: number): boolean {
    if (c.op === "truncate" || p.ranges.length) return false;
    if (c.op === "put" && c.cells.includes(UNCHANGED)) return false;
    const key = this.#keys.of(c.table) + c.key;
    const value = c.op === "put" ? c.json ?? renderRow(c.columns, c.cells) : null;
    const bytes = opSize(key, value === null ? 0 : utf8Bound(value));
    if (bytes + reserve > this.#maxBytes || !this.#budget.fits(p, key, bytes, reserve)) {
      return false;
    }
    addOp(p, key, value, bytes);
    return true;
  }

  async #addChange(
    start: Pending,
    c: Change,
    reserve: number,
    flush: () => Promise<void>,
    current: () => Pending,
    landed: () => Promise<void>,
  ): Promise<void> {
    let p = start;
    if (c.op === "truncate") {
      const s = this.#keys.of(c.table);
      dropRange(p, s, prefixEnd(s));
      if (!this.#budget.fits(p, s, opSize(s, s.length), reserve)) {
        await flush();
        p = current();
      }
      p.ranges.push({ start: s, end: prefixEnd(s) });
      p.bytes += opSize(s, s.length);
      return;
    }
    const key = this.#keys.of(c.table) + c.key;
    let value: string | null = null;
    if (c.op === "put") {
      if (c.cells.includes(UNCHANGED)) await landed();
      value = c.cells.includes(UNCHANGED)
        ? await fillUnchanged(
          this.client,
          this.#log,
          p,
          c.fillFrom === undefined ? [key] : [this.#keys.of(c.table) + c.fillFrom, key],
          c.columns,
          c.cells,
          c.table,
        )
        : c.json ?? renderRow(c.columns, c.cells);
    }
    const bytes = opSize(key, value === null ? 0 : utf8Bound(value));
    if (value !== null && this.#tooBig(c.table, c.key, bytes, reserve)) return;
    // A key inside a range truncated in this txn would overlap it: etcd rejects that.
    const overlaps = p.ranges.some((r) => key >= r.start && key < r.end);
    if (overlaps || !this.#budget.fits(p, key, bytes, reserve)) {
      await flush();
      p = current();
    }
    addOp(p, key, value, bytes);
  }

  #tooBig(table: string, key: string, bytes: number, reserve: number): boolean {
    if (bytes + reserve <= this.#maxBytes) return false;
    if (this.#oversize === "skip") {
      this.#log.warn("row too large for etcd; skipped", { table, key, bytes });
      this.#onOversize?.(table, key, bytes);
      return true;
    }
    throw new OversizeError(
      `row too large for etcd: table ${table} key ${key} needs ${bytes} bytes, over the ` +
        `${this.#maxBytes}-byte request limit; raise etcd's --max-request-bytes and ` +
        `${setting("etcdMaxTxnBytes")}, or run with ${setting("oversize", "skip")}`,
    );
  }

  /**
   * Send `p` with `state`. A stream transaction (`seq`) gets its predecessor's outcome
   * (`prev`): it is sent at once when its compares can order it after the predecessor
   * (chain.ts), else once the predecessor landed.
   */
  async #commit(
    p: Pending,
    state: SavedState | null,
    how: Fenced = "part",
    prev?: Promise<boolean>,
  ): Promise<void> {
    // Read before any await: the transactions sent before this one decide it.
    const chain = how === "seq" ? this.#state.chain() : undefined;
    if (prev && !chain && !(await prev)) throw new Superseded();
    const success = txnOps(p);
    let put: string | undefined;
    const fence = this.#fence?.() ?? [];
    const leader = fence.find((c) => c.target === "CREATE")?.key;
    if (state) {
      const s = this.#state.ops(state, leader);
      // Definitions that grew past the room kept for them: the changes go first, and the
      // state follows alone, as after the chunks of a large transaction.
      if (
        success.length && (success.length + s.ops.length > this.#maxOps ||
          p.bytes + s.bytes > this.#maxBytes)
      ) {
        if (prev && !(await prev)) throw new Superseded();
        await this.#commit(p, null);
        return this.#commit(newPending(), state);
      }
      success.push(...s.ops);
      put = s.value;
    }
    if (success.length === 0) return;
    await this.#state.known(this.client);
    if (!state && how === "seq") {
      const touch = this.#state.touch(leader);
      success.push(...touch);
      if (touch.length) put = (touch[0] as { put: { value: string } }).put.value;
    }
    const compare = [
      ...fence,
      ...(chain ?? [how === "dump" ? this.#state.dumpFence() : this.#state.stateFence()]),
    ];
    if (how === "seq") this.#state.sending(put);
    const t0 = performance.now();
    const send = () =>
      this.client.txn({ compare, success, failure: this.#state.failureReads() }).catch((e) => {
        if (!(e instanceof EtcdError && e.tooLarge)) throw e;
        // Our budget is above etcd's --max-request-bytes: no retry can fix that.
        throw new ConfigError(tooLargeTxn(p, setting("etcdMaxTxnBytes")));
      });
    let r = await send();
    if (prev && chain) {
      // Overtaken (refused, nothing written): sent again once the predecessor landed, and
      // the next one waits for it, or the two would race again.
      if (!r.succeeded) this.#state.settled();
      if (!(await prev)) throw new Superseded();
      if (!r.succeeded) r = await send();
    }
    this.#state.refused(r, how === "dump");
    if (put !== undefined) this.#state.wrote(r.revision, put);
    if (state) this.#state.committed(state);
    this.#onTxn?.({
      ops: success.length,
      bytes: p.bytes,
      seconds: (performance.now() - t0) / 1000,
      withState: state !== null,
    });
  }
}
