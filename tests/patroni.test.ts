/**
 * Failover: sync follows a two-node Patroni cluster through a crash of the primary
 * (Patroni and postmaster killed), reconnecting through the multi-host URL to the promoted
 * replica, resuming from its permanent slot or dumping again, and ends equal to it.
 */
import { test } from "../testing/deadline.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPatroni } from "../testing/patroni.ts";
import { startSync } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { waitFor } from "../testing/process.ts";
import { slotCopied } from "../testing/slot_copy.ts";
import { assert } from "../testing/assert.ts";
import postgres from "postgres";

test("pgx follows a Patroni failover", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const etcd = await startEtcd();
  const cluster = await startPatroni(etcd.endpoint, "sync");
  const sql = postgres(cluster.url.replace("?sslmode=disable&connect_timeout=3", ""), {
    target_session_attrs: "primary",
    onnotice: () => {},
    max: 1,
    connect_timeout: 3,
  });
  const sync = startSync([
    "--driver=pgx",
    `--db-url=${cluster.url}`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/p",
    "--status-interval=1s",
  ]);
  try {
    await sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
    await sql`INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 200) g`;
    const expected = () => expectedFromPg(sql, "/p");
    await assertConverges(etcd.endpoint, "/p/", expected, 90_000).catch((e) => {
      throw new Error(`${e.message}\n${sync.output()}`);
    });
    await sql`UPDATE t SET v = 'before failover' WHERE id <= 20`;
    await assertConverges(etcd.endpoint, "/p/", expected, 60_000);
    const old = await cluster.leader();
    assert(old, "a leader");
    // Patroni copies the slot's position to the replica once per loop, which the replica
    // can only take once it replayed the change: waited for, not guessed.
    const replica = postgres(
      `postgres://postgres:postgres@127.0.0.1:${
        cluster.nodes.find((n) => n !== old)!.pgPort
      }/postgres`,
      { onnotice: () => {}, max: 1, connect_timeout: 10 },
    );
    await slotCopied(sql, replica).finally(() => replica.end({ timeout: 1 }));
    await sql.end({ timeout: 1 });
    const streams = () => sync.output().split("msg=streaming").length;
    const before = streams();
    const crashed = Date.now();
    await cluster.crash(old);
    const other = cluster.nodes.find((n) => n !== old)!;
    await waitFor(
      "the replica to be promoted",
      async () => (await cluster.leader()) === other,
      90_000,
      () => other.proc.output(),
    );
    const promoted = Date.now();
    await waitFor("sync to stream from the promoted replica", () => streams() > before, 90_000);
    // The figures docs/topologies.md quotes for a Patroni failover.
    console.log(
      `patroni failover: promoted ${(promoted - crashed) / 1000} s after the crash, ` +
        `sync streaming again ${(Date.now() - crashed) / 1000} s after it`,
    );
    const sql2 = postgres(`postgres://postgres:postgres@127.0.0.1:${other.pgPort}/postgres`, {
      onnotice: () => {},
      max: 1,
      connect_timeout: 10,
    });
    try {
      await sql2`UPDATE t SET v = 'after failover' WHERE id > 180`;
      await sql2`INSERT INTO t VALUES (1000, 'new primary')`;
      await assertConverges(etcd.endpoint, "/p/", () => expectedFromPg(sql2, "/p"), 120_000)
        .catch((e) => {
          throw new Error(`${e.message}\n${sync.output()}`);
        });
      // It lost the primary, retried, and came back on the promoted node: resuming from
      // the permanent slot Patroni kept there, or dumping again when it was behind.
      const out = sync.output();
      assert(/retrying/.test(out), out);
      const after = out.slice(out.indexOf("retrying"));
      assert(/resuming|dump starting/.test(after), out);
    } finally {
      await sql2.end({ timeout: 1 });
    }
  } finally {
    await sync.stop();
    await sql.end({ timeout: 1 }).catch(() => {});
    await cluster.close();
    await etcd.close();
  }
});
