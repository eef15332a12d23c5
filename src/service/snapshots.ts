/**
 * The online snapshot engine beside a stream: every batch the stream hands on passes it,
 * so the engine learns which keys the stream touched, and its chunks go in between the
 * stream's transactions.
 */
import type { ChangeBatch, Position } from "../core/change.ts";
import type { Log } from "../core/log.ts";
import { SnapshotEngine, type SnapshotSettings } from "../core/snapshot.ts";
import type { SnapshotProgress } from "../core/snapshot_types.ts";
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

/** How often the `sync snapshot` request key is read. */
const REQUEST_POLL_MS = 2000;

/**
 * Act on a `sync snapshot` request that neither the progress nor this attempt (`acted`, an
 * etcd revision) answered yet; returns the newest request acted on.
 */
async function pollRequest(
  c: SnapshotContext,
  engine: SnapshotEngine,
  acted: number,
): Promise<number> {
  let r;
  try {
    r = await c.settings?.store.request?.();
  } catch {
    return acted; // etcd trouble: the stream's own writes report it
  }
  if (!r || r.revision <= Math.max(engine.handled, acted)) return acted;
  const known = c.session.tables();
  const tables = r.tables.filter((t) => t in known);
  const unknown = r.tables.filter((t) => !(t in known));
  if (unknown.length) {
    c.log.warn("snapshot request names tables not replicated; ignored", {
      tables: unknown.join(","),
    });
  }
  if (tables.length) {
    c.log.info("snapshot requested", { tables: tables.join(",") });
    engine.request(tables, r.revision);
  }
  return r.revision;
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
      chunk: (table, read, written) => c.status.snapshotChunk(table, read, written),
      done: (table, rows, swept) => c.status.snapshotDone(table, rows, swept),
    },
  });
  engine.start(position);
  let acted = 0;
  const poll = setInterval(async () => {
    acted = await pollRequest(c, engine, acted);
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
