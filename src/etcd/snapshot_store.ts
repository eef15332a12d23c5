/** What an online snapshot reads of etcd: the current rows of a chunk, a table's keys. */
import { fullKey, tablePrefix } from "../core/keys.ts";
import type { SnapshotStore } from "../core/snapshot_types.ts";
import type { EtcdClient } from "./client.ts";

const dec = new TextDecoder();

export class EtcdSnapshotStore implements SnapshotStore {
  readonly #client: EtcdClient;
  readonly #prefix: string;
  readonly #perTxn: number;

  /** `maxOps`: etcd's --max-txn-ops, which bounds the reads one transaction may carry too. */
  constructor(client: EtcdClient, prefix: string, maxOps = 128) {
    this.#client = client;
    this.#prefix = prefix;
    this.#perTxn = Math.max(1, maxOps);
  }

  async current(table: string, keys: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    // Reads grouped into transactions: one round trip per group instead of per key.
    for (let i = 0; i < keys.length; i += this.#perTxn) {
      const group = keys.slice(i, i + this.#perTxn);
      const r = await this.#client.txn({
        success: group.map((k) => ({ range: { key: fullKey(this.#prefix, table, k) } })),
      });
      group.forEach((k, j) => {
        const kv = r.ranges[j]?.[0];
        if (kv) out.set(k, dec.decode(kv.value));
      });
    }
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
