/**
 * `--shutdown-timeout` against real servers: with etcd paused, the in-flight transaction
 * cannot finish, so SIGTERM ends sync through the timeout (status 0, one warning) instead of
 * waiting for etcd; what was abandoned was never confirmed, and the next run applies it.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startLog, startSync } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { type Spawned, waitFor } from "../testing/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

test("pgx: SIGTERM with etcd stuck exits 0 at --shutdown-timeout", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  const args = [
    "--driver=pgx",
    `--db-url=${pg.url}`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/sd",
    // Far longer than the test: only the shutdown timeout can end the stuck request.
    "--etcd-timeout=300s",
    "--shutdown-timeout=2s",
  ];
  let sync: Spawned | undefined;
  let paused = false;
  try {
    await pg.sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
    await pg.sql`INSERT INTO t SELECT g, 'v' FROM generate_series(1, 100) g`;
    const expected = () => expectedFromPg(pg.sql, "/sd");
    sync = startSync(args);
    await assertConverges(etcd.endpoint, "/sd/", expected, 60_000);
    await waitFor("streaming", () => /msg=streaming/.test(sync!.output()), 30_000);

    etcd.proc.signal("SIGSTOP");
    paused = true;
    await pg.sql`UPDATE t SET v = 'while etcd is stuck' WHERE id <= 10`;
    // Give sync the change, so its etcd transaction is in flight when the signal comes.
    await new Promise((r) => setTimeout(r, 1000));
    sync.signal("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const st = await Promise.race([
      sync.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no exit:\n${sync!.output()}`)), 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    const out = sync.output();
    assertEquals(st.code, 0, out);
    assertMatch(out, /msg=stopping signal=SIGTERM/);
    assertMatch(out, /msg="shutdown timeout reached; abandoning in-flight work" timeout_ms=2000/);
    assert(!/msg=stopped$/m.test(out), "it did not finish cleanly: the timeout ended it");

    etcd.proc.signal("SIGCONT");
    paused = false;
    // Nothing of the abandoned transaction was confirmed: the next run applies it.
    sync = startSync(args);
    await assertConverges(etcd.endpoint, "/sd/", expected, 60_000);
    assertMatch(await startLog(sync), /msg=resuming/);
  } finally {
    if (paused) etcd.proc.signal("SIGCONT");
    await sync?.stop();
    await pg.close();
    await etcd.close();
  }
});
