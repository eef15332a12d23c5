/**
 * What the online snapshot engine (design: Snapshots) needs from a driver and from the
 * sink, and what it records in the state.
 */
import type { Position } from "./change.ts";

/** One row of a chunk, rendered as the stream renders it. */
export interface SnapshotRow {
  /** Encoded row key (see `keys.ts`). */
  key: string;
  /** The key columns' values in the database's text form: the cursor after this row. */
  after: readonly string[];
  columns: readonly string[];
  cells: readonly string[];
}

/**
 * A chunk read of a table whose key no unique index covers (a keyless table's configured
 * key): keyset pagination would skip the rows after a chunk's last one that share its key
 * value, so the table is read whole instead.
 */
export class UnpageableTableError extends Error {
  constructor(readonly table: string) {
    super(`table ${table}: no unique index covers its configured key columns`);
    this.name = "UnpageableTableError";
  }
}

/**
 * A chunk read after a cursor taken under other key columns (an ALTER changed the key):
 * the cursor means nothing now, and the table's snapshot starts over.
 */
export class KeyChangedError extends Error {
  constructor(readonly table: string) {
    super(`table ${table}: its key columns changed during its snapshot`);
    this.name = "KeyChangedError";
  }
}

/** Each table's key columns as of its cursor, for a chunk reader to check (see above). */
export class CursorKeys {
  readonly #keys = new Map<string, string>();

  /** `key` (the key columns and types, as text) now; throws when `after` has other ones. */
  check(table: string, key: string, after: readonly string[] | null): void {
    const was = this.#keys.get(table);
    this.#keys.set(table, key);
    if (after !== null && was !== undefined && was !== key) throw new KeyChangedError(table);
  }
}

/** A driver's side of the engine: chunk reads on a connection of its own. */
export interface ChunkSource {
  /**
   * Up to `limit` rows of `table` whose keys follow `after` (from the start when null), in
   * key order as the database compares them, up to `until` (inclusive) when given. Null
   * when the table is no longer replicated. `limit` Infinity reads every row (no LIMIT);
   * a finite one throws `UnpageableTableError` when no unique index covers the table's key.
   * Throws `KeyChangedError` when `after` was read under other key columns.
   */
  read(
    table: string,
    after: readonly string[] | null,
    limit: number,
    until?: readonly string[],
  ): Promise<SnapshotRow[] | null>;
  close(): void;
}

/** The sink's side: reading what etcd holds. */
export interface SnapshotStore {
  /** etcd's current rendered rows for `keys` of `table` (keys it lacks are absent). */
  current(table: string, keys: readonly string[]): Promise<Map<string, string>>;
  /** Every row key etcd holds under `table`. */
  keys(table: string): Promise<string[]>;
  /** The `sync snapshot` requests waiting, oldest first. */
  requests?(): Promise<SnapshotRequest[]>;
  /** Remove a request that no snapshot will record (it names nothing to read). */
  dismiss?(id: string): Promise<void>;
}

/** One `sync snapshot` request: its id, and the tables it names (none when unreadable). */
export interface SnapshotRequest {
  id: string;
  tables: string[];
}

/** A table's snapshot as the state records it (design: Snapshots). */
export type TableSnapshot =
  & (
    | {
      state: "running";
      /** Cursor: the key values of the last row written (null: none yet). */
      after: readonly string[] | null;
      rows: number;
      started: string;
    }
    | { state: "done"; rows: number; at: Position; done: string }
    | {
      /**
       * The stream cannot map the table's changes to keys (its replica identity leaves a
       * key column out): none are applied until a snapshot reads it again.
       */
      state: "held";
      why: string;
      since: string;
    }
  )
  & {
    /**
     * The `sync snapshot` requests this snapshot answers (their ids): the transaction that
     * first records one deletes its request.
     */
    requests?: readonly string[];
  };

/** Each table's snapshot; a new object whenever anything in it changes. */
export type SnapshotProgress = Readonly<Record<string, TableSnapshot>>;
