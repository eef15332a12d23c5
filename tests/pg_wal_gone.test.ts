/**
 * A slot whose WAL is gone (found by the torture stage after two Patroni failovers: the
 * promoted server lacked a segment of an earlier timeline the slot's restart point needed,
 * and `wal_status` did not say so). START_REPLICATION then fails with "requested WAL segment
 * ... has already been removed" on every attempt: sync must not retry that forever, but drop
 * the slot and dump again (design: the position it needs is gone). Here the segment holding
 * the slot's restart point is deleted by hand while sync is stopped.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startSync, streaming } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { waitFor } from "../testing/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

test("pgx: a slot whose WAL is gone is dropped and the tables dumped again", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  let sync: ReturnType<typeof startSync> | undefined;
  try {
    await pg.psql(`CREATE TABLE t (id int PRIMARY KEY, v text);
      INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g;`);
    const args = [
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/w",
    ];
    const expected = () => expectedFromPg(pg.sql, "/w");
    const converge = () =>
      assertConverges(etcd.endpoint, "/w/", expected, 60_000).catch((e) => {
        throw new Error(`${e.message}\n--- sync output:\n${sync?.output()}`);
      });
    sync = startSync(args);
    await streaming(sync);
    await converge();
    await sync.stop();

    // Changes while stopped, in later segments; then the slot's restart segment goes.
    const [{ seg }] = await pg.sql`SELECT pg_walfile_name(restart_lsn) AS seg
      FROM pg_replication_slots WHERE slot_name = 'sync'`;
    await pg.psql(`UPDATE t SET v = 'while stopped' WHERE id = 1; DELETE FROM t WHERE id = 2;
      SELECT pg_switch_wal(); INSERT INTO t VALUES (500, 'later segment');
      SELECT pg_switch_wal(); INSERT INTO t VALUES (501, 'later still');`);
    await Deno.remove(`${pg.dataDir}/pg_wal/${seg}`);

    sync = startSync(args);
    await waitFor(
      "sync to drop the slot and dump again",
      () => /msg="dump starting"/.test(sync!.output()),
      60_000,
      () => sync!.output(),
    );
    const out = sync.output();
    assert(/the slot cannot decode: WAL it needs is gone/.test(out), out);
    assert(/has already been removed/.test(out), out);
    await converge();
    await streaming(sync);
    await pg.psql("INSERT INTO t VALUES (600, 'streamed after the dump')");
    await converge();
    assertEquals(sync.output().match(/msg="dump starting"/g)?.length, 1, sync.output());
  } finally {
    await sync?.stop();
    await pg.close();
    await etcd.close();
  }
});
