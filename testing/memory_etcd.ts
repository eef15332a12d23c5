/**
 * etcd's key-value store in memory for unit tests of the sink: revisions, compares, ranges
 * and history as etcd's MVCC store keeps them, every transaction recorded.
 */
import {
  EtcdClient,
  type KeyValue,
  type RangeOptions,
  type RangeResult,
  type TxnCompare,
  type TxnRequest,
  type TxnResult,
} from "../src/etcd/client.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** etcd's key-value store in memory: one revision per writing transaction, full history. */
export class MemoryEtcd extends EtcdClient {
  rev = 1;
  kvs = new Map<string, KeyValue>();
  /** The store as each revision left it (for reads at a revision). */
  #history = new Map<number, Map<string, KeyValue>>([[1, new Map()]]);
  /** Every transaction the sink sent, in order, with the revision it committed at. */
  sent: { req: TxnRequest; rev: number; ok: boolean }[] = [];
  /** Sent transactions stay unanswered until released (a frozen member's socket). */
  hold = false;
  held: (() => void)[] = [];

  constructor() {
    super({ endpoints: ["http://memory"], memberSyncMs: 0 });
  }

  override async txn(req: TxnRequest): Promise<TxnResult> {
    if (this.hold) await new Promise<void>((r) => this.held.push(r));
    const r = this.apply(req);
    this.sent.push({ req, rev: r.revision, ok: r.succeeded });
    return r;
  }

  /** Apply a transaction as etcd does, without recording it (a replay). */
  apply(req: TxnRequest): TxnResult {
    const ok = (req.compare ?? []).every((c) => this.#holds(c));
    const next = new Map(this.kvs);
    const ranges: (KeyValue[] | undefined)[] = [];
    let wrote = false;
    for (const op of ok ? req.success : req.failure ?? []) {
      if ("range" in op) ranges.push(this.#read(this.kvs, op.range.key, op.range.rangeEnd));
      else if ("put" in op) {
        wrote = true;
        const old = next.get(op.put.key);
        const v = op.put.value;
        next.set(op.put.key, {
          key: op.put.key,
          value: typeof v === "string" ? enc.encode(v) : v,
          createRevision: old?.createRevision ?? this.rev + 1,
          modRevision: this.rev + 1,
          version: (old?.version ?? 0) + 1,
        });
        ranges.push(undefined);
      } else {
        for (const kv of this.#read(next, op.delete.key, op.delete.rangeEnd)) {
          wrote = true;
          next.delete(kv.key);
        }
        ranges.push(undefined);
      }
    }
    if (wrote) {
      this.rev++;
      this.kvs = next;
      this.#history.set(this.rev, next);
    }
    return { succeeded: ok, revision: this.rev, ranges };
  }

  override range(key: string, o: RangeOptions = {}): Promise<RangeResult> {
    let at = this.kvs;
    if (o.revision) {
      for (let r = o.revision; r >= 1; r--) {
        const h = this.#history.get(r);
        if (h) {
          at = h;
          break;
        }
      }
    }
    let kvs = this.#read(at, key, o.rangeEnd);
    const count = kvs.length;
    const limit = o.limit ?? 0;
    const more = limit > 0 && kvs.length > limit;
    if (more) kvs = kvs.slice(0, limit);
    if (o.countOnly) kvs = [];
    return Promise.resolve({ kvs, more, count, revision: this.rev });
  }

  #read(from: Map<string, KeyValue>, key: string, end?: string): KeyValue[] {
    if (end === undefined) return from.has(key) ? [from.get(key)!] : [];
    return [...from.values()]
      .filter((kv) => kv.key >= key && (end === "\0" || kv.key < end))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  #holds(c: TxnCompare): boolean {
    const kv = this.kvs.get(c.key);
    const [have, want] = c.target === "MOD"
      ? [kv?.modRevision ?? 0, c.modRevision ?? 0]
      : c.target === "CREATE"
      ? [kv?.createRevision ?? 0, c.createRevision ?? 0]
      : c.target === "VERSION"
      ? [kv?.version ?? 0, c.version ?? 0]
      : [kv ? dec.decode(kv.value) : undefined, c.value];
    if (c.target === "VALUE" && have === undefined) return false;
    if (c.result === "EQUAL") return have === want;
    if (c.result === "NOT_EQUAL") return have !== want;
    return c.result === "GREATER" ? have! > want! : have! < want!;
  }

  /** Every key with its value, for comparing the store before and after a replay. */
  dump(): Record<string, string> {
    return Object.fromEntries([...this.kvs].map(([k, kv]) => [k, dec.decode(kv.value)]));
  }
}
