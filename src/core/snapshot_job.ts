/** One table's online snapshot as the engine (snapshot.ts) works through it. */
import { Touched } from "./touched.ts";

export interface Job {
  table: string;
  /** Bumped when the table's rows are reset (TRUNCATE, a new request): older reads drop. */
  gen: number;
  after: readonly string[] | null;
  rows: number;
  started: string;
  /** Keys the snapshot read: the sweep keeps them. */
  seen: Set<string>;
  /** Keys the stream changed since the snapshot began: the stream's values win. */
  touched: Touched;
  /** Rows up to this cursor were written before a restart: read again only to be seen. */
  replayTo: readonly string[] | null;
  /** The operator's requests this job answers (their ids). */
  requests?: readonly string[];
  /** The generation whose queued writes were waited for before comparing with etcd. */
  settledGen?: number;
  /** No unique index covers the table's key: read in one piece, the cursor left null. */
  whole?: boolean;
  /** The table was held or is gone: this job writes nothing more. */
  ended?: boolean;
}

/** A job for `table`; `after`: the cursor a restart goes on from (rows read up to it). */
export function newJob(
  table: string,
  after: readonly string[] | null,
  rows: number,
  started: string,
): Job {
  return {
    table,
    gen: 0,
    after: null,
    rows: after === null ? 0 : rows,
    started,
    seen: new Set(),
    touched: new Touched(),
    replayTo: after,
  };
}
