/**
 * `sync snapshot` requests without servers: each waits under a key of its own, and the
 * state transaction that first records it taken deletes it (never lost, never taken twice);
 * the snapshot's seconds as a gauge. tests/snapshot_requests.test.ts runs the whole path.
 */
import { assertEquals } from "../../testing/assert.ts";
import { MemoryEtcd } from "../../testing/memory_etcd.ts";
import { StateKeys } from "../../src/etcd/state.ts";
import { EtcdSnapshotStore } from "../../src/etcd/snapshot_store.ts";
import type { SavedState } from "../../src/core/source.ts";
import { silentLog } from "../../src/core/log.ts";
import type { SnapshotProgress } from "../../src/core/snapshot_types.ts";
import { Status } from "../../src/service/status.ts";
import { renderMetrics } from "../../src/service/metrics.ts";

const state = (snapshots: SnapshotProgress): SavedState => ({
  driver: "pgx",
  source: {},
  position: { lsn: "0/1" },
  dumpRevision: 1,
  updatedAt: "now",
  snapshots,
});
const running = (requests?: string[]) => ({
  state: "running" as const,
  after: null,
  rows: 0,
  started: "then",
  requests,
});

Deno.test("requests: the state that first records one deletes its key", () => {
  const keys = new StateKeys("/p-state/src");
  const deleted = (s: SavedState) =>
    keys.ops(s).ops.flatMap((o) => "delete" in o ? [o.delete.key] : []);
  const first = state({ a: running(["r1"]), b: running(["r1"]) });
  assertEquals(deleted(first), ["/p-state/src/snapshot-requests/r1"], "once for two tables");
  keys.committed(first);
  assertEquals(deleted(state({ a: running(["r1"]), b: running() })), [], "already taken");
  assertEquals(deleted(state({ a: running(["r1", "r2"]) })), ["/p-state/src/snapshot-requests/r2"]);
});

Deno.test("requests: a state read from etcd counts its requests taken", async () => {
  const etcd = new MemoryEtcd();
  const keys = new StateKeys("/p-state/src");
  const { snapshots, ...rest } = state({ a: running(["r1"]) });
  await etcd.txn({
    success: [
      { put: { key: keys.key, value: JSON.stringify(rest) } },
      { put: { key: keys.snapshotsKey, value: JSON.stringify(snapshots) } },
    ],
  });
  const read = await keys.read(etcd, silentLog);
  assertEquals(read?.snapshots, snapshots);
  const ops = keys.ops(state({ a: running(["r1"]) })).ops;
  assertEquals(ops.filter((o) => "delete" in o), [], "a restart deletes nothing again");
});

Deno.test("requests: listed oldest first, unreadable ones name no table", async () => {
  const etcd = new MemoryEtcd();
  const keys = new StateKeys("/p-state/src");
  const store = new EtcdSnapshotStore(etcd, "/p", 128, keys.requestsPrefix);
  const put = (id: string, value: string) =>
    etcd.txn({ success: [{ put: { key: keys.requestKey(id), value } }] });
  await put("z", JSON.stringify({ tables: ["a"] }));
  await put("b", JSON.stringify({ tables: ["b", "c"] }));
  await put("m", "not json");
  assertEquals(await store.requests(), [
    { id: "z", tables: ["a"] },
    { id: "b", tables: ["b", "c"] },
    { id: "m", tables: [] },
  ]);
  const dump = keys.dropRequests();
  assertEquals("delete" in dump && dump.delete.rangeEnd, "/p-state/src/snapshot-requests0");
});

Deno.test("metrics: a snapshot's seconds grow while it reads, then stay", () => {
  const status = new Status();
  status.snapshotBegin("t", 1_000);
  const seconds = (now: number) =>
    /^sync_snapshot_seconds\{table="t"\} (\S+)$/m.exec(renderMetrics(status, new Date(now)))?.[1];
  assertEquals(seconds(3_500), "2.5");
  status.snapshotEnd("t", 4_000);
  assertEquals([seconds(9_000), seconds(20_000)], ["3", "3"]);
  status.snapshotBegin("t", 30_000);
  assertEquals(seconds(31_000), "1", "the next snapshot counts from its start");
});
