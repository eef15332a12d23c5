/** What the service is doing, for logs, health checks and metrics. */
import type { SnapshotProgress } from "../core/snapshot_types.ts";
import type { Position } from "../core/change.ts";
import { nameSettings } from "../core/errors.ts";
import { settingName } from "../config/typed.ts";

export type Phase = "starting" | "standby" | "dump" | "sync" | "retrying" | "stopped";

/** One point of the status page's chart. */
export interface Sample {
  /** Milliseconds since the epoch. */
  t: number;
  lagSeconds: number;
  /** Rows dumped plus changes streamed, since start (a rate comes from two samples). */
  writes: number;
}

/** How much history the status page's chart gets: ten minutes at one sample a second. */
export const HISTORY_MS = 10 * 60_000;

/** Upper bounds (seconds) of the etcd transaction latency histogram's buckets. */
export const TXN_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A Prometheus histogram: cumulative counts are derived when rendered. */
export class Histogram {
  /** Observations per bucket (not cumulative); the last entry is +Inf. */
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array(bounds.length + 1).fill(0);
  }

  observe(v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

/** The reasons the etcd client retries a request (etcd/errors.ts), all exported from 0. */
const ETCD_RETRY_REASONS = [
  "too_many_requests",
  "leader_changed",
  "no_leader",
  "timed_out",
  "learner",
  "unavailable",
  "connection",
];

export class Status {
  #phase: Phase = "starting";
  /** When the phase last changed. */
  phaseSince: Date = new Date();
  /** What this process replicates, for the status page (no secrets). */
  about: { driver?: string; stateKey?: string; version?: string } = {};
  /** Last position committed to etcd. */
  position?: Position;
  /** Source commit time of the last applied transaction. */
  lastCommitTime?: Date;
  /** When the last transaction was applied to etcd. */
  lastApplied?: Date;
  lastError?: { time: Date; message: string };
  reconnects: Map<string, number> = new Map();
  /** etcd requests retried inside the client, by reason (a member down, no leader, ...). */
  etcdRetries: Map<string, number> = new Map(ETCD_RETRY_REASONS.map((r) => [r, 0]));
  /** Rows written by dumps since start (a counter: a re-dump adds to it). */
  rowsDumped: Map<string, number> = new Map();
  /** Rows written by the current (or last) dump, for its progress. */
  dumpRows: Map<string, number> = new Map();
  /** Estimated rows per table (from the catalogue), for dump progress. */
  rowsEstimated: Map<string, number> = new Map();
  changes: Map<string, number> = new Map();
  /** Online snapshots since start: rows read, chunks, and rows each one wrote or swept. */
  snapshotRows: Map<string, number> = new Map();
  snapshotChunks: Map<string, number> = new Map();
  snapshotWritten: Map<string, number> = new Map();
  snapshotsDone: Map<string, number> = new Map();
  /** When each table's snapshot began reading in this process, and stopped (ms). */
  snapshotTimes: Map<string, { begin: number; end?: number }> = new Map();
  /** Each table's online snapshot as last committed to etcd. */
  snapshots: SnapshotProgress = {};
  transactions = 0;
  etcdTxns = 0;
  /** Latency of committed etcd transactions (dump, stream and state writes). */
  etcdTxnSeconds: Histogram = new Histogram(TXN_BUCKETS);
  oversizeSkipped = 0;
  /**
   * Bytes of source log not yet confirmed (PostgreSQL: server WAL position minus the slot's
   * confirmed position; MySQL: binlog bytes from our position to the server's). Polled from
   * the source while streaming; undefined until first measured.
   */
  lagBytes?: number;

  /** Changes read from the source and not yet in etcd. */
  backlog = 0;
  /** Recent samples for the status page, oldest first, at most `HISTORY_MS` old. */
  history: Sample[] = [];

  get phase(): Phase {
    return this.#phase;
  }

  set phase(p: Phase) {
    if (p !== this.#phase) this.phaseSince = new Date();
    this.#phase = p;
  }

  /** A dump starts: its progress counts from zero (the totals keep counting). */
  beginDump(): void {
    this.dumpRows.clear();
  }

  /**
   * The catalogue's row estimate for a table the current dump reads: listed with 0 rows done
   * from now on, so tables still waiting for their turn show in the progress.
   */
  estimate(table: string, rows: number): void {
    this.rowsEstimated.set(table, rows);
    if (!this.dumpRows.has(table)) this.dumpRows.set(table, 0);
  }

  /** `n` rows of `table` written by the dump. */
  dumped(table: string, n = 1): void {
    this.count(this.rowsDumped, table, n);
    this.count(this.dumpRows, table, n);
  }

  /** One chunk of an online snapshot: `read` rows, of which `written` differed from etcd. */
  snapshotChunk(table: string, read: number, written: number): void {
    this.count(this.snapshotRows, table, read);
    this.count(this.snapshotChunks, table);
    this.count(this.snapshotWritten, table, written);
  }

  /** A table's online snapshot starts (or resumes) reading. */
  snapshotBegin(table: string, now: number = Date.now()): void {
    this.snapshotTimes.set(table, { begin: now });
  }

  /** It stops reading (done, the table held or gone, the attempt over). */
  snapshotEnd(table: string, now: number = Date.now()): void {
    const t = this.snapshotTimes.get(table);
    if (t && t.end === undefined) t.end = now;
  }

  /** Seconds each table's running snapshot has read so far, or its last one read. */
  snapshotSeconds(now: number = Date.now()): Map<string, number> {
    const out = new Map<string, number>();
    for (const [table, t] of this.snapshotTimes) out.set(table, ((t.end ?? now) - t.begin) / 1000);
    return out;
  }

  /** A table's online snapshot ended; `swept` keys it did not find were removed. */
  snapshotDone(table: string, _rows: number, swept: number): void {
    this.count(this.snapshotsDone, table);
    this.count(this.snapshotWritten, table, swept);
  }

  /** One committed etcd transaction that took `seconds`. */
  observeTxn(seconds: number): void {
    this.etcdTxns++;
    this.etcdTxnSeconds.observe(seconds);
  }

  /** Record a chart point (the HTTP server calls this every second). */
  sample(now: Date = new Date()): void {
    let writes = 0;
    for (const n of this.rowsDumped.values()) writes += n;
    for (const n of this.changes.values()) writes += n;
    const t = now.getTime();
    this.history.push({ t, lagSeconds: this.lagSeconds(now), writes });
    while (this.history.length && this.history[0].t < t - HISTORY_MS) this.history.shift();
  }

  /** Source commit times (ms) of transactions read and not yet in etcd, oldest first. */
  #waiting: number[] = [];

  /** A transaction the source committed at `time` was read (it now waits for etcd). */
  transactionRead(time: Date): void {
    this.#waiting.push(time.getTime());
  }

  /** The oldest `n` transactions read are in etcd. */
  transactionsApplied(n: number): void {
    this.#waiting.splice(0, n);
  }

  /** A new attempt: what the last one read and did not apply will be read again. */
  resetBacklog(): void {
    this.#waiting = [];
    this.backlog = 0;
  }

  /**
   * How far etcd is behind the source, in seconds: the age of the oldest transaction read
   * and not yet committed to etcd, so it grows with the wall clock while changes wait, and
   * is 0 once everything read is in etcd (as a caught-up replica reports; the delay of the
   * last transaction held on after a burst made an idle sync look lagging for ever).
   */
  lagSeconds(now: Date = new Date()): number {
    if (!this.#waiting.length) return 0;
    return Math.max(0, (now.getTime() - this.#waiting[0]) / 1000);
  }

  count(map: Map<string, number>, key: string, n = 1): void {
    map.set(key, (map.get(key) ?? 0) + n);
  }
}

/**
 * The JSON behind the status page (`/status.json`): no secrets, only progress. `history`
 * holds `[time, lag seconds, writes per second]` triples, the rate over the preceding sample.
 */
export function statusJson(s: Status, now: Date = new Date()): Record<string, unknown> {
  const tables = new Map<
    string,
    { dumped: number; estimated?: number; changes: number; snapshot?: object }
  >();
  const row = (t: string) => {
    let r = tables.get(t);
    if (!r) tables.set(t, r = { dumped: 0, changes: 0 });
    return r;
  };
  for (const [t, n] of s.dumpRows) row(t).dumped = n;
  for (const [t, n] of s.rowsEstimated) row(t).estimated = n;
  for (const [t, snap] of Object.entries(s.snapshots)) {
    row(t).snapshot = snap.state === "held"
      ? { state: snap.state, why: snap.why }
      : { state: snap.state, rows: snap.rows };
  }
  let changesTotal = 0;
  for (const [k, n] of s.changes) {
    row(k.split("\t")[0]).changes += n;
    changesTotal += n;
  }
  const history: [number, number, number][] = [];
  for (let i = 1; i < s.history.length; i++) {
    const [a, b] = [s.history[i - 1], s.history[i]];
    const rate = b.t > a.t ? ((b.writes - a.writes) * 1000) / (b.t - a.t) : 0;
    history.push([b.t, b.lagSeconds, Math.max(0, rate)]);
  }
  let reconnects = 0;
  for (const n of s.reconnects.values()) reconnects += n;
  return {
    ...s.about,
    now: now.toISOString(),
    phase: s.phase,
    phaseSince: s.phaseSince.toISOString(),
    position: s.position ?? null,
    lagSeconds: s.lagSeconds(now),
    backlog: s.backlog,
    reconnects,
    transactions: s.transactions,
    changesTotal,
    lastCommitTime: s.lastCommitTime?.toISOString() ?? null,
    // Low layers name settings by id; the page names them as given (`--db-url`).
    lastError: s.lastError
      ? { ...s.lastError, message: nameSettings(s.lastError.message, settingName) }
      : null,
    tables: [...tables].sort(([a], [b]) => (a < b ? -1 : 1)).map(([table, r]) => ({
      table,
      ...r,
    })),
    history,
  };
}
