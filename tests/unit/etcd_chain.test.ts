/**
 * The stream's transactions go to etcd two at a time (src/etcd/chain.ts) and must still be
 * applied in commit order. Here an in-memory etcd applies and answers each request after its
 * own seeded delay, so a request often overtakes the one sent before it, answers come back
 * out of order, and chosen requests fail before or after being applied. Whatever happens,
 * the keys and the state etcd ends with are those of applying the source transactions one
 * by one, and no applied transaction ever takes a key or the state back to an older one.
 */
import { assert, assertEquals } from "../../testing/assert.ts";
import { MemoryEtcd } from "../../testing/memory_etcd.ts";
import type { ChangeBatch, Position } from "../../src/core/change.ts";
import type { TxnRequest, TxnResult } from "../../src/etcd/client.ts";
import { EtcdSink } from "../../src/etcd/sink.ts";
import type { SavedState } from "../../src/core/source.ts";
import { Rng } from "../../scripts/torture_lib/prng.ts";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dec = new TextDecoder();

/** Applies and answers every request after a seeded delay; may fail chosen ones. */
class Shuffled extends MemoryEtcd {
  inFlight = 0;
  most = 0;
  requests = 0;
  /** Request numbers (1-based) that fail before being applied / after (answer lost). */
  failBefore = new Set<number>();
  failAfter = new Set<number>();

  constructor(readonly rng: Rng) {
    super();
  }

  override async txn(req: TxnRequest): Promise<TxnResult> {
    const n = ++this.requests;
    this.most = Math.max(this.most, ++this.inFlight);
    try {
      await tick(this.rng.int(0, 3));
      if (this.failBefore.has(n)) {
        // Its successor, if one is in flight, reaches etcd first.
        for (let i = 0; i < 10 && this.requests === n; i++) await tick(1);
        await tick(5);
        throw new Error(`request ${n}: connection reset`);
      }
      const r = this.apply(req);
      this.sent.push({ req, rev: r.revision, ok: r.succeeded });
      await tick(this.rng.int(0, 3));
      if (this.failAfter.has(n)) throw new Error(`request ${n}: answer lost`);
      return r;
    } finally {
      this.inFlight--;
    }
  }
}

const stateAt = (position: Position): SavedState => ({
  driver: "pgx",
  source: { system: "test" },
  position,
  dumpRevision: 0,
  updatedAt: "2026-12-02T00:00:00Z",
});

/** Source transaction n: 1-12 keys of 30 (12 is more than one etcd transaction holds). */
function workload(seed: number, count: number): ChangeBatch[] {
  const r = new Rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const n = i + 1;
    const keys = new Set(
      Array.from({ length: r.int(1, r.chance(0.1) ? 12 : 4) }, () => r.int(1, 30)),
    );
    return {
      changes: [...keys].map((k) => ({
        op: "put" as const,
        table: "t",
        key: String(k),
        columns: ["id", "n"],
        cells: [String(k), String(n)],
      })),
      commit: { position: { lsn: String(n) }, time: new Date(0) },
    };
  });
}

/** The keys after source transactions 1..upto, applied one by one. */
function expected(batches: ChangeBatch[], upto: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const b of batches.slice(0, upto)) {
    for (const c of b.changes) if (c.op === "put") out[`/p/t/${c.key}`] = c.cells[1] as string;
  }
  return out;
}

function data(etcd: MemoryEtcd): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(etcd.dump())) {
    if (k.startsWith("/p/t/")) out[k] = String(JSON.parse(v).n);
  }
  return out;
}

const position = (etcd: MemoryEtcd) => Number(JSON.parse(etcd.dump()["/p-state/s"]).position.lsn);

/** No applied transaction takes a key or the state back to an older source transaction. */
function neverBackwards(etcd: MemoryEtcd): void {
  const last = new Map<string, number>();
  for (const s of etcd.sent) {
    if (!s.ok) continue;
    for (const op of s.req.success) {
      if (!("put" in op)) continue;
      const v = JSON.parse(
        typeof op.put.value === "string" ? op.put.value : dec.decode(op.put.value),
      );
      const n = Number(op.put.key === "/p-state/s" ? v.position.lsn : v.n);
      assert(
        n >= (last.get(op.put.key) ?? 0),
        `${op.put.key} went back from ${last.get(op.put.key)} to ${n}`,
      );
      last.set(op.put.key, n);
    }
  }
}

/** Stream `batches` in calls of 1-20 source transactions, resuming after failures. */
async function stream(sink: EtcdSink, batches: ChangeBatch[]): Promise<number> {
  const r = new Rng(7);
  let failures = 0;
  let done = Number((await sink.readState())?.position.lsn ?? 0);
  while (done < batches.length) {
    const take = batches.slice(done, done + r.int(1, 20));
    try {
      const p = await sink.apply(take, stateAt);
      assertEquals(p, take[take.length - 1].commit!.position);
      done += take.length;
    } catch (e) {
      assert(/connection reset|answer lost/.test((e as Error).message), String(e));
      failures++;
      // As the service's next attempt does: read the state, resume from it.
      done = Number((await sink.readState())?.position.lsn ?? 0);
    }
  }
  return failures;
}

Deno.test("chain: two in flight, overtaken and out-of-order answers, order kept", async () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const etcd = new Shuffled(new Rng(seed));
    const sink = new EtcdSink(etcd, { prefix: "/p", stateKey: "/p-state/s", maxTxnOps: 8 });
    const batches = workload(seed, 300);
    await sink.writeState(stateAt({ lsn: "0" }));
    assertEquals(await stream(sink, batches), 0);
    assertEquals(data(etcd), expected(batches, 300), `seed ${seed}`);
    assertEquals(position(etcd), 300);
    neverBackwards(etcd);
    assert(etcd.most >= 2, `seed ${seed}: at most ${etcd.most} in flight`);
    const refused = etcd.sent.filter((s) => !s.ok).length;
    assert(refused > 0, `seed ${seed}: no request overtook its predecessor`);
  }
});

Deno.test("chain: a request failing before or after it applied loses and repeats nothing", async () => {
  for (const seed of [11, 12, 13, 14]) {
    const etcd = new Shuffled(new Rng(seed));
    const sink = new EtcdSink(etcd, { prefix: "/p", stateKey: "/p-state/s", maxTxnOps: 8 });
    const batches = workload(seed, 200);
    for (let n = 20; n < 200; n += 37) (seed % 2 ? etcd.failBefore : etcd.failAfter).add(n);
    await sink.writeState(stateAt({ lsn: "0" }));
    assert(await stream(sink, batches) >= 3, `seed ${seed}: too few failures`);
    assertEquals(data(etcd), expected(batches, 200), `seed ${seed}`);
    assertEquals(position(etcd), 200);
    neverBackwards(etcd);
  }
});

Deno.test("chain: a failed transaction's successor is not applied after it", async () => {
  const etcd = new Shuffled(new Rng(21));
  const sink = new EtcdSink(etcd, { prefix: "/p", stateKey: "/p-state/s", maxTxnOps: 8 });
  const batches = workload(21, 60);
  await sink.writeState(stateAt({ lsn: "0" }));
  etcd.failBefore.add(6);
  const e = await sink.apply(batches, stateAt).then(() => undefined, (e) => e as Error);
  assert(e?.message.includes("connection reset"), String(e));
  await tick(20);
  // What etcd holds is a prefix of the stream, with its position.
  const at = position(etcd);
  assertEquals(data(etcd), expected(batches, at));
  neverBackwards(etcd);
  assert(etcd.requests > 6, "no successor was in flight");
});
