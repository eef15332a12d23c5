/**
 * Late writes (docs/topologies.md, "Late writes"): a transaction sent to a member that froze
 * can sit in its socket and be applied after newer ones sent elsewhere. Here an in-memory
 * etcd (revisions, compares, ranges, as etcd's MVCC store does them) records every
 * transaction the sink sends; each one is then replayed at a later point, as a thawed member
 * would apply it, and must be refused with nothing written once anything newer touched the
 * keys it writes. The fence must not refuse what the pipelining sends at once (a dump's rows
 * and a snapshot chunk's parts, several in flight).
 */
import { assert, assertEquals, assertRejects } from "../../testing/assert.ts";
import type { ChangeBatch, Position } from "../../src/core/change.ts";
import { MemoryEtcd } from "../../testing/memory_etcd.ts";
import { EtcdSink, StateMovedError } from "../../src/etcd/sink.ts";
import type { SavedState } from "../../src/core/source.ts";

const put = (key: string, v: string) => ({
  op: "put" as const,
  table: "t",
  key,
  columns: ["id", "v"],
  cells: [key, JSON.stringify(v)],
});

/** A source transaction: puts of `v` on `keys`, ending at `lsn` (or left open). */
const txn = (keys: string[], v: string, lsn?: string): ChangeBatch => ({
  changes: keys.map((k) => put(k, v)),
  commit: lsn ? { position: { lsn }, time: new Date() } : undefined,
});

const stateAt = (position: Position): SavedState => ({
  driver: "pgx",
  source: { system: "test" },
  position,
  dumpRevision: 0,
  updatedAt: new Date().toISOString(),
});

const keys = (from: number, n: number) => Array.from({ length: n }, (_, i) => String(from + i));

function sinkOn(etcd: MemoryEtcd): EtcdSink {
  return new EtcdSink(etcd, { prefix: "/p", stateKey: "/p-state/s", maxTxnOps: 8 });
}

/** Replay transactions sent (default: all): each must be refused, writing nothing. */
function replayAll(etcd: MemoryEtcd, sent = etcd.sent): void {
  for (const [i, s] of sent.entries()) {
    if (!s.ok || s.req.success.every((op) => "range" in op)) continue;
    const before = etcd.dump();
    const rev = etcd.rev;
    const r = etcd.apply(s.req);
    assert(!r.succeeded, `transaction ${i} (rev ${s.rev}) applied again late`);
    assertEquals(etcd.dump(), before);
    assertEquals(etcd.rev, rev);
  }
}

Deno.test("late writes: every earlier transaction replayed after newer ones is refused", async () => {
  const etcd = new MemoryEtcd();
  const sink = sinkOn(etcd);
  assertEquals(await sink.readState(), null);
  // A dump: its start, rows four transactions in flight, the states it writes, its sweep.
  const start = await sink.startDump();
  await sink.writeState(stateAt({ lsn: "0/1" }));
  await sink.writeDump(txn(keys(1, 40), "dump", "0/1"));
  await sink.settleDump();
  await sink.sweep(["t"], start);
  await sink.writeState(stateAt({ lsn: "0/1" }));
  const dumped = etcd.sent.length;
  // The stream: group commits, then one source transaction too big for one etcd
  // transaction that writes keys 1..6 twice (its chunks overlap), then a small one.
  assertEquals(await sink.apply([txn(["1"], "a", "0/2"), txn(["2"], "b", "0/3")], stateAt), {
    lsn: "0/3",
  });
  const big = [txn(keys(1, 6), "first", undefined), txn(keys(7, 6), "x", undefined)];
  big.push(txn(keys(1, 6), "second", "0/4"));
  assertEquals(await sink.apply(big, stateAt), { lsn: "0/4" });
  assertEquals(await sink.apply([txn(["9"], "c", "0/5")], stateAt), { lsn: "0/5" });
  const value = (k: string) => JSON.parse(etcd.dump()[`/p/t/${k}`]).v;
  assertEquals(value("1"), "second");
  assert(etcd.sent.length - dumped >= 6, "the big transaction went in several chunks");
  replayAll(etcd);
  assertEquals(value("1"), "second");
  assertEquals(JSON.parse(etcd.dump()["/p-state/s"]).position, { lsn: "0/5" });
});

