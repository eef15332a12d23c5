/**
 * The change model shared by source drivers and the etcd sink.
 *
 * Drivers render every cell to a JSON fragment (see `json.ts`) so the sink never
 * re-interprets database values: numbers stay exactly as the database printed them.
 */

import type { SnapshotProgress } from "./snapshot_types.ts";

/** A rendered JSON value (`123`, `"text"`, `null`, `{"a":1}`), or `UNCHANGED`. */
export type Cell = string | typeof UNCHANGED;

/**
 * Marks a column whose value the source did not send (PostgreSQL unchanged TOAST);
 * the sink fills it from the row's current value in etcd.
 */
export const UNCHANGED: unique symbol = Symbol("unchanged");

/** Insert or replace one row. `columns` and `cells` are in table order. */
export interface PutChange {
  readonly op: "put";
  /** Table name as it appears in keys (already schema-qualified where the design says so). */
  readonly table: string;
  /** Encoded key (see `keys.ts`), without the prefix and table. */
  readonly key: string;
  readonly columns: readonly string[];
  readonly cells: readonly Cell[];
  /**
   * Where `UNCHANGED` cells take their value from when the key itself changed in the same
   * update (the old key, in the same table). Defaults to `key`.
   */
  readonly fillFrom?: string;
  /** The row already rendered (`renderRow(columns, cells)`), when the source had to render it. */
  readonly json?: string;
}

export interface DeleteChange {
  readonly op: "delete";
  readonly table: string;
  readonly key: string;
}

/** Remove every row of a table (TRUNCATE). */
export interface TruncateChange {
  readonly op: "truncate";
  readonly table: string;
}

export type Change = PutChange | DeleteChange | TruncateChange;

/**
 * A source position. Opaque to the sink: it is stored as JSON in the state key and handed
 * back to the driver that produced it. PostgreSQL uses `{ lsn }`, MySQL
 * `{ file, offset, gtid? }`.
 */
export type Position = Record<string, string | number | null>;

/**
 * A run of changes in source order. `commit` is present when the batch ends a source
 * transaction; the state key moves only with such a batch. A large transaction arrives as
 * several batches of which only the last carries `commit`.
 */
export interface ChangeBatch {
  readonly changes: Change[];
  readonly commit?: {
    readonly position: Position;
    /** Commit time at the source, for lag metrics. */
    readonly time?: Date;
    /** Every table's snapshot as of this batch: recorded with the state it carries. */
    readonly snapshot?: SnapshotProgress;
  };
  /**
   * Tables whose rows changed in ways the stream cannot express (ALTER TABLE, a rename, a
   * new key): they are snapshotted again from this point of the stream on.
   */
  readonly resnapshot?: readonly string[];
  /**
   * Tables whose changes the stream can no longer map to keys, from this point on: held
   * (none applied) until `resnapshot` names them again.
   */
  readonly hold?: readonly { table: string; why: string }[];
  /** Tables no longer replicated from this point on (dropped, renamed): their keys go. */
  readonly gone?: readonly string[];
  /** Written by an online snapshot, not by the stream (counted apart). */
  readonly fromSnapshot?: boolean;
}
