/**
 * PostgreSQL 17+ failover slots (issue 15): sync makes its slot a failover slot, a standby
 * keeps a synchronized copy, and after `pg_ctl promote` sync, given both hosts, resumes from
 * that copy without a dump and loses nothing. A slot the standby did not synchronize is not
 * trusted (dump). Changes at or below etcd's position are not applied twice. `sync check`
 * says whether the slot is failover-ready and names what is missing; `sync status` shows the
 * slot's failover flag and each standby's copy.
 */
import type postgres from "postgres";
import { test } from "../testing/deadline.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { embeddedPgBin } from "../testing/embedded_pg.ts";
import { type PgPair, slotSynced, standbyOwnSlot, startPair } from "../testing/pg_standby.ts";
import { launchSync, runSync, type SyncRun } from "../testing/sync.ts";
import { assertConverges, readEtcdKvs, unexpectedWrites } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { waitFor } from "../testing/process.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";

type Sql = ReturnType<typeof postgres>;
const opts = { sanitizeOps: false, sanitizeResources: false, deadlineMs: 6 * 60_000 };

function syncArgs(url: string, etcd: string, prefix: string): string[] {
  return [
    "--driver=pgx",
    `--db-url=${url}`,
    `--etcd-endpoints=${etcd}`,
    `--etcd-prefix=${prefix}`,
    "--status-interval=1s",
  ];
}

/** Writes on `sql` every few ms until stopped; errors (a crashed server) end it quietly. */
function writer(sql: Sql, from: number) {
  let stop = false;
  let n = 0;
  const done = (async () => {
    try {
      for (let id = from; !stop; id++, n++) {
        await sql`INSERT INTO t VALUES (${id}, ${"w" + id}, 0)`;
        await sql`UPDATE t SET n = n + 1 WHERE id = ${1 + (id % 50)}`;
        await new Promise((r) => setTimeout(r, 5));
      }
    } catch { /* the server went away */ }
  })();
  return {
    count: () => n,
    async stop() {
      stop = true;
      await done;
    },
  };
}

/**
 * `sync status --json`: the slot's failover flag, and the one standby's copy as it prints
 * it (the standby of `url` reached on its own connection).
 */
async function failoverStatus(url: string, etcd: string, prefix: string) {
  const r = await runSync(["status", "--json", ...syncArgs(url, etcd, prefix)]);
  assertEquals(r.code, 0, r.stderr);
  const source = JSON.parse(r.stdout).source as Record<string, unknown>;
  const copies = Object.entries(source).filter(([k]) => k.startsWith("failover_standby "));
  assertEquals(copies.length, 1, r.stdout);
  assertMatch(copies[0][0], /^failover_standby 127\.0\.0\.1:\d+$/);
  return { flag: source.failover_slot, copy: String(copies[0][1]) };
}

/** sync's log after the first "dump done": how it came back after the failover. */
function afterFirstDump(sync: SyncRun): string {
  const out = sync.output();
  const i = out.indexOf('msg="dump done"');
  assert(i >= 0, out);
  return out.slice(i + 1);
}

async function withPair(
  major: number,
  o: { standbySlots?: boolean; syncSlots?: boolean },
  body: (pair: PgPair, etcd: string) => Promise<void>,
): Promise<void> {
  const etcd = await startEtcd();
  const pair = await startPair({ serverBin: await embeddedPgBin(major), ...o });
  try {
    await pair.primary.sql`CREATE TABLE t (id int PRIMARY KEY, v text, n int)`;
    await pair.primary.sql`INSERT INTO t SELECT g, 'v' || g, 0 FROM generate_series(1, 300) g`;
    await body(pair, etcd.endpoint);
  } finally {
    await pair.close();
    await etcd.close();
  }
}

/** Crash the primary (immediate shutdown) and promote the standby. */
async function failover(pair: PgPair): Promise<void> {
  await pair.primary.stop(true);
  await pair.standby.promote();
}

