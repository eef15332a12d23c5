/** The etcd sink against a real etcd: atomicity, grouping, chunking, merging, sweep, faults. */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertRejects } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { readEtcd } from "../testing/checker.ts";
import { EtcdClient, EtcdUnavailableError } from "../src/etcd/client.ts";
import { EtcdSink, OversizeError, type TxnInfo } from "../src/etcd/sink.ts";
import type { ChangeBatch, Position } from "../src/core/change.ts";
import { type Cell, UNCHANGED } from "../src/core/change.ts";
import type { SavedState } from "../src/core/source.ts";
import { jsonNumber, jsonString } from "../src/core/json.ts";
import { freePort } from "../testing/process.ts";
import { run } from "../testing/process.ts";

const put = (table: string, key: string, v: string | number): ChangeBatch["changes"][number] => ({
  op: "put",
  table,
  key,
  columns: ["id", "v"],
  cells: [jsonString(key), typeof v === "number" ? jsonNumber(String(v)) : jsonString(v)],
});
const del = (table: string, key: string): ChangeBatch["changes"][number] => ({
  op: "delete",
  table,
  key,
});
/**
 * etcd under `prefix` holds exactly these rows (`table/key` → v), each as `put()` makes it
 * and the design writes it, spelled out here rather than by src/.
 */
async function assertRows(
  endpoint: string,
  prefix: string,
  rows: [string, string | number][],
): Promise<void> {
  const want = new Map(
    rows.map(([k, v]) => [`${prefix}${k}`, JSON.stringify({ id: k.split("/")[1], v })]),
  );
  assertEquals(await readEtcd(endpoint, prefix), want);
}

const commit = (lsn: number) => ({ position: { lsn } as Position });
const stateAt = (p: Position): SavedState => ({
  driver: "test",
  source: { id: "t" },
  position: p,
  dumpRevision: 0,
  updatedAt: "2026-01-01T00:00:00.000Z",
});

