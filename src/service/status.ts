/** What the service is doing, for logs, health checks and metrics. */
import type { Position } from "../core/change.ts";

export type Phase = "starting" | "standby" | "dump" | "sync" | "retrying" | "stopped";

export class Status {
  phase: Phase = "starting";
  /** Last position committed to etcd. */
  position?: Position;
  /** Source commit time of the last applied transaction. */
  lastCommitTime?: Date;
  /** When the last transaction was applied to etcd. */
  lastApplied?: Date;
  lastError?: { time: Date; message: string };
  reconnects: Map<string, number> = new Map();
  rowsDumped: Map<string, number> = new Map();
  /** Estimated rows per table (from the catalogue), for dump progress. */
  rowsEstimated: Map<string, number> = new Map();
  changes: Map<string, number> = new Map();
  transactions = 0;
  etcdTxns = 0;
  oversizeSkipped = 0;

  /** Changes read from the source and not yet in etcd. */
  backlog = 0;

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

/** The JSON behind the status page (`/status.json`): no secrets, only progress. */
export function statusJson(s: Status): Record<string, unknown> {
  const tables = new Map<string, { dumped: number; estimated?: number; changes: number }>();
  const row = (t: string) => {
    let r = tables.get(t);
    if (!r) tables.set(t, r = { dumped: 0, changes: 0 });
    return r;
  };
  for (const [t, n] of s.rowsDumped) row(t).dumped = n;
  for (const [t, n] of s.rowsEstimated) row(t).estimated = n;
  let changesTotal = 0;
  for (const [k, n] of s.changes) {
    row(k.split("\t")[0]).changes += n;
    changesTotal += n;
  }
  return {
    phase: s.phase,
    position: s.position ?? null,
    lagSeconds: s.lagSeconds(),
    transactions: s.transactions,
    changesTotal,
    lastCommitTime: s.lastCommitTime?.toISOString() ?? null,
    lastError: s.lastError ?? null,
    tables: [...tables].sort(([a], [b]) => (a < b ? -1 : 1)).map(([table, r]) => ({
      table,
      ...r,
    })),
  };
}