for (const major of [17, 18]) {
  test(
    `pgx ${major}: after a promotion sync resumes from the synchronized slot, no dump`,
    opts,
    async () => {
      await withPair(major, {}, async (pair, etcd) => {
        const p = pair.primary.sql, s = pair.standby.sql;
        const ready = await runSync(["check", ...syncArgs(pair.syncUrl, etcd, "/f")]);
        assertMatch(
          ready.stdout,
          /PASS\s+failover slot: primary\s+sync will be created with failover/,
        );
        const sync = launchSync(syncArgs(pair.syncUrl, etcd, "/f"));
        try {
          await assertConverges(etcd, "/f/", () => expectedFromPg(p, "/f"), 90_000)
            .catch((e) => Promise.reject(new Error(`${e.message}\n${sync.output()}`)));
          const [slot] =
            await p`SELECT failover FROM pg_replication_slots WHERE slot_name = 'sync'`;
          assertEquals(slot?.failover, true);
          const w = writer(p, 1000);
          await waitFor("the writer to make changes", () => w.count() > 50, 30_000);
          // The copy is persisted and has reached where the primary's slot was a moment ago.
          await slotSynced(p, s);
          const check = await runSync(["check", ...syncArgs(pair.syncUrl, etcd, "/f")]);
          assertMatch(check.stdout, /PASS\s+failover slot: 127\.0\.0\.1:\d+\s+synced=true/);
          assertEquals(await failoverStatus(pair.syncUrl, etcd, "/f"), {
            flag: true,
            copy: "synced=true, invalidation_reason=none",
          });
          await waitFor("more changes", () => w.count() > 100, 30_000);
          const crashed = Date.now();
          await failover(pair);
          const promotedMs = Date.now() - crashed;
          await w.stop();
          const [{ lsn: promoted }] = await s`SELECT pg_current_wal_lsn()::text AS lsn`;
          await waitFor("sync to come back on the promoted server", () => {
            const out = sync.output();
            return /msg=resuming|dump starting/.test(out.slice(out.indexOf('msg="dump done"')));
          }, 60_000);
          // The figures docs/topologies.md quotes: crash to promoted, promoted to resumed.
          console.log(
            `PG ${major}: promoted ${promotedMs} ms after the crash, sync resumed ` +
              `${Date.now() - crashed - promotedMs} ms later`,
          );
          const w2 = writer(s, 100_000);
          await waitFor("writes on the promoted standby", () => w2.count() > 50, 30_000);
          await w2.stop();
          await assertConverges(etcd, "/f/", () => expectedFromPg(s, "/f"), 120_000)
            .catch((e) => Promise.reject(new Error(`${e.message}\n${sync.output()}`)));
          const after = afterFirstDump(sync);
          assertMatch(after, /retrying/);
          assertMatch(after, /msg=resuming/);
          assert(!/dump starting/.test(after), `dumped again after the promotion:\n${after}`);
          // The promoted server's copy is the slot sync follows and confirms on.
          await waitFor("sync to confirm on the promoted server's slot", async () => {
            const [r] = await s`SELECT confirmed_flush_lsn > ${promoted}::pg_lsn AS ok
            FROM pg_replication_slots WHERE slot_name = 'sync'`;
            return r?.ok === true;
          }, 30_000);
        } finally {
          await sync.stop();
        }
      });
    },
  );
}

test(
  "pgx 17: a slot the standby did not synchronize is not trusted after a promotion",
  opts,
  async () => {
    await withPair(17, { standbySlots: false, syncSlots: false }, async (pair, etcd) => {
      const p = pair.primary.sql, s = pair.standby.sql;
      // A slot of sync's name made on the standby itself (synced = false), before sync's.
      await standbyOwnSlot(p, s);
      const check = await runSync(["check", ...syncArgs(pair.syncUrl, etcd, "/u")]);
      assertMatch(
        check.stdout,
        /FAIL\s+failover slot: primary\s+synchronized_standby_slots is empty/,
      );
      assertMatch(
        check.stdout,
        /FAIL\s+failover slot: 127\.0\.0\.1:\d+\s+synced=false.*missing: sync_replication_slots = on/,
      );
      const sync = launchSync(syncArgs(pair.syncUrl, etcd, "/u"));
      try {
        await assertConverges(etcd, "/u/", () => expectedFromPg(p, "/u"), 90_000);
        // The standby's own slot of that name is not a synchronized copy: status says so.
        assertEquals(await failoverStatus(pair.syncUrl, etcd, "/u"), {
          flag: true,
          copy: "synced=false, invalidation_reason=none",
        });
        await p`UPDATE t SET v = 'before' WHERE id <= 20`;
        await assertConverges(etcd, "/u/", () => expectedFromPg(p, "/u"), 60_000);
        await failover(pair);
        await s`UPDATE t SET v = 'after' WHERE id > 280`;
        await assertConverges(etcd, "/u/", () => expectedFromPg(s, "/u"), 120_000)
          .catch((e) => Promise.reject(new Error(`${e.message}\n${sync.output()}`)));
        const after = afterFirstDump(sync);
        assertMatch(after, /dump starting.*not a synchronized copy.*synced = false/);
      } finally {
        await sync.stop();
      }
    });
  },
);

