/**
 * The state key and the key beside it that holds the replicated tables' definitions
 * (design: Position and state). The definitions change rarely and can be large, so they
 * are written only in a transaction whose state carries changed ones: each of those
 * transactions holds the position and the definitions that belong together.
 */
import type { Log } from "../core/log.ts";
import type { SavedState } from "../core/source.ts";
import type { TableDefinitions } from "../core/tables.ts";
import type { SnapshotProgress } from "../core/snapshot_types.ts";
import { type EtcdClient, opSize, type TxnOp } from "./client.ts";

const utf8 = new TextEncoder();

/** What recording a state adds to a transaction. */
export interface StateOps {
  ops: TxnOp[];
  bytes: number;
}

export class StateKeys {
  readonly key: string;
  /** `<state key>/tables`: beside the state key, like its `/leader` election. */
  readonly tablesKey: string;
  /** `<state key>/snapshots`: each table's online snapshot. */
  readonly snapshotsKey: string;
  /** `<state key>/snapshot-request`: tables `sync snapshot` asks to read again. */
  readonly requestKey: string;
  /** The definitions etcd holds now (same object: unchanged). */
  #written?: TableDefinitions;
  /** The snapshot progress etcd holds now (same object: unchanged). */
  #snapshots?: SnapshotProgress;

  constructor(key: string) {
    this.key = key;
    this.tablesKey = `${key}/tables`;
    this.snapshotsKey = `${key}/snapshots`;
    this.requestKey = `${key}/snapshot-request`;
  }

  /** The state key and the keys beside it (definitions, snapshots and their requests). */
  all(): string[] {
    return [this.key, this.tablesKey, this.snapshotsKey, this.requestKey];
  }

  /** The saved state with its definitions, or null when there is none or it is unreadable. */
  async read(client: EtcdClient, log: Log): Promise<SavedState | null> {
    const raw = await client.get(this.key);
    if (raw === undefined) return null;
    let state: SavedState;
    try {
      state = JSON.parse(raw) as SavedState;
    } catch {
      log.warn("state key holds no valid JSON; starting over", { key: this.key });
      return null;
    }
    const beside = [
      ["tables", this.tablesKey, "table definitions"],
      ["snapshots", this.snapshotsKey, "snapshot progress"],
    ];
    for (const [field, key, what] of beside) {
      const raw = await client.get(key);
      if (raw === undefined) continue;
      try {
        state = { ...state, [field]: JSON.parse(raw) };
      } catch {
        log.warn(`${what} hold no valid JSON; starting over`, { key });
        return null;
      }
    }
    return state;
  }

  /** The puts that record `state`: its definitions only when they are not in etcd yet. */
  ops(state: SavedState): StateOps {
    const { tables, snapshots, ...rest } = state;
    const value = JSON.stringify(rest);
    const ops: TxnOp[] = [{ put: { key: this.key, value } }];
    let bytes = opSize(this.key, utf8.encode(value).length);
    if (tables && tables !== this.#written) {
      const defs = JSON.stringify(tables);
      ops.push({ put: { key: this.tablesKey, value: defs } });
      bytes += opSize(this.tablesKey, utf8.encode(defs).length);
    }
    if (snapshots && snapshots !== this.#snapshots) {
      const v = JSON.stringify(snapshots);
      ops.push({ put: { key: this.snapshotsKey, value: v } });
      bytes += opSize(this.snapshotsKey, utf8.encode(v).length);
    }
    return { ops, bytes };
  }

  /** A transaction carrying `state` committed. */
  committed(state: SavedState): void {
    if (state.tables) this.#written = state.tables;
    if (state.snapshots) this.#snapshots = state.snapshots;
  }

  /** etcd's definitions are no longer known to match (a dump starts). */
  forget(): void {
    this.#written = undefined;
    this.#snapshots = undefined;
  }
}
