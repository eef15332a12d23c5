/** What an etcd sink is configured with, and what it reports per transaction. */
import type { Log } from "../core/log.ts";
import type { TxnCompare } from "./client.ts";

export interface SinkOptions {
  /** Data prefix, no trailing slash. */
  prefix: string;
  /** The state key of this source (outside the data prefix). */
  stateKey: string;
  /** etcd's --max-txn-ops (default 128). */
  maxTxnOps?: number;
  /** Request size budget per transaction. */
  maxTxnBytes?: number;
  /** What to do with a row larger than one etcd request: stop (default) or skip it. */
  oversize?: "fail" | "skip";
  log?: Log;
  /** Compares every data transaction must pass (HA fencing); a failed one throws FencedError. */
  fence?: () => TxnCompare[];
  /** Called after each committed transaction (metrics). */
  onTxn?: (info: TxnInfo) => void;
  /** Called for each skipped oversize row (metrics). */
  onOversize?: (table: string, key: string, bytes: number) => void;
}

export interface TxnInfo {
  ops: number;
  bytes: number;
  seconds: number;
  withState: boolean;
}
