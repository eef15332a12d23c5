/**
 * The contract between the service and a sink (design: Shape): where change batches and
 * the state go. The etcd sink implements it; the service and its tests know only this.
 */
import type { ChangeBatch, Position } from "./change.ts";
import type { SavedState } from "./source.ts";
import type { SnapshotProgress } from "./snapshot_types.ts";

export interface Sink {
  /** The saved state, or null when there is none. */
  readState(): Promise<SavedState | null>;
  /** Forget the saved position (a dump cut short must dump again); the dump's start mark. */
  startDump(): Promise<number>;
  /** Write dump rows; may return before they land (see `settleDump`). */
  writeDump(batch: ChangeBatch): Promise<void>;
  /** Wait for every dump write; throws the first that failed. */
  settleDump(): Promise<void>;
  /**
   * Remove what the dump did not write under its tables (and under any table `owns`
   * claims); returns how many keys went.
   */
  sweep(
    tables: readonly string[],
    startMark: number,
    owns?: (table: string) => boolean,
  ): Promise<number>;
  /** Record the state on its own (after a dump). */
  writeState(state: SavedState): Promise<void>;
  /**
   * Apply streamed batches in order, each source transaction with the state at its
   * position; returns the last position now durable (undefined when none completed).
   */
  apply(
    batches: readonly ChangeBatch[],
    stateAt: (position: Position, snapshot?: SnapshotProgress) => SavedState,
  ): Promise<Position | undefined>;
}

/**
 * This process lost its leadership (`--ha`): another sync instance owns the source now, and
 * the sink refuses to write. Retrying cannot help; the leadership has to be won again.
 */
export class FencedError extends Error {
  override name = "FencedError";
}

/** A row larger than the sink accepts (design: Failure rules); stops sync unless skipped. */
export class OversizeError extends Error {
  override name = "OversizeError";
}
