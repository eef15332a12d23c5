/**
 * Lag in bytes (`sync_lag_bytes`): the replication stream does not say how far behind the
 * server we are, so while streaming the source is asked every few seconds through the
 * driver's `inspect` (the same numbers `sync status` prints): PostgreSQL's WAL position
 * minus the slot's confirmed position, MySQL's binlog bytes after our position.
 */
import type { Log } from "../core/log.ts";
import type { SavedState, SourceFactory } from "../core/source.ts";
import type { Status } from "./status.ts";

export const LAG_POLL_MS = 5_000;

/** Poll until `signal` aborts; a failed poll keeps the last value (the next one retries). */
export function pollLagBytes(
  factory: SourceFactory,
  status: Status,
  log: Log,
  signal: AbortSignal,
  intervalMs = LAG_POLL_MS,
): void {
  const inspect = factory.inspect;
  if (!inspect) return;
  let busy = false;
  const timer = setInterval(async () => {
    // Only streaming has a position to compare; a dump or retry has nothing to say.
    if (busy || status.phase !== "sync" || !status.position) return;
    busy = true;
    try {
      const state: SavedState = {
        driver: factory.driver,
        source: {},
        position: status.position,
        dumpRevision: 0,
        updatedAt: "",
      };
      const r = await inspect.call(factory, state);
      if (r.lagBytes !== undefined && Number.isFinite(r.lagBytes)) {
        status.lagBytes = Math.max(0, r.lagBytes);
      }
    } catch (e) {
      log.debug("lag poll failed", { reason: (e as Error).message.split("\n")[0] });
    } finally {
      busy = false;
    }
  }, intervalMs);
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}
