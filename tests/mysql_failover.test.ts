/**
 * MariaDB failover: sync follows a primary, the primary dies, its GTID replica is promoted,
 * and sync resumes on the replica from the GTID list in the state key — no dump, nothing
 * lost. Then binlogs purged past the saved GTIDs force a full dump that converges too.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { startSync } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";
import { waitFor } from "../testing/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

test("mysql: resumes by GTID on a promoted MariaDB replica", opts, async () => {
  const etcd = await startEtcd();
  const primary = await startMariadb({ conf: { "server-id": 1 } });
  const replica = await startMariadb({ conf: { "server-id": 2, "log-slave-updates": "" } });
  let sync: ReturnType<typeof startSync> | undefined;
  const args = (url: string) => [
    "--driver=mysql",
    `--db-url=${url}app`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/f",
    "--server-id=4343",
  ];
  const converge = (db: typeof primary) =>
    assertConverges(
      etcd.endpoint,
      "/f/",
      () => expectedFromMysql(db.query, "/f", ["app"], "app"),
      90_000,
    ).catch((e) => {
      throw new Error(`${e.message}\n--- sync output:\n${sync?.output()}`);
    });
  try {
    await replica.query(
      `CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ${primary.port},
         MASTER_USER = 'root', MASTER_PASSWORD = '${primary.password}',
         MASTER_USE_GTID = slave_pos;
       START SLAVE;`,
    );
    await primary.query(`
      CREATE DATABASE app;
      USE app;
      CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(50), j JSON);
      INSERT INTO app.t SELECT seq, CONCAT('v', seq), '{"a": 1}' FROM seq_1_to_300;`);
    sync = startSync(args(primary.url));
    await converge(primary);
    await primary.query("UPDATE app.t SET v = 'streamed' WHERE id <= 10");
    await converge(primary);

    // sync stops; the primary goes on, then dies once the replica has everything.
    await sync.stop();
    await primary.query("INSERT INTO app.t (id, v) VALUES (1000, 'after sync stopped')");
    await primary.query("DELETE FROM app.t WHERE id = 20");
    const [{ pos }] = await primary.query("SELECT @@global.gtid_binlog_pos AS pos");
    const [{ waited }] = await replica.query(`SELECT MASTER_GTID_WAIT('${pos}', 60) AS waited`);
    assert(Number(waited) === 0, `replica did not reach ${pos}`);
    await primary.stop(true);
    await replica.query("STOP SLAVE; RESET SLAVE ALL;");
    await replica.query("UPDATE app.t SET v = 'on the new primary' WHERE id BETWEEN 30 AND 40");

    const started = Date.now();
    sync = startSync(args(replica.url));
    await waitFor(
      "sync to stream from the promoted replica",
      () => /msg=streaming/.test(sync!.output()),
      60_000,
    );
    // The figure docs/topologies.md quotes for a GTID resume.
    console.log(
      `mariadb gtid failover: streaming ${(Date.now() - started) / 1000} s after the start`,
    );
    await converge(replica);
    assertMatch(sync.output(), /resuming/);
    assertMatch(sync.output(), /msg=streaming gtid=/);
    assert(!/dump starting/.test(sync.output()), `resumed without a dump:\n${sync.output()}`);
    await replica.query("INSERT INTO app.t (id, v) VALUES (2000, 'streamed from the replica')");
    await converge(replica);

    // Changes whose binlog is purged while sync is away: the position (file and offset on
    // the server that wrote the state, GTIDs on another) is gone, so a dump.
    await sync.stop();
    await replica.query("INSERT INTO app.t (id, v) VALUES (3000, 'purged')");
    // MariaDB keeps a binlog until InnoDB has checkpointed past it: flush until it goes.
    await waitFor("the old binlogs to be purged", async () => {
      await replica.query("FLUSH BINARY LOGS");
      const logs = await replica.query("SHOW BINARY LOGS");
      await replica.query(`PURGE BINARY LOGS TO '${logs.at(-1).Log_name}'`);
      return (await replica.query("SHOW BINARY LOGS")).length === 1;
    }, 60_000);
    sync = startSync(args(replica.url));
    await converge(replica);
    assertMatch(sync.output(), /dump starting.*(is no longer on the server|were purged)/);
  } finally {
    await sync?.stop();
    await replica.close();
    await primary.close();
    await etcd.close();
  }
});
