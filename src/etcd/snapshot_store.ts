/** What an online snapshot reads of etcd: the current rows of a chunk, a table's keys. */
import { fullKey, tablePrefix } from "../core/keys.ts";
import type { SnapshotRequest, SnapshotStore } from "../core/snapshot_types.ts";
import type { EtcdClient, KeyValue } from "./client.ts";

const dec = new TextDecoder();

export class EtcdSnapshotStore implements SnapshotStore {
  readonly #client: EtcdClient;
  readonly #prefix: string;
  readonly #perTxn: number;
  readonly #requests?: string;

  /**
   * `maxOps`: etcd's --max-txn-ops, which bounds the reads one transaction may carry too;
   * `requests`: the prefix under which `sync snapshot` leaves its requests.
   */
  constructor(client: EtcdClient, prefix: string, maxOps = 128, requests?: string) {
    this.#client = client;
    this.#prefix = prefix;
    this.#perTxn = Math.max(1, maxOps);
    this.#requests = requests;
  }

  async requests(): Promise<SnapshotRequest[]> {
    if (!this.#requests) return [];
    const start = this.#requests;
    const kvs: KeyValue[] = [];
    for await (const kv of this.#client.scan(start)) kvs.push(kv);
    // Oldest first: the order they were made in, whatever their ids.
    kvs.sort((a, b) => a.createRevision - b.createRevision);
    return kvs.map((kv) => ({ id: kv.key.slice(start.length), tables: tablesOf(kv.value) }));
  }

  async dismiss(id: string): Promise<void> {
    if (this.#requests) await this.#client.deleteRange(this.#requests + id);
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

/** The tables a request names; none when it was not written by `sync snapshot`. */
function tablesOf(value: Uint8Array): string[] {
  try {
    const v = JSON.parse(dec.decode(value));
    if (Array.isArray(v?.tables)) return v.tables.map(String);
  } catch {
    // Not ours: nothing to act on (and dismissed).
  }
  return [];
}
