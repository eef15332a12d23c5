/** The pgx driver's own options (beside the ones every driver gets). */
import type { SourceOptions } from "../core/source.ts";

export interface PgOptions {
  slot: string;
  publication: string;
  /** Tables read at once during the dump. */
  dumpParallel: number;
  /** Standby status updates at least this often. */
  statusIntervalMs: number;
  /**
   * End another walsender holding the slot (`--ha`: this process is the fenced leader, and
   * the holder is a paused or dead former leader).
   */
  takeOverSlot?: boolean;
  /** Create the slot with FAILOVER where the server supports it (PostgreSQL 17+). */
  failover?: boolean;
}

export type PgSourceOptions = SourceOptions<PgOptions>;
