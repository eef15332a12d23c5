/**
 * The online snapshot engine beside a stream: every batch the stream hands on passes it,
 * so the engine learns which keys the stream touched, and its chunks go in between the
 * stream's transactions.
 */
import type { ChangeBatch, Position } from "../core/change.ts";
import type { Log } from "../core/log.ts";
import { SnapshotEngine, type SnapshotSettings } from "../core/snapshot.ts";
import type { SnapshotProgress, SnapshotRequest } from "../core/snapshot_types.ts";
import type { SourceSession } from "../core/source.ts";
import { resyncAt, resyncNeeded } from "../core/stream.ts";
import type { Status } from "./status.ts";

export interface SnapshotRun {
  /** One batch of the stream, in order. */
  take(batch: ChangeBatch): Promise<void>;
  /** Snapshot these tables again from here on. */
  request(tables: string[]): void;
  stop(): void;
}

export interface SnapshotContext {
  settings?: SnapshotSettings;
  session: SourceSession;
  log: Log;
  status: Status;
  progress?: SnapshotProgress;
}

type Push = (batch: ChangeBatch) => Promise<void>;

/** How often the `sync snapshot` requests are read (`sync snapshot` waits a few of these). */
export const REQUEST_POLL_MS = 2000;

/**
 * Act on the `sync snapshot` requests this attempt has not acted on yet (`acted`: their
 * ids). A request is deleted by the transaction that records its snapshot, so one still
 * there at a new attempt was not recorded, and is acted on again.
 */
async function pollRequests(
  c: SnapshotContext,
  engine: SnapshotEngine,
  acted: Set<string>,
): Promise<void> {
  const store = c.settings?.store;
  let waiting: SnapshotRequest[];
  try {
    waiting = await store?.requests?.() ?? [];
  } catch {
    return; // etcd trouble: the stream's own writes report it
  }
  for (const r of waiting) {
    if (acted.has(r.id)) continue;
    acted.add(r.id);
    const known = c.session.tables();
    const tables = r.tables.filter((t) => t in known);
    const unknown = r.tables.filter((t) => !(t in known));
    if (!r.tables.length) c.log.warn("snapshot request unreadable; removed", { id: r.id });
    if (unknown.length) {
      c.log.warn("snapshot request names tables not replicated; ignored", {
        tables: unknown.join(","),
      });
    }
    if (tables.length) c.log.info("snapshot requested", { tables: tables.join(",") });
    const taken = tables.length ? engine.request(tables, r.id) : [];
    // No snapshot will record it (and delete it with that record): remove it now.
    if (!taken.length) await store?.dismiss?.(r.id).catch(() => {});
  }
}

/**
 * Start the engine at `position`; without snapshot settings or a driver that reads chunks,
 * a table that needs a snapshot means a full dump (`withoutEngine`).
 */
export function startSnapshots(
  c: SnapshotContext,
  position: Position,
  push: Push,
  fail: (e: unknown) => void,
  settled?: () => Promise<void>,
): SnapshotRun {
  if (!c.settings || !c.session.chunks) return withoutEngine(push);
  const engine = new SnapshotEngine({
    ...c.settings,
    source: c.session.chunks(),
    push,
    settled,
    log: c.log,
    progress: c.progress,
    onFailure: fail,
    events: {
      begin: (table) => c.status.snapshotBegin(table),
      chunk: (table, read, written) => c.status.snapshotChunk(table, read, written),
      done: (table, rows, swept) => c.status.snapshotDone(table, rows, swept),
      end: (table) => c.status.snapshotEnd(table),
    },
  });
  engine.start(position);
  const acted = new Set<string>();
  let polling = false;
  const poll = setInterval(async () => {
    // One poll at a time: a slow etcd must not act on one request twice.
    if (polling) return;
    polling = true;
    await pollRequests(c, engine, acted).finally(() => polling = false);
  }, REQUEST_POLL_MS);
  return {
    take: (batch) => engine.take(batch),
    request: (tables) => engine.request(tables),
    stop: () => {
      clearInterval(poll);
      engine.stop();
    },
  };
}

/**
 * No engine: a table that needs a new snapshot stops the stream for a full dump, the
 * position saved with a resync mark first (a crash in between still dumps).
 */
function withoutEngine(push: Push): SnapshotRun {
  return {
    async take(batch) {
      // A held table too: the dump refuses it until its identity is fixed, as at start.
      const tables = [...batch.resnapshot ?? [], ...(batch.hold ?? []).map((h) => h.table)];
      if (!tables.length || !batch.commit) return await push(batch);
      const position = resyncAt(batch.commit.position, tables[0]);
      await push({ ...batch, commit: { ...batch.commit, position } });
      throw resyncNeeded(tables[0]);
    },
    request() {},
    stop() {},
  };
}
