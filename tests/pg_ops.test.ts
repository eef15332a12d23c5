/**
 * Operating the pgx driver against real servers: `sync status` and `sync drop`, and `--ha`
 * with two processes where the leader is paused (SIGSTOP) and the standby takes over; etcd
 * itself shows the old leader wrote nothing after it was resumed (every key's version and
 * mod_revision, the state key's history).
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { runSync, startSync } from "../testing/sync.ts";
import {
  assertConverges,
  keyWrites,
  readEtcd,
  readEtcdKvs,
  unexpectedWrites,
} from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { freePort, waitFor } from "../testing/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

test("pgx: sync status and sync drop", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres({ auth: "md5", password: "md5-secret" });
  try {
    await pg.sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
    await pg.sql`INSERT INTO t VALUES (1, 'a'), (2, 'b')`;
    const base = ["--driver=pgx", `--db-url=${pg.url}`, `--etcd-endpoints=${etcd.endpoint}`];
    const sync = startSync([...base, "--etcd-prefix=/o"]);
    try {
      await assertConverges(etcd.endpoint, "/o/", () => expectedFromPg(pg.sql, "/o"), 60_000);
    } finally {
      await sync.stop();
    }
    const st = await runSync(["status", "--json", ...base, "--etcd-prefix=/o"]);
    assertEquals(st.code, 0, st.stderr);
    const status = JSON.parse(st.stdout);
    assertMatch(String(status.position.lsn), /^[0-9A-F]+\/[0-9A-F]+$/);
    assertEquals(status.source.slot, "sync");
    assertEquals(status.source.slot_active, false);
    assert(!st.stdout.includes("md5-secret") && !st.stderr.includes("md5-secret"));

    const dropped = await runSync(["drop", "--yes", ...base, "--etcd-prefix=/o"]);
    assertEquals(dropped.code, 0, dropped.stderr);
    assertMatch(dropped.stdout, /removed replication slot sync/);
    assertMatch(dropped.stdout, /removed publication sync/);
    const slots = await pg.sql`SELECT slot_name FROM pg_replication_slots`;
    assertEquals(slots.length, 0);
    // Replicated data stays unless --purge-data.
    await assertConverges(etcd.endpoint, "/o/", () => expectedFromPg(pg.sql, "/o"), 5_000);
  } finally {
    await pg.close();
    await etcd.close();
  }
});

test("pgx --ha: a paused leader is replaced and never writes again", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  const ports = { a: freePort(), b: freePort() };
  const args = (id: "a" | "b") => [
    `--http-addr=127.0.0.1:${ports[id]}`,
    "--driver=pgx",
    `--db-url=${pg.url}`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/ha",
    "--ha",
    "--ha-ttl=2s",
    `--ha-id=${id}`,
    "--status-interval=1s",
  ];
  await pg.sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
  await pg.sql`INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g`;
  await pg.sql`CREATE TABLE big (id int PRIMARY KEY, v text)`;
  const a = startSync(args("a"));
  const b = startSync(args("b"));
  const expected = () => expectedFromPg(pg.sql, "/ha");
  try {
    await assertConverges(etcd.endpoint, "/ha/", expected, 60_000);
    const leading = (p: typeof a) => /msg=leader /.test(p.output());
    await waitFor("a leader", () => leading(a) || leading(b), 30_000);
    const [leader, standby] = leading(a) ? [a, b] : [b, a];
    assert(!leading(standby), "only one leader");

    // Paused in the middle of a large transaction, with chunks of it not yet written: it
    // goes on writing them the moment it wakes up, before it can learn it lost its lease.
    await pg.sql`INSERT INTO big SELECT g, 'v' FROM generate_series(1, 100000) g`;
    await waitFor("the leader to be writing the transaction", async () => {
      return (await readEtcd(etcd.endpoint, "/ha/big/20000")).size > 0;
    }, 60_000);
    leader.signal("SIGSTOP");
    const held = (await readEtcdKvs(etcd.endpoint, "/ha/big/")).kvs.size;
    assert(held < 100000, "paused before the whole transaction was written");
    await pg.sql`UPDATE t SET v = 'while paused' WHERE id <= 10`;
    await waitFor(
      "the standby to take over",
      () => leading(standby),
      30_000,
      () => standby.output(),
    );
    await assertConverges(etcd.endpoint, "/ha/", expected, 60_000).catch((e) => {
      throw new Error(`${e.message}\n--- standby:\n${standby.output()}`);
    });
    const paused = await readEtcdKvs(etcd.endpoint, "/ha/");

    // The old leader wakes up: its fenced transactions fail (nothing written), it steps down.
    leader.signal("SIGCONT");
    await waitFor(
      "the old leader to step down",
      () => /leadership lost|no longer the leader|lost leadership/.test(leader.output()),
      30_000,
      () => leader.output(),
    );
    await pg.sql`UPDATE t SET v = 'after resume' WHERE id > 90`;
    await assertConverges(etcd.endpoint, "/ha/", expected, 60_000);
    // From etcd: since the standby converged, only the rows changed after the resume were
    // written, once each (the old leader's rest of the transaction would show) ...
    const now = await readEtcdKvs(etcd.endpoint, "/ha/");
    const changed = (k: string) => k.startsWith("/ha/t/") && Number(k.slice(6)) > 90;
    assertEquals(unexpectedWrites(paused.kvs, now.kvs, (k) => (changed(k) ? 1 : 0)), null);
    // ... and the state key's position never went back (a stale leader's would).
    const stateKey = [...(await readEtcdKvs(etcd.endpoint, "/ha-state/")).kvs.keys()]
      .find((k) => !k.includes("/leader"))!;
    const lsns = (await keyWrites(etcd.endpoint, stateKey, paused.revision, now.revision))
      .map((w) => JSON.parse(w.value).position.lsn as string);
    assert(lsns.length > 0, "the new leader saved its position");
    const lsn = (s: string) => s.split("/").reduce((n, h) => n * 2n ** 32n + BigInt(`0x${h}`), 0n);
    for (let i = 1; i < lsns.length; i++) {
      assert(lsn(lsns[i]) >= lsn(lsns[i - 1]), `state position went back: ${lsns}`);
    }
  } finally {
    a.signal("SIGCONT");
    b.signal("SIGCONT");
    await a.stop();
    await b.stop();
    await pg.close();
    await etcd.close();
  }
});
