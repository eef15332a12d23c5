/**
 * Dump progress: the rows (done/estimate, percent, rate and ETA from two samples), and the
 * log lines a real dump prints off a terminal.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startSync } from "../testing/sync.ts";
import { assertConverges, readEtcd } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { type Spawned, waitFor } from "../testing/process.ts";
import { progressRows } from "../src/cli/progress.ts";
import { Status } from "../src/service/status.ts";

test("progress rows", () => {
  const s = new Status();
  const prev = new Map();
  s.dumped("orders", 100);
  s.rowsEstimated.set("orders", 1000);
  s.dumped("users", 5);
  assertEquals(progressRows(s, prev, 10_000), [
    ["orders", "100/1000", "10%", "0/s", "–"],
    ["users", "5", "", "0/s", "–"],
  ]);
  s.dumped("orders", 200);
  // 200 rows in 2 s = 100/s; 700 left = 7 s.
  assertEquals(progressRows(s, prev, 12_000)[0], ["orders", "300/1000", "30%", "100/s", "7s"]);
  // The rate is over the last ten seconds, not the last redraw: 300 rows in 4 s.
  s.dumped("orders", 100);
  assertEquals(progressRows(s, prev, 14_000)[0], ["orders", "400/1000", "40%", "75/s", "8s"]);
  // Older samples drop out: 220 rows since the one at 14 s, 11 s ago.
  s.dumped("orders", 220);
  assertEquals(progressRows(s, prev, 25_000)[0], ["orders", "620/1000", "62%", "20/s", "19s"]);
  // A table the dump has not reached yet shows with nothing done.
  s.estimate("zeta", 50);
  assertEquals(progressRows(s, prev, 26_000)[2], ["zeta", "0/50", "0%", "0/s", "–"]);
});

/**
 * Off a terminal (sync's stderr is a pipe here), the dump logs one line per table every
 * few seconds: etcd is paused mid-dump so the dump outlasts the interval whatever the
 * machine's speed, and the lines must carry the catalogue's estimate.
 */
test("off a terminal: dump progress log lines", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  let sync: Spawned | undefined;
  try {
    await pg.sql`CREATE TABLE big (id int PRIMARY KEY, v text)`;
    await pg.sql`CREATE TABLE small (id int PRIMARY KEY)`;
    await pg.sql`INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 20000) g`;
    await pg.sql`INSERT INTO small SELECT g FROM generate_series(1, 10) g`;
    await pg.sql`ANALYZE`;
    sync = startSync([
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/p",
      "--etcd-max-txn-ops=4",
      "--etcd-timeout=120s",
    ]);
    await waitFor(
      "the dump to write rows",
      async () => {
        // Past the first batches of 500 rows (progress counts whole batches).
        return (await readEtcd(etcd.endpoint, "/p/big/")).size > 1200;
      },
      60_000,
      () => sync!.output(),
    );
    etcd.proc.signal("SIGSTOP");
    try {
      await waitFor(
        "a progress line",
        () => /msg="dump progress" table=big /.test(sync!.output()),
        30_000,
        () => sync!.output(),
      );
    } finally {
      etcd.proc.signal("SIGCONT");
    }
    await assertConverges(etcd.endpoint, "/p/", () => expectedFromPg(pg.sql, "/p"), 120_000);
    await waitFor("the dump to end", () => /msg="dump done"/.test(sync!.output()), 30_000);
    const lines = sync.output().split("\n").filter((l) => l.includes('msg="dump progress"'));
    assert(lines.length > 0);
    for (const l of lines) {
      const m = /table=(\w+) rows=(\d+)\/(\d+) percent=(\d+)% rate=(\d+)\/s eta=(\S+)$/.exec(l);
      assert(m, `a progress line: ${l}`);
      const [, table, done, est, pct] = m;
      assertEquals(Number(est), table === "big" ? 20000 : 10, l);
      assert(Number(done) <= Number(est), l);
      assertEquals(Number(pct), Math.floor((Number(done) / Number(est)) * 100), l);
    }
    // Nothing after the dump: the lines are the dump's.
    await new Promise((r) => setTimeout(r, 6_000));
    const out = sync.output();
    assert(!out.slice(out.indexOf('msg="dump done"')).includes("dump progress"), out);
  } finally {
    await sync?.stop();
    await pg.close();
    await etcd.close();
  }
});
