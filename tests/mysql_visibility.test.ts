/**
 * MariaDB writes a transaction to the binlog, and sends it to replicas, before the commit
 * is visible to other sessions (with semi-synchronous replication's AFTER_SYNC it waits
 * there for a replica's acknowledgement). A snapshot chunk read in that moment must not
 * write the row's older value over the one the stream already applied: here a real
 * semi-sync wait (no semi-sync replica answers, so the commit waits out the timeout) holds
 * an UPDATE in exactly that state while `sync snapshot` reads its table.
 */
import { step, test } from "../testing/deadline.ts";
import { assertEquals } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { runSync, startSync } from "../testing/sync.ts";
import { assertConverges, readEtcdKvs } from "../testing/checker.ts";
import { waitFor } from "../testing/process.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
/** How long the UPDATE stays logged but invisible. */
const HOLD_MS = 12_000;

test("mysql: a snapshot does not undo a change logged but not yet visible", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb();
  await db.query(`CREATE DATABASE app;
    USE app;
    CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT);
    INSERT INTO app.t SELECT seq, 'old' FROM seq_1_to_50;`);
  const cli = [
    "--driver=mysql",
    `--db-url=${db.url}app`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/s",
    "--server-id=4262",
  ];
  const sync = startSync(cli);
  const fail = (e: Error) => {
    throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
  };
  const expected = () => expectedFromMysql(db.query, "/s", ["app"], "app");
  const value = async (key: string) =>
    (await readEtcdKvs(etcd.endpoint, key)).kvs.get(key)?.value ?? "";
  try {
    await assertConverges(etcd.endpoint, "/s/", expected, 60_000).catch(fail);
    // No semi-sync replica will acknowledge: the next commit waits HOLD_MS, logged and sent
    // to sync's binlog stream but invisible to other sessions, then goes through.
    await db.query(`SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC';
      SET GLOBAL rpl_semi_sync_master_timeout = ${HOLD_MS};
      SET GLOBAL rpl_semi_sync_master_enabled = ON;`);
    const held = db.query("UPDATE app.t SET v = 'new' WHERE id = 25");
    await waitFor("the stream to apply the held UPDATE", async () => {
      return (await value("/s/t/25")).includes('"new"');
    }, HOLD_MS / 2).catch(fail);
    const invisible = await db.query("SELECT v FROM app.t WHERE id = 25");
    assertEquals(invisible[0].v, "old", "the UPDATE is still invisible when the snapshot starts");
    step("sync snapshot t while the UPDATE is logged but not visible");
    const asked = await runSync(["snapshot", "t", ...cli]);
    assertEquals(asked.code, 0, asked.stderr);
    await waitFor("the snapshot request to reach sync", () => {
      return Promise.resolve(/snapshot requested/.test(sync.output()));
    }, HOLD_MS / 2).catch(fail);
    await held;
    await db.query("SET GLOBAL rpl_semi_sync_master_enabled = OFF");
    await waitFor("the requested snapshot of t to end", () => {
      return Promise.resolve(/snapshot requested[^]*snapshot done" table=t/.test(sync.output()));
    }, 60_000).catch(fail);
    await assertConverges(etcd.endpoint, "/s/", expected, 20_000).catch(fail);
  } finally {
    await sync.stop();
    await db.close();
    await etcd.close();
  }
});
