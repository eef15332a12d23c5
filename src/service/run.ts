/**
 * The service: runs a source driver into the etcd sink in a retry loop (design: Shape,
 * Failure rules). Owns the position hand-off: a position is confirmed to the source only
 * after the etcd transaction that recorded it committed.
 */
import type { ChangeBatch, Position } from "../core/change.ts";
import type { Log } from "../core/log.ts";
import {
  ConfigError,
  type DumpProgress,
  ResyncNeeded,
  type SavedState,
  type SourceFactory,
  type SourceSession,
} from "../core/source.ts";
import { FencedError, OversizeError, type Sink } from "../core/sink.ts";
import type { SnapshotSettings } from "../core/snapshot.ts";
import type { SnapshotProgress } from "../core/snapshot_types.ts";
import { Pipeline } from "./pipeline.ts";
import { startSnapshots } from "./snapshots.ts";
import { Status } from "./status.ts";

export interface ServiceOptions {
  factory: SourceFactory;
  sink: Sink;
  log: Log;
  signal: AbortSignal;
  status?: Status;
  /** Online snapshots (chunk reads through the session, etcd reads through the store). */
  snapshots?: SnapshotSettings;
  /** Backoff bounds for retries. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** An error that ends the process with `exitCode` instead of being retried. */
export class FatalError extends Error {
  override name = "FatalError";
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

/** The source closed its stream without an error (a retry resumes). */
class StreamEndedError extends Error {
  override name = "StreamEndedError";
}

function reasonOf(e: unknown): string {
  if (e instanceof Error) return e.message.split("\n")[0];
  return String(e);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Run until `signal` aborts (resolves) or a fatal error (throws FatalError). Every other
 * failure is logged in one line and retried with exponential backoff and jitter.
 */
export async function runService(o: ServiceOptions): Promise<void> {
  const status = o.status ?? new Status();
  const minB = o.minBackoffMs ?? 500;
  const maxB = o.maxBackoffMs ?? 30_000;
  let backoff = minB;
  let everStreamed = false;
  let attempt = 0;
  while (!o.signal.aborted) {
    attempt++;
    const started = Date.now();
    try {
      await runOnce(o, status, () => (everStreamed = true));
      if (o.signal.aborted) break;
      throw new StreamEndedError("source stream ended");
    } catch (e) {
      if (o.signal.aborted) break;
      if (e instanceof OversizeError) throw new FatalError(e.message, 1);
      // Another instance leads now: end here, so the caller campaigns again; a retry would
      // take the slot back from the new leader, and be refused again.
      if (e instanceof FencedError) {
        o.log.warn("fenced out by a new leader", { reason: e.message });
        break;
      }
      if (e instanceof ResyncNeeded) {
        // Not a failure: the position is saved with its resync mark; dump at once.
        o.log.info("dumping again", { reason: e.message });
        backoff = minB;
        continue;
      }
      // A misconfiguration at first start cannot fix itself; after a successful start it
      // may be a node mid-failover, so keep trying.
      if (e instanceof ConfigError && !everStreamed) throw new FatalError(e.message, 2);
      const reason = reasonOf(e);
      status.phase = "retrying";
      status.lastError = { time: new Date(), message: reason };
      // The error's class is the reason label: few values, and it names the side that failed.
      status.count(status.reconnects, e instanceof Error ? e.name : "Error");
      if (Date.now() - started > 60_000) backoff = minB;
      const wait = Math.round(backoff / 2 + Math.random() * backoff / 2);
      o.log.warn("retrying", { attempt, reason, retry_in_ms: wait });
      await sleep(wait, o.signal);
      backoff = Math.min(maxB, backoff * 2);
    }
  }
  status.phase = "stopped";
}

/** One connected attempt: the plan, a dump when it says so, then the stream. */
interface Attempt {
  o: ServiceOptions;
  status: Status;
  session: SourceSession;
  /** Ends this attempt's work (a failure anywhere, or a stop before streaming). */
  abort: AbortController;
  /** While streaming, a stop drains first (see `follow`). */
  drain?: () => void;
  dumpRevision: number;
  /** Each table's online snapshot, as the state last recorded it. */
  snapshots?: SnapshotProgress;
}

async function runOnce(o: ServiceOptions, status: Status, streaming: () => void): Promise<void> {
  const abort = new AbortController();
  let a: Attempt | undefined;
  const stop = () => (a?.drain ? a.drain() : abort.abort());
  o.signal.addEventListener("abort", stop, { once: true });
  let session: SourceSession | undefined;
  try {
    session = await o.factory.connect(abort.signal);
    a = { o, status, session, abort, dumpRevision: 0 };
    const state = await o.sink.readState();
    const plan = await session.plan(state);
    let position: Position | undefined;
    const again = plan.mode === "resume" ? plan.resnapshot : undefined;
    const online = Boolean(o.snapshots && session.chunks);
    if (plan.mode === "dump") position = await dump(a, plan.reason, plan.warn);
    else if (again && !online) position = await dump(a, again.reason, true);
    else {
      position = plan.position;
      a.dumpRevision = state?.dumpRevision ?? 0;
      a.snapshots = state?.snapshots;
      status.snapshots = state?.snapshots ?? {};
      o.log.info("resuming", { position: fmtPos(position) });
      if (again) o.log.warn("snapshotting tables again", { reason: again.reason });
    }
    if (position === undefined || a.abort.signal.aborted) return;
    streaming();
    await follow(a, position, online ? again?.tables : undefined);
  } finally {
    o.signal.removeEventListener("abort", stop);
    await session?.close().catch(() => {});
  }
}

/** What the state key records at `p`, with the session's table definitions. */
function stateAt(a: Attempt, p: Position, snapshots?: SnapshotProgress): SavedState {
  if (snapshots) a.snapshots = snapshots;
  return {
    driver: a.session.driver,
    source: a.session.identity,
    position: p,
    dumpRevision: a.dumpRevision,
    updatedAt: new Date().toISOString(),
    tables: a.session.tables(),
    snapshots: a.snapshots,
  };
}

/** A full dump, its sweep and its state; the position to stream from (none if stopped). */
async function dump(a: Attempt, reason: string, warn?: boolean): Promise<Position | undefined> {
  const { sink, log } = a.o;
  a.status.phase = "dump";
  a.status.beginDump();
  if (warn) log.warn("dump starting", { reason });
  else log.info("dump starting", { reason });
  a.dumpRevision = await sink.startDump();
  a.snapshots = {};
  let result;
  try {
    result = await a.session.dump(
      async (batch: ChangeBatch) => {
        await sink.writeDump(batch);
        for (const c of batch.changes) if (c.op === "put") a.status.dumped(c.table);
      },
      a.abort.signal,
      dumpProgress(a),
    );
  } catch (e) {
    await sink.settleDump().catch(() => {});
    throw e;
  }
  await sink.settleDump();
  if (a.abort.signal.aborted) return undefined;
  // Tables the dump swept as it finished them (marked done) are not scanned again.
  const progress = a.snapshots ?? {};
  const left = (t: string) => progress[t]?.state !== "done";
  const owns = result.owns;
  const swept = await sink.sweep(
    result.tables.filter(left),
    a.dumpRevision,
    owns && ((t) => left(t) && owns(t)),
  );
  const position = result.position;
  await sink.writeState(stateAt(a, position));
  a.status.snapshots = a.snapshots ?? {};
  a.session.confirm(position);
  a.status.position = position;
  log.info("dump done", { tables: result.tables.length, swept, position: fmtPos(position) });
  if (!result.tables.length) {
    log.warn("no table is replicated: check --tables and --exclude (and primary keys)");
  }
  return position;
}

/**
 * The state during a dump: every table `running` at the snapshot's position, each marked
 * `done` once its rows are in etcd and swept, so a dump cut short resumes with online
 * snapshots of the tables it had not finished (design: Snapshots).
 */
function dumpProgress(a: Attempt): DumpProgress {
  let at: Position = {};
  let chain: Promise<void> = Promise.resolve();
  const save = (f: () => Promise<void>) => (chain = chain.then(f));
  return {
    started(position, tables) {
      at = position;
      const started = new Date().toISOString();
      const running = { state: "running", after: null, rows: 0, started } as const;
      a.snapshots = Object.fromEntries(tables.map((t) => [t, running]));
      return save(() => a.o.sink.writeState(stateAt(a, at)));
    },
    finished(table, rows) {
      return save(async () => {
        await a.o.sink.settleDump();
        await a.o.sink.sweep([table], a.dumpRevision);
        const done = { state: "done", rows, at, done: new Date().toISOString() } as const;
        a.snapshots = { ...a.snapshots, [table]: done };
        await a.o.sink.writeState(stateAt(a, at));
      });
    },
  };
}

/** Stream from `position` through the pipeline until the attempt ends. */
async function follow(a: Attempt, position: Position, again?: string[]): Promise<void> {
  const { status, session } = a;
  status.resetBacklog();
  status.phase = "sync";
  const pipeline = new Pipeline(a.o.sink, (p, snap) => stateAt(a, p, snap), {
    onCommitted(p, batches) {
      session.confirm(p);
      for (const b of batches) if (b.commit?.snapshot) status.snapshots = b.commit.snapshot;
      status.backlog = pipeline.backlog;
      status.position = p;
      committed(status, batches);
    },
  });
  const applying = pipeline.run().catch((e) => {
    a.abort.abort();
    throw e;
  });
  // Awaited only once the stream has ended; until then a sink failure (etcd down) must
  // not count as an unhandled rejection, which would end the process instead of a retry.
  applying.catch(() => {});
  // A stop takes nothing new from the source, lets the pipeline commit what it holds
  // (each commit confirmed while the replication connection is still open), and only
  // then ends the stream, so the source learns the last committed position. What is
  // dropped was never applied nor confirmed: the next run reads it again.
  let draining = false;
  a.drain = () => {
    draining = true;
    pipeline.close();
    applying.then(() => a.abort.abort(), () => a.abort.abort());
  };
  let streamError: unknown;
  const push = async (batch: ChangeBatch) => {
    status.backlog += batch.changes.length;
    if (batch.commit?.time) status.transactionRead(batch.commit.time);
    await pipeline.push(batch);
  };
  const context = {
    settings: a.o.snapshots,
    session,
    log: a.o.log,
    status,
    progress: a.snapshots,
  };
  const snapshots = startSnapshots(context, position, push, (e) => {
    streamError ??= e;
    a.abort.abort();
  }, () => pipeline.settled());
  if (again?.length) snapshots.request(again);
  try {
    await session.stream(position, async (batch) => {
      if (draining) return;
      await snapshots.take(batch);
    }, a.abort.signal);
  } catch (e) {
    streamError ??= e;
  } finally {
    snapshots.stop();
  }
  // Finish what was read (unless etcd itself failed), so the last position is confirmed.
  pipeline.close();
  await applying;
  if (streamError && !a.o.signal.aborted) throw streamError;
}

/** Count what the sink committed. */
function committed(status: Status, batches: readonly ChangeBatch[]): void {
  status.transactionsApplied(batches.filter((b) => b.commit?.time).length);
  for (const b of batches) {
    // A commit without a time only moves the position (an idle source's heartbeat):
    // it is no transaction, and taking it for one made an idle sync look lagging.
    if (b.commit?.time) {
      status.transactions++;
      status.lastCommitTime = b.commit.time;
    }
    if (b.fromSnapshot) continue;
    // Counted by runs of one table and kind: one label string per run, not per change.
    let run = 0;
    for (let i = 0; i < b.changes.length; i++) {
      const c = b.changes[i], next = b.changes[i + 1];
      run++;
      if (next?.table === c.table && next.op === c.op) continue;
      status.count(status.changes, `${c.table}\t${c.op}`, run);
      run = 0;
    }
  }
  if (batches.some((b) => b.commit?.time)) status.lastApplied = new Date();
}

function fmtPos(p: Position): string {
  return Object.entries(p).map(([k, v]) => `${k}=${v}`).join(",");
}
