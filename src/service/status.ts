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
  reconnects = new Map<string, number>();
  rowsDumped = new Map<string, number>();
  changes = new Map<string, number>();
  transactions = 0;
  etcdTxns = 0;
  oversizeSkipped = 0;

  /** Changes read from the source and not yet in etcd. */
  backlog = 0;

  /**
   * Seconds between the source's commit and etcd's: growing with the wall clock while
   * changes wait, otherwise the delay of the last applied transaction.
   */
  lagSeconds(now = new Date()): number {
    if (!this.lastCommitTime) return 0;
    const end = this.backlog > 0 ? now : this.lastApplied ?? now;
    return Math.max(0, (end.getTime() - this.lastCommitTime.getTime()) / 1000);
  }

  count(map: Map<string, number>, key: string, n = 1): void {
    map.set(key, (map.get(key) ?? 0) + n);
  }
}