test("pgx 17: changes at or below etcd's position are not applied again", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres({ serverBin: await embeddedPgBin(17) });
  const args = syncArgs(pg.url, etcd.endpoint, "/r");
  try {
    const sql = pg.sql;
    await sql`CREATE TABLE t (id int PRIMARY KEY, v text, n int)`;
    await sql`INSERT INTO t SELECT g, 'v' || g, 0 FROM generate_series(1, 50) g`;
    const run = async (body: () => Promise<void>) => {
      const sync = launchSync(args);
      try {
        await body();
        await assertConverges(etcd.endpoint, "/r/", () => expectedFromPg(sql, "/r"), 60_000);
      } finally {
        await sync.stop();
      }
      return sync;
    };
    await run(() => Promise.resolve());
    // Keep the slot as it is now; sync then moves etcd (and the slot) past it.
    await sql`SELECT pg_copy_logical_replication_slot('sync', 'sync_keep')`;
    await run(async () => {
      await sql`UPDATE t SET v = 'second' WHERE id <= 10`;
      await sql`INSERT INTO t SELECT g, 'new', 0 FROM generate_series(100, 110) g`;
    });
    // The slot back where it was: it would resend the two transactions etcd holds.
    await sql`SELECT pg_drop_replication_slot('sync')`;
    await sql`SELECT pg_copy_logical_replication_slot('sync_keep', 'sync')`;
    await sql`SELECT pg_drop_replication_slot('sync_keep')`;
    const before = await readEtcdKvs(etcd.endpoint, "/r/");
    const last = await run(async () => {
      await sql`UPDATE t SET v = 'third' WHERE id = 50`;
    });
    assertMatch(last.output(), /msg=resuming/);
    const after = await readEtcdKvs(etcd.endpoint, "/r/");
    const problem = unexpectedWrites(before.kvs, after.kvs, (k) => (k === "/r/t/50" ? 1 : 0));
    assertEquals(problem, null, last.output());
  } finally {
    await pg.close();
    await etcd.close();
  }
});

test("pgx 17: an invalidated slot means a dump, not endless retries", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres({
    serverBin: await embeddedPgBin(17),
    conf: { max_slot_wal_keep_size: "1MB" },
  });
  const args = syncArgs(pg.url, etcd.endpoint, "/i");
  try {
    const sql = pg.sql;
    await sql`CREATE TABLE t (id int PRIMARY KEY, v text, n int)`;
    await sql`INSERT INTO t SELECT g, 'v' || g, 0 FROM generate_series(1, 50) g`;
    const first = launchSync(args);
    try {
      await assertConverges(etcd.endpoint, "/i/", () => expectedFromPg(sql, "/i"), 60_000);
    } finally {
      await first.stop();
    }
    // While sync is away, the server removes WAL the slot still needs.
    await waitFor("the slot to be invalidated", async () => {
      await sql`UPDATE t SET n = n + 1`;
      await sql`SELECT pg_switch_wal()`;
      await sql`CHECKPOINT`;
      const [r] = await sql`SELECT invalidation_reason AS why FROM pg_replication_slots
        WHERE slot_name = 'sync'`;
      return r?.why === "wal_removed";
    }, 60_000);
    const again = launchSync(args);
    try {
      await assertConverges(etcd.endpoint, "/i/", () => expectedFromPg(sql, "/i"), 60_000)
        .catch((e) => Promise.reject(new Error(`${e.message}\n${again.output()}`)));
      assertMatch(again.output(), /dump starting.*invalidated \(wal_removed\)/);
    } finally {
      await again.stop();
    }
  } finally {
    await pg.close();
    await etcd.close();
  }
});
