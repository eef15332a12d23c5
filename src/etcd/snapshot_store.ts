/** What an online snapshot reads of etcd: the current rows of a chunk, a table's keys. */
import { fullKey, tablePrefix } from "../core/keys.ts";
import type { SnapshotStore } from "../core/snapshot_types.ts";
import type { EtcdClient } from "./client.ts";

const dec = new TextDecoder();

export class EtcdSnapshotStore implements SnapshotStore {
  readonly #client: EtcdClient;
  readonly #prefix: string;
  readonly #perTxn: number;
  readonly #requestKey?: string;

  /**
   * `maxOps`: etcd's --max-txn-ops, which bounds the reads one transaction may carry too;
   * `requestKey`: where `sync snapshot` leaves its requests.
   */
  constructor(client: EtcdClient, prefix: string, maxOps = 128, requestKey?: string) {
    this.#client = client;
    this.#prefix = prefix;
    this.#perTxn = Math.max(1, maxOps);
    this.#requestKey = requestKey;
  }

  async request(): Promise<{ tables: string[]; revision: number } | undefined> {
    if (!this.#requestKey) return undefined;
    const kv = (await this.#client.range(this.#requestKey)).kvs[0];
    if (!kv) return undefined;
    try {
      const v = JSON.parse(dec.decode(kv.value));
      if (Array.isArray(v.tables)) {
        return { tables: v.tables.map(String), revision: kv.modRevision };
      }
    } catch {
      // Not written by `sync snapshot`: nothing to act on.
    }
    return undefined;
  }

  async current(table: string, keys: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    // Reads grouped into transactions, the groups sent at once: one round trip a chunk.
    const groups: string[][] = [];
    for (let i = 0; i < keys.length; i += this.#perTxn) {
      groups.push(keys.slice(i, i + this.#perTxn));
    }
    await Promise.all(groups.map(async (group) => {
      const r = await this.#client.txn({
        success: group.map((k) => ({ range: { key: fullKey(this.#prefix, table, k) } })),
      });
      group.forEach((k, j) => {
        const kv = r.ranges[j]?.[0];
        if (kv) out.set(k, dec.decode(kv.value));
      });
    }));
    return out;
  }

  async keys(table: string): Promise<string[]> {
    const start = tablePrefix(this.#prefix, table);
    const out: string[] = [];
    for await (const kv of this.#client.scan(start, { keysOnly: true, pageSize: 10_000 })) {
      out.push(kv.key.slice(start.length));
    }
    return out;
  }
}
