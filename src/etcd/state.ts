/**
 * The state key and the key beside it that holds the replicated tables' definitions
 * (design: Position and state). The definitions change rarely and can be large, so they
 * are written only in a transaction whose state carries changed ones: each of those
 * transactions holds the position and the definitions that belong together.
 *
 * It also fences late writes (docs/topologies.md, "Late writes"): a transaction that sat in
 * a frozen member's socket and is applied after newer ones must not overwrite them. Every
 * transaction compares the state key's mod revision with the one this process last saw
 * (rows of a dump: the dump marker's instead), so one sent before the state moved fails.
 */
import type { Log } from "../core/log.ts";
import type { SavedState } from "../core/source.ts";
import { FencedError } from "../core/sink.ts";
import type { TableDefinitions } from "../core/tables.ts";
import type { SnapshotProgress } from "../core/snapshot_types.ts";
import {
  type EtcdClient,
  type KeyValue,
  opSize,
  prefixEnd,
  type TxnCompare,
  type TxnOp,
  type TxnResult,
} from "./client.ts";
import { utf8Length } from "./pending.ts";

const dec = new TextDecoder();

/** What recording a state adds to a transaction. */
export interface StateOps {
  ops: TxnOp[];
  bytes: number;
  /** The state key's value. */
  value: string;
}

/**
 * etcd's state moved under this process: a late write landed, or another process wrote the
 * state. Nothing was written; the next attempt reads the state again and resumes from it.
 */
export class StateMovedError extends Error {
  override name = "StateMovedError";
}

export { FencedError };

export class StateKeys {
  readonly key: string;
  /** `<state key>/tables`: beside the state key, like its `/leader` election. */
  readonly tablesKey: string;
  /** `<state key>/snapshots`: each table's online snapshot. */
  readonly snapshotsKey: string;
  /**
   * `<state key>/snapshot-requests/`: one key per `sync snapshot` request, so a second one
   * never replaces a first not yet taken; deleted with the state that records it taken.
   */
  readonly requestsPrefix: string;
  /** `<state key>/dump`: put when a dump starts, deleted before the stream first writes. */
  readonly dumpKey: string;
  /** The state key's mod revision as this process last saw it (0: absent; not read yet). */
  #rev?: number;
  /** Its value then (put again unchanged to move the fence, see `touch`). */
  #raw?: string;
  /** Its create revision (0: absent) and version then. */
  #create = 0;
  #version = 0;
  /**
   * Where the stream transactions in flight leave the state key (each of them puts it):
   * its version and value. Undefined: not known, the next one waits for them (`chain`).
   */
  #ahead?: { version: number; raw: string };
  /** The dump marker's mod revision (0: no dump open). */
  #dumpRev = 0;
  /** The definitions etcd holds now (same object: unchanged). */
  #written?: TableDefinitions;
  /** The snapshot progress etcd holds now (same object: unchanged). */
  #snapshots?: SnapshotProgress;
  /** Requests that etcd's progress records as taken: their keys are gone. */
  readonly #taken = new Set<string>();

  constructor(key: string) {
    this.key = key;
    this.tablesKey = `${key}/tables`;
    this.snapshotsKey = `${key}/snapshots`;
    this.requestsPrefix = `${key}/snapshot-requests/`;
    this.dumpKey = `${key}/dump`;
  }

  /** The state key and the keys beside it (definitions, snapshots, dump marker). */
  all(): string[] {
    return [this.key, this.tablesKey, this.snapshotsKey, this.dumpKey];
  }

  /** Where the request `id` waits. */
  requestKey(id: string): string {
    return this.requestsPrefix + id;
  }

  /** Deletes every waiting request (a dump reads every table anyway; `sync drop`). */
  dropRequests(): TxnOp {
    return { delete: { key: this.requestsPrefix, rangeEnd: prefixEnd(this.requestsPrefix) } };
  }

  /** A dump's rows may still be written under the marker: close it before streaming. */
  get dumpOpen(): boolean {
    return this.#dumpRev !== 0;
  }

