/**
 * The hand-off between a streaming driver and the sink: a bounded queue of batches that
 * one consumer applies in order (src/etcd/chain.ts keeps their order in etcd), confirming each
 * committed position back to the driver. Producers wait when the queue is full, which is
 * how a slow etcd slows the source down.
 */
import type { ChangeBatch, Position } from "../core/change.ts";
import type { SavedState } from "../core/source.ts";
import type { Sink } from "../core/sink.ts";
import type { SnapshotProgress } from "../core/snapshot_types.ts";

export interface PipelineOptions {
  /** Changes queued before producers wait. */
  maxQueuedChanges?: number;
  /** Changes handed to the sink in one go (several etcd transactions at most). */
  maxApplyChanges?: number;
  onCommitted: (position: Position, batches: readonly ChangeBatch[]) => void;
}

/** Someone waiting until `at` batches are applied. */
interface Settler {
  at: number;
  done: () => void;
}

export class Pipeline {
  readonly #sink: Sink;
  readonly #stateAt: (p: Position, s?: SnapshotProgress) => SavedState;
  readonly #opts: Required<PipelineOptions>;
  #queue: ChangeBatch[] = [];
  #queued = 0;
  #closed = false;
  #failure: unknown;
  #wakeConsumer?: () => void;
  #wakeProducers: (() => void)[] = [];
  /** Batches queued and applied so far, and who waits for a count to be applied. */
  #pushed = 0;
  #applied = 0;
  #settlers: Settler[] = [];

  constructor(
    sink: Sink,
    stateAt: (p: Position, s?: SnapshotProgress) => SavedState,
    opts: PipelineOptions,
  ) {
    this.#sink = sink;
    this.#stateAt = stateAt;
    // Small enough that what waits stays in V8's young generation (measured: less CPU per
    // change than 20,000/5,000, BENCHMARKS.md section 7); a big transaction's 1,000-change
    // chunk still fits twice.
    this.#opts = { maxQueuedChanges: 2_000, maxApplyChanges: 1_000, ...opts };
  }

  /** Queue a batch; resolves once there is room for more. Rejects after a sink failure. */
  push = async (batch: ChangeBatch): Promise<void> => {
    if (this.#failure) throw this.#failure;
    if (this.#closed) throw new Error("pipeline closed");
    this.#queue.push(batch);
    this.#pushed++;
    this.#queued += batch.changes.length;
    this.#wakeConsumer?.();
    while (this.#queued > this.#opts.maxQueuedChanges && !this.#failure && !this.#closed) {
      await new Promise<void>((r) => this.#wakeProducers.push(r));
    }
    if (this.#failure) throw this.#failure;
  };

  /** No more batches: `run` returns once the queue is drained. */
  close(): void {
    this.#closed = true;
    this.#wakeConsumer?.();
  }

  /** Changes waiting to be applied. */
  get backlog(): number {
    return this.#queued;
  }

  /** Apply queued batches until closed and drained; rethrows the sink's failure. */
  async run(): Promise<void> {
    try {
      for (;;) {
        if (this.#queue.length === 0) {
          if (this.#closed) return;
          await new Promise<void>((r) => (this.#wakeConsumer = r));
          this.#wakeConsumer = undefined;
          continue;
        }
        // Take whole batches: the sink groups them into as few transactions as fit.
        let n = 0;
        let changes = 0;
        while (n < this.#queue.length && (n === 0 || changes < this.#opts.maxApplyChanges)) {
          changes += this.#queue[n++].changes.length;
        }
        const take = this.#queue.slice(0, n);
        const committed = await this.#sink.apply(take, this.#stateAt);
        this.#queue = this.#queue.slice(n);
        this.#queued -= changes;
        this.#applied += n;
        this.#releaseSettlers();
        this.#releaseProducers();
        if (committed) this.#opts.onCommitted(committed, take);
      }
    } catch (e) {
      this.#failure = e;
      this.#releaseProducers();
      this.#releaseSettlers(true);
      throw e;
    }
  }

  /** Resolves once every batch queued before the call is applied (or the pipeline failed). */
  settled(): Promise<void> {
    const at = this.#pushed;
    if (this.#applied >= at || this.#failure) return Promise.resolve();
    return new Promise((done) => this.#settlers.push({ at, done }));
  }

  #releaseSettlers(all = false): void {
    const keep: Settler[] = [];
    for (const s of this.#settlers) all || s.at <= this.#applied ? s.done() : keep.push(s);
    this.#settlers = keep;
  }

  #releaseProducers(): void {
    const w = this.#wakeProducers;
    this.#wakeProducers = [];
    for (const r of w) r();
  }
}