// Both transports pass the same steps: gRPC is the default, the gateway a fallback.
for (const transport of ["grpc", "gateway"] as const) {
  test(`etcd sink (${transport})`, async (t) => {
    // Auth tokens live a second, so the auth step sees one expire.
    const etcd = await startEtcd({ args: ["--auth-token-ttl=1"] });
    let n = 0;
    const fresh = (extra: Partial<ConstructorParameters<typeof EtcdSink>[1]> = {}) => {
      n++;
      const txns: TxnInfo[] = [];
      const client = new EtcdClient({ transport, endpoints: [etcd.endpoint] });
      const sink = new EtcdSink(client, {
        prefix: `/t${n}`,
        stateKey: `/t${n}-state/src`,
        onTxn: (i) => txns.push(i),
        ...extra,
      });
      return { sink, client, txns, prefix: `/t${n}/`, stateKey: `/t${n}-state/src` };
    };
    try {
      await t.step("state key commits in the same transaction as the changes", async () => {
        const { sink, client, stateKey, prefix } = fresh();
        const done = await sink.apply([{
          changes: [put("a", "1", "x"), put("a", "2", "y")],
          commit: commit(7),
        }], stateAt);
        assertEquals(done, { lsn: 7 });
        const data = await client.range(prefix, { rangeEnd: `/t${n}0` });
        const st = await client.range(stateKey);
        assertEquals(data.kvs.length, 2);
        for (const kv of data.kvs) assertEquals(st.kvs[0].modRevision, kv.modRevision);
        await assertRows(etcd.endpoint, prefix, [["a/1", "x"], ["a/2", "y"]]);
        assertEquals(JSON.parse(new TextDecoder().decode(st.kvs[0].value)).position, { lsn: 7 });
        client.close();
      });

      await t.step("consecutive small transactions share one etcd transaction", async () => {
        const { sink, client, txns, prefix } = fresh();
        const batches = Array.from({ length: 10 }, (_, i) => ({
          changes: [put("g", String(i), i)],
          commit: commit(i + 1),
        }));
        assertEquals(await sink.apply(batches, stateAt), { lsn: 10 });
        assertEquals(txns.length, 1);
        await assertRows(etcd.endpoint, prefix, batches.map((_, i) => [`g/${i}`, i]));
        client.close();
      });

      await t.step(
        "a transaction over the op limit is chunked; state moves with the last",
        async () => {
          const { sink, client, txns, prefix, stateKey } = fresh({ maxTxnOps: 16 });
          await sink.apply([{ changes: [put("c", "first", 0)], commit: commit(1) }], stateAt);
          const changes = Array.from({ length: 40 }, (_, i) => put("c", `k${i}`, i));
          assertEquals(await sink.apply([{ changes, commit: commit(2) }], stateAt), { lsn: 2 });
          // 1 + 40 changes at 14 data ops per txn (two kept for the state keys) = 3 txns more.
          assertEquals(txns.map((x) => x.withState), [true, false, false, true]);
          assert(txns.every((x) => x.ops <= 16));
          await assertRows(etcd.endpoint, prefix, [
            ["c/first", 0],
            ...changes.map((_, i): [string, number] => [`c/k${i}`, i]),
          ]);
          assertEquals(JSON.parse((await client.get(stateKey))!).position, { lsn: 2 });
          client.close();
        },
      );

      await t.step("a source transaction that fits is never split by group commit", async () => {
        // 4 data ops per etcd transaction (2 kept for the state and the definitions).
        const { sink, client, prefix } = fresh({ maxTxnOps: 6 });
        const txn = (name: string, n: number, at: number) => ({
          changes: Array.from({ length: n }, (_, i) => put("w", `${name}${i}`, i)),
          commit: commit(at),
        });
        await sink.apply([txn("a", 3, 1), txn("b", 3, 2), txn("c", 2, 3), txn("d", 1, 4)], stateAt);
        const kvs = (await client.range(prefix, { rangeEnd: `/t${n}0` })).kvs;
        const revs = new Map<string, Set<number>>();
        for (const kv of kvs) {
          const name = kv.key.slice(prefix.length + 2, -1);
          revs.set(name, (revs.get(name) ?? new Set()).add(kv.modRevision));
        }
        assertEquals(kvs.length, 9);
        for (const [name, r] of revs) assertEquals(r.size, 1, `source transaction ${name} split`);
        await assertRows(
          etcd.endpoint,
          prefix,
          [["a", 3], ["b", 3], ["c", 2], ["d", 1]].flatMap(([name, n]) =>
            Array.from({ length: n as number }, (_, i): [string, number] => [`w/${name}${i}`, i])
          ),
        );
        client.close();
      });

      await t.step("chunking at the byte limit", async () => {
        const { sink, client, txns, prefix } = fresh({ maxTxnBytes: 64 * 1024 });
        const big = "x".repeat(10_000);
        const changes = Array.from({ length: 20 }, (_, i) => put("b", `k${i}`, big));
        await sink.apply([{ changes, commit: commit(1) }], stateAt);
        assert(txns.length >= 4, `expected at least 4 txns, got ${txns.length}`);
        assert(txns.every((x) => x.bytes <= 64 * 1024));
        await assertRows(etcd.endpoint, prefix, changes.map((_, i) => [`b/k${i}`, big]));
        client.close();
      });

      await t.step("operations on the same key merge, last one wins", async () => {
        const { sink, client, prefix } = fresh();
        await sink.apply([
          { changes: [put("m", "1", "a"), put("m", "2", "a")], commit: commit(1) },
          { changes: [put("m", "1", "b"), del("m", "2"), put("m", "3", "c")], commit: commit(2) },
          { changes: [del("m", "3"), put("m", "2", "again")], commit: commit(3) },
        ], stateAt);
        assertEquals(
          Object.fromEntries(await readEtcd(etcd.endpoint, prefix)),
          {
            [`${prefix}m/1`]: '{"id":"1","v":"b"}',
            [`${prefix}m/2`]: '{"id":"2","v":"again"}',
          },
        );
        client.close();
      });

      await t.step("truncate deletes the table's range, later puts survive", async () => {
        const { sink, client, prefix } = fresh();
        await sink.apply([{
          changes: [put("t", "1", 1), put("t", "2", 2), put("u", "1", 1)],
          commit: commit(1),
        }], stateAt);
        await sink.apply([{
          changes: [put("t", "3", 3), { op: "truncate", table: "t" }, put("t", "4", 4)],
          commit: commit(2),
        }], stateAt);
        await assertRows(etcd.endpoint, prefix, [["t/4", 4], ["u/1", 1]]);
        client.close();
      });

      await t.step("unchanged TOAST columns are filled from etcd's current value", async () => {
        const { sink, client, prefix } = fresh();
        const row = (v: string | typeof UNCHANGED, w: string) => ({
          op: "put" as const,
          table: "toast",
          key: "1",
          columns: ["id", "big", "w"],
          cells: [jsonNumber("1"), v, w] as Cell[],
        });
        await sink.apply(
          [{ changes: [row(jsonString("B".repeat(5000)), "1")], commit: commit(1) }],
          stateAt,
        );
        await sink.apply([{ changes: [row(UNCHANGED, "2")], commit: commit(2) }], stateAt);
        // Within one transaction the pending value is the current one.
        await sink.apply([{
          changes: [row(jsonString("C"), "3"), row(UNCHANGED, "4")],
          commit: commit(3),
        }], stateAt);
        const v1 = (await readEtcd(etcd.endpoint, prefix)).get(`${prefix}toast/1`);
        assertEquals(v1, '{"id":1,"big":"C","w":4}');
        client.close();
      });

      await t.step("sweep deletes keys the dump did not write", async () => {
        const { sink, client, prefix } = fresh();
        await sink.apply([{
          changes: [put("s", "old", 1), put("s", "keep", 1), put("other", "x", 1)],
          commit: commit(1),
        }], stateAt);
        const rev = await sink.startDump();
        await sink.writeDump({ changes: [put("s", "keep", 2), put("s", "new", 2)] });
        await sink.settleDump();
        assertEquals(await sink.sweep(["s"], rev), 1);
        await assertRows(etcd.endpoint, prefix, [["other/x", 1], ["s/keep", 2], ["s/new", 2]]);
        client.close();
      });

      await t.step(
        "a sweep over owned tables steps over the tables it does not cover",
        async () => {
          const { sink, client, prefix } = fresh();
          await sink.apply([{
            changes: [
              put("a", "old", 1),
              put("b", "1", 1),
              put("b", "2", 1),
              put("c", "kept", 1),
              put("c", "kept2", 1),
              put("d", "x", 1),
            ],
            commit: commit(1),
          }], stateAt);
          const rev = await sink.startDump();
          await sink.writeDump({ changes: [put("a", "new", 2)] });
          await sink.settleDump();
          // a was dumped; b and d vanished (owned); c is another table's business.
          const owned = (t: string) => t === "b" || t === "d";
          assertEquals(await sink.sweep(["a"], rev, owned), 4);
          await assertRows(etcd.endpoint, prefix, [["a/new", 2], ["c/kept", 1], ["c/kept2", 1]]);
          client.close();
        },
      );

      await t.step(
        "a row too big for etcd stops with its table and key, or is skipped",
        async () => {
          const huge = "z".repeat(2 * 1024 * 1024);
          const a = fresh();
          const err = await assertRejects(
            () => a.sink.apply([{ changes: [put("big", "k1", huge)], commit: commit(1) }], stateAt),
            OversizeError,
          );
          assert(err.message.includes("table big key k1"), err.message);
          a.client.close();
          let skipped = 0;
          const b = fresh({ oversize: "skip", onOversize: () => skipped++ });
          assertEquals(
            await b.sink.apply([{
              changes: [put("big", "k1", huge), put("big", "k2", "ok")],
              commit: commit(1),
            }], stateAt),
            { lsn: 1 },
          );
          assertEquals(skipped, 1);
          await assertRows(etcd.endpoint, b.prefix, [["big/k2", "ok"]]);
          b.client.close();
        },
      );

      await t.step("fails over to the next endpoint when the first is dead", async () => {
        const dead = `http://127.0.0.1:${freePort()}`;
        const client = new EtcdClient({ transport, endpoints: [dead, etcd.endpoint] });
        await client.put("/failover/x", "1");
        assertEquals(await client.get("/failover/x"), "1");
        assertEquals(client.endpoint, etcd.endpoint);
        client.close();
      });

      await t.step(
        "etcd restarted mid-stream: resume from the state key, nothing lost",
        async () => {
          const { sink, client, prefix, stateKey } = fresh({ maxTxnOps: 8 });
          const batches = Array.from({ length: 30 }, (_, i) => ({
            changes: [put("r", String(i % 7), i), put("r", `n${i}`, i)],
            commit: commit(i + 1),
          }));
          await sink.apply(batches.slice(0, 10), stateAt);
          await etcd.stop(true);
          await assertRejects(() => sink.apply(batches.slice(10), stateAt), EtcdUnavailableError);
          await etcd.restart();
          const st = JSON.parse((await client.get(stateKey))!) as SavedState;
          const from = Number(st.position.lsn);
          assertEquals(from, 10);
          await sink.apply(batches.slice(from), stateAt);
          const want = new Map<string, string>();
          for (const b of batches) {
            for (const c of b.changes) {
              if (c.op === "put") {
                want.set(`${prefix}r/${c.key}`, `{"id":"${c.key}","v":${String(c.cells[1])}}`);
              }
            }
          }
          assertEquals(await readEtcd(etcd.endpoint, prefix), new Map([...want].sort()));
          client.close();
        },
      );

      await t.step("leases and elections", async () => {
        const client = new EtcdClient({ transport, endpoints: [etcd.endpoint] });
        const lease = await client.leaseGrant(30);
        assert(/^[1-9][0-9]*$/.test(lease), lease);
        assert(await client.leaseKeepAlive(lease) > 0);
        const leader = await client.campaign("/elect", lease, "me");
        assertEquals(leader.name, "/elect");
        assert(leader.key.startsWith("/elect/"), leader.key);
        assertEquals(leader.lease, lease);
        // The leader key holds the value, on the lease, created at the revision given.
        const kv = (await client.range(leader.key)).kvs[0];
        assertEquals(new TextDecoder().decode(kv.value), "me");
        assertEquals(kv.createRevision, leader.rev);
        assertEquals(BigInt(kv.lease!).toString(), lease);
        await client.resign(leader);
        assertEquals((await client.range(leader.key)).kvs.length, 0);
        await client.leaseRevoke(lease);
        assertEquals(await client.leaseKeepAlive(lease), 0);
        client.close();
      });

      await t.step("authenticates with a user and password", async () => {
        const ctl = (args: string[], stdin?: string) =>
          run("etcdctl", {
            args: [`--endpoints=${etcd.endpoint}`, ...args],
            env: { ETCDCTL_API: "3" },
            stdin,
          });
        await ctl(["user", "add", "root", "--interactive=false"], "rootpw\n");
        await ctl(["auth", "enable"]);
        try {
          const bad = new EtcdClient({
            transport,
            endpoints: [etcd.endpoint],
            username: "root",
            password: "nope",
          });
          const e = await assertRejects(() => bad.put("/auth/x", "1"));
          assert(!String(e).includes("nope"));
          bad.close();
          const good = new EtcdClient({
            transport,
            endpoints: [etcd.endpoint],
            username: "root",
            password: "rootpw",
          });
          const sink = new EtcdSink(good, { prefix: "/auth", stateKey: "/auth-state/s" });
          await sink.apply([{ changes: [put("a", "1", 1)], commit: commit(1) }], stateAt);
          assertEquals(await good.get("/auth/a/1"), '{"id":"1","v":1}');
          // An idle token expires; the next call fetches a new one and goes through.
          await new Promise((r) => setTimeout(r, 2500));
          await sink.apply([{ changes: [put("a", "2", 2)], commit: commit(2) }], stateAt);
          assertEquals(await good.get("/auth/a/2"), '{"id":"2","v":2}');
          good.close();
        } finally {
          await ctl(["--user=root:rootpw", "auth", "disable"]);
        }
      });
    } finally {
      await etcd.close();
    }
  });
}
