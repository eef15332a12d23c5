/** What the service is doing, for logs, health checks and metrics. */
import type { Position } from "../core/change.ts";

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
  /** Rows written by dumps since start (a counter: a re-dump adds to it). */
  rowsDumped: Map<string, number> = new Map();
  /** Rows written by the current (or last) dump, for its progress. */
  dumpRows: Map<string, number> = new Map();
  /** Estimated rows per table (from the catalogue), for dump progress. */
  rowsEstimated: Map<string, number> = new Map();
  changes: Map<string, number> = new Map();
  transactions = 0;
  etcdTxns = 0;
  oversizeSkipped = 0;

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

  /** `n` rows of `table` written by the dump. */
  dumped(table: string, n = 1): void {
    this.count(this.rowsDumped, table, n);
    this.count(this.dumpRows, table, n);
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

  /**
   * Seconds between the source's commit and etcd's: growing with the wall clock while
   * changes wait, otherwise the delay of the last applied transaction.
   */
  lagSeconds(now: Date = new Date()): number {
    if (!this.lastCommitTime) return 0;
    const end = this.backlog > 0 ? now : this.lastApplied ?? now;
    return Math.max(0, (end.getTime() - this.lastCommitTime.getTime()) / 1000);
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
  const tables = new Map<string, { dumped: number; estimated?: number; changes: number }>();
  const row = (t: string) => {
    let r = tables.get(t);
    if (!r) tables.set(t, r = { dumped: 0, changes: 0 });
    return r;
  };
  for (const [t, n] of s.dumpRows) row(t).dumped = n;
  for (const [t, n] of s.rowsEstimated) row(t).estimated = n;
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
    lastError: s.lastError ?? null,
    tables: [...tables].sort(([a], [b]) => (a < b ? -1 : 1)).map(([table, r]) => ({
      table,
      ...r,
    })),
    history,
  };
}
