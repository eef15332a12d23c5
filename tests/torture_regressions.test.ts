/**
 * Defects the randomized convergence runs (scripts/torture) found, each pinned down as a
 * focused test against real servers: the fault that exposed it, then etcd must equal the
 * database.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startSync } from "../testing/sync.ts";
import { assertConverges, readEtcd } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { startPatroni } from "../testing/patroni.ts";
import { waitFor } from "../testing/process.ts";
import { slotCopied } from "../testing/slot_copy.ts";
import postgres from "postgres";
import { historyText, timelineEnd } from "../src/pg/timeline.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// torture --driver pgx --seed 1: etcd killed while a batch was being applied. The sink's
// failure reached the service as an unhandled promise rejection (the stream was still
// winding down), and Deno ended sync with exit code 1 instead of retrying.
test("etcd killed while changes are applied: sync retries, never exits", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  await pg.sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
  await pg.sql`INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50) g`;
  const sync = startSync([
    "--driver=pgx",
    `--db-url=${pg.url}`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/o",
    "--etcd-timeout=2s",
  ]);
  let exited = false;
  sync.exited.then(() => (exited = true));
  let writing = true;
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      await pg.sql`UPDATE t SET v = ${`w${i}`} WHERE id = ${1 + (i % 50)}`;
      await sleep(20);
    }
  })();
  const expected = () => expectedFromPg(pg.sql, "/o");
  const withLog = (e: Error) => {
    throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
  };
  try {
    await assertConverges(etcd.endpoint, "/o/", expected, 60_000).catch(withLog);
    // Three rounds: each one kills etcd while updates keep streaming in.
    for (let round = 0; round < 3; round++) {
      await etcd.stop(true);
      for (let i = 0; i < 20 && !exited; i++) await sleep(500);
      assert(!exited, `sync exited while etcd was down:\n${sync.output()}`);
      await etcd.restart();
      await sleep(1500);
    }
    writing = false;
    await writer;
    await assertConverges(etcd.endpoint, "/o/", expected, 120_000).catch(withLog);
    assert(!exited, `sync exited:\n${sync.output()}`);
    assertMatch(sync.output(), /retrying/);
  } finally {
    writing = false;
    await writer.catch(() => {});
    await sync.stop();
    await pg.close();
    await etcd.close();
  }
});

// The failover fault: a primary that dies with changes sync already wrote to etcd but its
// replica never received (asynchronous replication, or a logical walsender running ahead
// of a synchronous standby). The promoted replica starts a new timeline below the saved
// position; resuming there would keep the lost rows in etcd and skip the new primary's
// first changes. A saved position past the end of its timeline on the new primary must mean
// a full dump.
test("pgx: failover that loses changes etcd has: dumps again", opts, async () => {
  const etcd = await startEtcd();
  const cluster = await startPatroni(etcd.endpoint, "sync");
  const node = (port: number) =>
    postgres(`postgres://postgres:postgres@127.0.0.1:${port}/postgres`, {
      onnotice: () => {},
      max: 1,
      connect_timeout: 10,
    });
  const leader = (await cluster.leader())!;
  const replica = cluster.nodes.find((n) => n !== leader)!;
  const sql = node(leader.pgPort);
  const rsql = node(replica.pgPort);
  let sql2: ReturnType<typeof postgres> | undefined;
  const sync = startSync([
    "--driver=pgx",
    `--db-url=${cluster.url}`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/f",
    "--status-interval=1s",
  ]);
  const withLog = (e: Error) => {
    throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
  };
  let receiver = 0;
  try {
    await sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
    await sql`INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g`;
    await assertConverges(etcd.endpoint, "/f/", () => expectedFromPg(sql, "/f"), 90_000)
      .catch(withLog);
    // Patroni copies the slot's position to the replica (once per loop: waited for, not
    // guessed; without the copy the promoted node has no slot and sync dumps for that).
    await slotCopied(sql, rsql);
    // The replica stops receiving; the primary goes on and sync streams it to etcd.
    await waitFor("the replica's WAL receiver", async () => {
      receiver = Number((await rsql`SELECT pid FROM pg_stat_wal_receiver`)[0]?.pid ?? 0);
      return receiver > 0;
    }, 30_000);
    await rsql.end({ timeout: 1 });
    Deno.kill(receiver, "SIGSTOP");
    await sql`INSERT INTO t SELECT g, repeat('lost ', 40) FROM generate_series(1001, 3000) g`;
    await waitFor(
      "etcd to hold the changes the replica lacks",
      async () => {
        return (await readEtcd(etcd.endpoint, "/f/t/3000")).size === 1;
      },
      60_000,
      () => sync.output(),
    );
    await sql.end({ timeout: 1 });
    await cluster.crash(leader);
    // Killed, not resumed: what its socket still buffers must not reach the replica.
    Deno.kill(receiver, "SIGKILL");
    receiver = 0;
    await waitFor(
      "the replica to be promoted",
      async () => {
        return (await cluster.leader()) === replica;
      },
      120_000,
      () => replica.proc.output(),
    );
    // The new primary's first changes sit below the position etcd saved.
    sql2 = node(replica.pgPort);
    await sql2`UPDATE t SET v = 'new primary' WHERE id <= 10`;
    await sql2`INSERT INTO t VALUES (5000, 'new primary')`;
    const s2 = sql2;
    await assertConverges(etcd.endpoint, "/f/", () => expectedFromPg(s2, "/f"), 120_000)
      .catch(withLog);
    assertMatch(sync.output(), /dump starting.*a failover lost changes etcd has/);
  } finally {
    if (receiver) Deno.kill(receiver, "SIGCONT");
    await sql2?.end({ timeout: 1 });
    await sql.end({ timeout: 1 }).catch(() => {});
    await rsql.end({ timeout: 1 }).catch(() => {});
    await sync.stop();
    await cluster.close();
    await etcd.close();
  }
});

test("timeline history: where each ancestor timeline ended", () => {
  const h = "1\t0/5000000\tno recovery target specified\n\n2\t0/7A0D1F8\tat restore point\n";
  assertEquals(timelineEnd(h, 1), 0x5000000n);
  assertEquals(timelineEnd(h, 2), 0x7A0D1F8n);
  assertEquals(timelineEnd(h, 3), null);
  assertEquals(timelineEnd("", 1), null);
  const hex = "\\x" + [...new TextEncoder().encode(h)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
  assertEquals(historyText(hex), h);
  assertEquals(historyText(h), h);
});
