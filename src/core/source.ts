/**
 * The contract between the service and a source driver (design: Shape).
 * Drivers know nothing of etcd: they emit `ChangeBatch`es and are told which positions
 * etcd has committed.
 */
import type { ChangeBatch, Position } from "./change.ts";
import { splitDbUrl } from "./db_url.ts";
import type { ChunkSource, SnapshotProgress } from "./snapshot_types.ts";
import type { TableDefinitions } from "./tables.ts";
import type { ConfigErrorCode } from "./errors.ts";

/** Identity of the source, stored in the state key and compared on resume. */
export type SourceIdentity = Record<string, string | number>;

/** What the state key holds (design: Position and state). */
export interface SavedState {
  driver: string;
  source: SourceIdentity;
  position: Position;
  /** etcd revision at which the last full dump started. */
  dumpRevision: number;
  /** ISO time the state was written. */
  updatedAt: string;
  /**
   * Each replicated table's definition as the stream knows it at `position` (absent in
   * states written before sync recorded them).
   */
  tables?: TableDefinitions;
  /** Each table's online snapshot, running or done (absent: none ever ran). */
  snapshots?: SnapshotProgress;
}

/** Where a driver sends batches; resolves when the sink has room for more (backpressure). */
export type BatchOutput = (batch: ChangeBatch) => Promise<void>;

/**
 * A dump's milestones, so a dump cut short resumes (design: Snapshots): the snapshot's
 * position and tables once known, then each table once all its rows were handed out.
 */
export interface DumpProgress {
  started(position: Position, tables: string[]): Promise<void>;
  finished(table: string, rows: number): Promise<void>;
}

export interface DumpResult {
  /** Position the stream continues from (the snapshot's consistent point). */
  position: Position;
  /** Key table names that were dumped; the sweep covers these. */
  tables: string[];
  /**
   * Key table names the filter selects whether or not they exist now: the sweep also clears
   * such a table that the dump did not write (renamed or dropped while sync was away).
   */
  owns?: (table: string) => boolean;
}

/** How the driver wants to start, given the saved state. */
export type StartPlan =
  | {
    mode: "resume";
    position: Position;
    /**
     * Tables to snapshot again (online) while streaming from `position`, and why; without
     * online snapshots the service dumps instead.
     */
    resnapshot?: { tables: string[]; reason: string };
  }
  | {
    mode: "dump";
    reason: string;
    /** The reason is news to the operator (etcd held another history, say): log a warning. */
    warn?: boolean;
  };

/** One connected attempt at a source. Created per retry; closed after. */
export interface SourceSession {
  readonly driver: string;
  readonly identity: SourceIdentity;
  /** Decide between resuming from `state` and a full dump. */
  plan(state: SavedState | null): Promise<StartPlan>;
  /**
   * The replicated tables' definitions as of the newest change handed out (or the dump's
   * snapshot): recorded with each state write.
   */
  tables(): TableDefinitions;
  /** Emit every selected row of a consistent snapshot (put changes, no commits). */
  dump(out: BatchOutput, signal: AbortSignal, progress?: DumpProgress): Promise<DumpResult>;
  /**
   * Chunk reads for online snapshots, on a connection of their own (absent: the driver
   * cannot snapshot online, and a table that needs it means a full dump).
   */
  chunks?(): ChunkSource;
  /** Emit committed transactions after `from` until `signal` aborts or the connection fails. */
  stream(from: Position, out: BatchOutput, signal: AbortSignal): Promise<void>;
  /** etcd has committed everything up to `position`; the source may release it. */
  confirm(position: Position): void;
  close(): Promise<void>;
}

/**
 * The stream stops on purpose: rows changed without change events (ALTER TABLE, say), the
 * position is saved with a resync mark, and the service starts the next attempt (a dump) at
 * once: no failure, no backoff.
 */
export class ResyncNeeded extends Error {
  override name = "ResyncNeeded";
}

// Importers of the source contract find ConfigError here too.
export { ConfigError } from "./errors.ts";

/**
 * Options every driver receives; `driver` holds the driver's own (its type is the driver's
 * business: core never names one).
 */
export interface SourceOptions<D = unknown> {
  /** Database URL (may carry a password: never log it whole; see `redactUrl`). */
  url: string;
  filter: import("./filter.ts").TableFilter;
  /** `--keys`: key columns of tables without a primary key. */
  keys: import("./key_config.ts").KeyConfig;
  log: import("./log.ts").Log;
  /** Called by dump() with each table's estimated row count (progress display, metrics). */
  onTableEstimate?: (table: string, rows: number) => void;
  driver: D;
}

/** Creates a fresh session for each attempt of the service's retry loop. */
export interface SourceFactory {
  readonly driver: string;
  connect(signal: AbortSignal): Promise<SourceSession>;
  /** `sync check`: preflight checks of the source. */
  check?(): Promise<CheckResult[]>;
  /** `sync status`: the source's side (slot, retained WAL, binlog files, lag). */
  inspect?(state: SavedState | null): Promise<Inspection>;
  /** `sync drop`: remove what sync created on the source; returns what was removed. */
  drop?(): Promise<string[]>;
}

/** A value `sync status` prints as it is. */
export type InspectionValue = string | number | boolean | null;

/**
 * The source's side of `sync status` (and of the lag poll): what every driver can say,
 * typed, and the driver's own details, which the CLI prints without knowing the driver.
 */
export interface Inspection {
  /** Log bytes from the saved position to the server's newest (absent: not measurable). */
  lagBytes?: number;
  /**
   * Whether a sync streams from this source now, and what shows it ("the slot is in use");
   * `unknown` when the user may not see it: what it would take, said in full.
   */
  streaming: { active: true; evidence: string } | { active: false } | { unknown: string };
  /**
   * Why the next start dumps whatever the state says (the slot is gone, the saved position
   * is one this server never reached); absent: the state decides.
   */
  dumps?: string;
  /** Shown as `source.<name> value`, in this order (lag included): printed, not interpreted. */
  details: Record<string, InspectionValue>;
}

/** One line of `sync check`. */
export interface CheckResult {
  name: string;
  ok: boolean;
  /** What was found. */
  detail: string;
  /** What to change when not ok. */
  fix?: string;
  /** What a failed check is about, when the error said (`auth`: the login was refused). */
  code?: ConfigErrorCode;
}

/**
 * A database URL for logs and errors: scheme, hosts and database, with the user name and
 * password replaced (split by the drivers' own rules, so an unencoded `/` or `@` in the
 * password cannot move part of it into what is shown).
 */
export function redactUrl(url: string): string {
  try {
    const p = splitDbUrl(url);
    const auth = p.userinfo === undefined ? "" : "***@";
    return `${p.scheme}://${auth}${p.hosts}${p.path ? `/${p.path}` : ""}`;
  } catch {
    return "(a URL that does not parse)";
  }
}