  /** Learn the fences' revisions if nothing was read or written yet (a sink used alone). */
  async known(client: EtcdClient): Promise<void> {
    if (this.#rev !== undefined) return;
    const keys = [this.key, this.dumpKey];
    const r = await client.txn({ success: keys.map((key) => ({ range: { key } })) });
    if (this.#rev !== undefined) return;
    const [main, dump] = r.ranges.map((kvs) => kvs?.[0]);
    this.#saw(main);
    this.#dumpRev = dump?.modRevision ?? 0;
  }

  /** The state key as read from etcd (undefined: absent). */
  #saw(kv: KeyValue | undefined): void {
    this.#rev = kv?.modRevision ?? 0;
    this.#raw = kv ? dec.decode(kv.value) : undefined;
    this.#create = kv?.createRevision ?? 0;
    this.#version = kv?.version ?? 0;
    this.#ahead = undefined;
  }

  /** What a transaction that writes or follows the state compares: its mod revision. */
  stateFence(): TxnCompare {
    return { key: this.key, target: "MOD", result: "EQUAL", modRevision: this.#rev ?? 0 };
  }

  /** What a dump's rows and sweeps compare: no other dump began, and this one is open. */
  dumpFence(): TxnCompare {
    return { key: this.dumpKey, target: "MOD", result: "EQUAL", modRevision: this.#dumpRev };
  }

  /** Reads a refused transaction's failure branch makes to tell why it was refused. */
  failureReads(): TxnOp[] {
    return [{ range: { key: this.key } }, { range: { key: this.dumpKey } }];
  }

  /**
   * Throw for a refused transaction (its failure branch made `failureReads`): the fences'
   * keys moved under this process, or else another compare (leadership, `--ha`) failed.
   */
  refused(r: TxnResult, dump: boolean): void {
    if (r.succeeded) return;
    const rev = (kvs?: KeyValue[]) => kvs?.[0]?.modRevision ?? 0;
    if (rev(r.ranges[0]) !== this.#rev || (dump && rev(r.ranges[1]) !== this.#dumpRev)) {
      throw new StateMovedError(
        "etcd's sync state moved since this process last wrote it (a late write, or another " +
          "sync on this source); reading it again",
      );
    }
    throw new FencedError("lost leadership: another sync instance took over");
  }

  /**
   * Begin a dump: delete the state and the keys beside it, and put a new dump marker (rows
   * of an earlier dump, landing late, no longer match it). Returns the revision.
   */
  async startDump(client: EtcdClient, fence: TxnCompare[]): Promise<number> {
    await this.known(client);
    const keys = this.all().filter((k) => k !== this.dumpKey);
    const r = await client.txn({
      compare: [...fence, this.stateFence(), this.dumpFence()],
      success: [
        ...keys.map((key) => ({ delete: { key } })),
        this.dropRequests(),
        { put: { key: this.dumpKey, value: JSON.stringify({ started: new Date() }) } },
      ],
      failure: this.failureReads(),
    });
    this.refused(r, true);
    this.#saw(undefined);
    this.#dumpRev = r.revision;
    return r.revision;
  }

  /** Before the stream's first write after a dump: no late dump row may land after it. */
  async closeDump(client: EtcdClient, fence: TxnCompare[]): Promise<void> {
    const r = await client.txn({
      compare: [...fence, this.stateFence(), this.dumpFence()],
      success: [{ delete: { key: this.dumpKey } }],
      failure: this.failureReads(),
    });
    this.refused(r, true);
    this.#dumpRev = 0;
  }

  /**
   * The state key put again with its position (unchanged), for a transaction that carries
   * part of a source transaction: a replay of an earlier part then finds it moved. `leader`
   * as in `ops`.
   */
  touch(leader?: string): TxnOp[] {
    let value = this.#ahead?.raw ?? this.#raw;
    if (value === undefined) return [];
    if (leader !== undefined) {
      try {
        value = JSON.stringify({ ...JSON.parse(value), leader });
      } catch { /* not ours to mend: read() says so at the next attempt */ }
    }
    return [{ put: { key: this.key, value } }];
  }

  /**
   * A transaction that put the state key with `value` committed at `revision` (called in
   * the order they were applied).
   */
  wrote(revision: number, value: string): void {
    if (!this.#rev) [this.#create, this.#version] = [revision, 0];
    this.#version++;
    this.#rev = revision;
    this.#raw = value;
    if (this.#ahead && this.#ahead.version <= this.#version) this.#ahead = undefined;
  }

  /**
   * The compares that order a stream transaction after those in flight: the state key's
   * incarnation and the version they leave it at, as exact a fence as its mod revision.
   * Undefined when that is not known (nothing in flight, the key not created yet, or one
   * in flight that does not put it): then the transaction waits for those in flight and
   * compares `stateFence`, and the ones after it wait for it.
   */
  chain(): TxnCompare[] | undefined {
    const a = this.#ahead;
    if (!a || !this.#create) return undefined;
    return [
      { key: this.key, target: "CREATE", result: "EQUAL", createRevision: this.#create },
      { key: this.key, target: "VERSION", result: "EQUAL", version: a.version },
    ];
  }

  /** Nothing is in flight: only the answers received tell what etcd holds. */
  settled(): void {
    this.#ahead = undefined;
  }

  /** A stream transaction is sent; `value`: what it puts in the state key, if it does. */
  sending(value: string | undefined): void {
    this.#ahead = value === undefined || !this.#create
      ? undefined
      : { version: (this.#ahead?.version ?? this.#version) + 1, raw: value };
  }

  /**
   * The saved state with its definitions, or null when there is none or it is unreadable;
   * read in one transaction, which also gives the fences their revisions.
   */
  async read(client: EtcdClient, log: Log): Promise<SavedState | null> {
    const keys = [this.key, this.tablesKey, this.snapshotsKey, this.dumpKey];
    const r = await client.txn({ success: keys.map((key) => ({ range: { key } })) });
    const [main, tables, snapshots, dump] = r.ranges.map((kvs) => kvs?.[0]);
    this.#saw(main);
    this.#dumpRev = dump?.modRevision ?? 0;
    if (this.#raw === undefined) return null;
    let state: SavedState;
    try {
      state = JSON.parse(this.#raw) as SavedState;
    } catch {
      log.warn("state key holds no valid JSON; starting over", { key: this.key });
      return null;
    }
    const beside = [
      ["tables", tables, "table definitions"],
      ["snapshots", snapshots, "snapshot progress"],
    ] as const;
    for (const [field, kv, what] of beside) {
      if (kv === undefined) continue;
      try {
        state = { ...state, [field]: JSON.parse(dec.decode(kv.value)) };
        if (field === "snapshots") this.#noteTaken(state.snapshots);
      } catch {
        log.warn(`${what} hold no valid JSON; starting over`, { key: kv.key });
        return null;
      }
    }
    return state;
  }

  /**
   * The puts that record `state`: its definitions only when they are not in etcd yet.
   * `leader`: the `--ha` leader key the transaction is fenced by, recorded with the state so
   * etcd's history tells which leader wrote each state.
   */
  ops(state: SavedState, leader?: string): StateOps {
    const { tables, snapshots, ...rest } = state;
    const value = JSON.stringify(leader === undefined ? rest : { ...rest, leader });
    const ops: TxnOp[] = [{ put: { key: this.key, value } }];
    let bytes = opSize(this.key, utf8Length(value));
    if (tables && tables !== this.#written) {
      const defs = JSON.stringify(tables);
      ops.push({ put: { key: this.tablesKey, value: defs } });
      bytes += opSize(this.tablesKey, utf8Length(defs));
    }
    if (snapshots && snapshots !== this.#snapshots) {
      const v = JSON.stringify(snapshots);
      ops.push({ put: { key: this.snapshotsKey, value: v } });
      bytes += opSize(this.snapshotsKey, utf8Length(v));
      // A request is taken in the transaction that records it: never lost, never done twice.
      for (const id of newlyTaken(snapshots, this.#taken)) {
        const key = this.requestKey(id);
        ops.push({ delete: { key } });
        bytes += opSize(key, 0);
      }
    }
    return { ops, bytes, value };
  }

  /** A transaction carrying `state` committed. */
  committed(state: SavedState): void {
    if (state.tables) this.#written = state.tables;
    if (state.snapshots) {
      this.#snapshots = state.snapshots;
      this.#noteTaken(state.snapshots);
    }
  }

  #noteTaken(progress: SnapshotProgress | undefined): void {
    for (const id of newlyTaken(progress ?? {}, this.#taken)) this.#taken.add(id);
  }

  /** etcd's definitions are no longer known to match (a dump starts). */
  forget(): void {
    this.#written = undefined;
    this.#snapshots = undefined;
  }
}

/** The requests `progress` records that are not in `taken`. */
function newlyTaken(progress: SnapshotProgress, taken: ReadonlySet<string>): string[] {
  const out = new Set<string>();
  for (const s of Object.values(progress)) {
    for (const id of s.requests ?? []) if (!taken.has(id)) out.add(id);
  }
  return [...out];
}