Deno.test("late writes: a chunk replayed before its transaction's last chunk is refused", async () => {
  const etcd = new MemoryEtcd();
  const sink = sinkOn(etcd);
  await sink.readState();
  await sink.apply([txn(["1"], "a", "0/1")], stateAt);
  // The first part of a source transaction, applied alone, then its second part: the
  // replayed first chunk (keys 1..6 "first") lands between the second and the end.
  const n = etcd.sent.length;
  await sink.apply(
    [txn(keys(1, 6), "first"), txn(keys(7, 6), "x"), txn(keys(1, 6), "second")],
    stateAt,
  );
  const chunks = etcd.sent.slice(n);
  assert(chunks.length >= 2, `${chunks.length} chunks`);
  const before = etcd.dump();
  assert(!etcd.apply(chunks[0].req).succeeded, "the first chunk applied again");
  assertEquals(etcd.dump(), before);
});

Deno.test("late writes: rows of an earlier dump, landing during the next, are refused", async () => {
  const etcd = new MemoryEtcd();
  const sink = sinkOn(etcd);
  await sink.readState();
  await sink.startDump();
  await sink.writeDump(txn(keys(1, 4), "old dump", "0/1"));
  await sink.settleDump();
  const n = etcd.sent.length;
  // The dump fails and starts again (nothing was streamed: the state key stays absent).
  await sink.startDump();
  await sink.writeDump(txn(keys(1, 4), "new dump", "0/2"));
  await sink.settleDump();
  replayAll(etcd, etcd.sent.slice(0, n));
  assertEquals(JSON.parse(etcd.dump()["/p/t/1"]).v, "new dump");
  // The open dump's own rows may land again while it runs (the same values, no other
  // writer yet); its end and the stream's first write close it, and then they are refused.
  await sink.writeState(stateAt({ lsn: "0/2" }));
  await sink.apply([txn(["1"], "streamed", "0/3")], stateAt);
  replayAll(etcd);
  assertEquals(JSON.parse(etcd.dump()["/p/t/1"]).v, "streamed");
});

Deno.test("late writes: the fence lets a dump's and a snapshot's parallel parts through", async () => {
  const etcd = new MemoryEtcd();
  const sink = sinkOn(etcd);
  await sink.readState();
  await sink.startDump();
  // Dump transactions answered only once all four are sent: they were in flight at once.
  etcd.hold = true;
  const writing = sink.writeDump(txn(keys(1, 28), "d", "0/1"));
  while (etcd.held.length < 4) await new Promise((r) => setTimeout(r, 1));
  // The dump's progress is written meanwhile (dumpProgress does so beside the rows).
  const state = sink.writeState(stateAt({ lsn: "0/1" }));
  while (etcd.held.length < 5) await new Promise((r) => setTimeout(r, 1));
  etcd.hold = false;
  for (const go of etcd.held.splice(0)) go();
  await writing;
  await state;
  await sink.settleDump();
  // A snapshot chunk (fromSnapshot) of 30 rows: parts several at once, then the state.
  // Held as before, and let go once several are in flight.
  const chunk: ChangeBatch = { ...txn(keys(100, 30), "snap", "0/2"), fromSnapshot: true };
  etcd.hold = true;
  let done = false;
  const applying = sink.apply([chunk], stateAt).finally(() => (done = true));
  applying.catch(() => {}); // awaited below, once let go
  let most = 0;
  while (!done) {
    await new Promise((r) => setTimeout(r, 2));
    most = Math.max(most, etcd.held.length);
    for (const go of etcd.held.splice(0)) go();
  }
  assertEquals(await applying, { lsn: "0/2" });
  assert(most >= 2, `parts in flight at once: ${most}`);
  assertEquals(Object.keys(etcd.dump()).filter((k) => k.startsWith("/p/t/")).length, 58);
});

Deno.test("late writes: a state moved under the sink is re-read, never overwritten", async () => {
  const etcd = new MemoryEtcd();
  const a = sinkOn(etcd);
  await a.readState();
  await a.apply([txn(["1"], "a", "0/1")], stateAt);
  // Another writer (or a late transaction) moves the state: a's next one is refused.
  const b = sinkOn(etcd);
  assertEquals((await b.readState())?.position, { lsn: "0/1" });
  await b.apply([txn(["1"], "b", "0/2")], stateAt);
  await assertRejects(() => a.apply([txn(["1"], "stale", "0/1")], stateAt), StateMovedError);
  assertEquals(JSON.parse(etcd.dump()["/p/t/1"]).v, "b");
  // Read again, a goes on from what etcd holds.
  assertEquals((await a.readState())?.position, { lsn: "0/2" });
  assertEquals(await a.apply([txn(["1"], "a2", "0/3")], stateAt), { lsn: "0/3" });
});
