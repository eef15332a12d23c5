/**
 * The state key and the key beside it that holds the replicated tables' definitions
 * (design: Position and state). The definitions change rarely and can be large, so they
 * are written only in a transaction whose state carries changed ones: each of those
 * transactions holds the position and the definitions that belong together.
 */
import type { Log } from "../core/log.ts";
import type { SavedState } from "../core/source.ts";
import type { TableDefinitions } from "../core/tables.ts";
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
  /** The definitions etcd holds now (same object: unchanged). */
  #written?: TableDefinitions;

  constructor(key: string) {
    this.key = key;
    this.tablesKey = `${key}/tables`;
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
    const tables = await client.get(this.tablesKey);
    if (tables === undefined) return state;
    try {
      return { ...state, tables: JSON.parse(tables) as TableDefinitions };
    } catch {
      log.warn("table definitions hold no valid JSON; starting over", { key: this.tablesKey });
      return null;
    }
  }

  /** The puts that record `state`: its definitions only when they are not in etcd yet. */
  ops(state: SavedState): StateOps {
    const { tables, ...rest } = state;
    const value = JSON.stringify(rest);
    const ops: TxnOp[] = [{ put: { key: this.key, value } }];
    let bytes = opSize(this.key, utf8.encode(value).length);
    if (tables && tables !== this.#written) {
      const defs = JSON.stringify(tables);
      ops.push({ put: { key: this.tablesKey, value: defs } });
      bytes += opSize(this.tablesKey, utf8.encode(defs).length);
    }
    return { ops, bytes };
  }

  /** A transaction carrying `state` committed. */
  committed(state: SavedState): void {
    if (state.tables) this.#written = state.tables;
  }

  /** etcd's definitions are no longer known to match (a dump starts). */
  forget(): void {
    this.#written = undefined;
  }
}
