/**
 * Issue 14, "a snapshot killed at 90% must not start over nor rewrite keys", for both
 * drivers against real servers: an online re-snapshot of a 12,000-row table (an ALTER that
 * changes every row's JSON), in 300-row chunks spread over 30-operation etcd transactions,
 * is killed with SIGKILL three times at cursors a seeded PRNG picks (SNAPSHOT_KILL_SEED,
 * default 14), each time while a chunk is seen half written, and restarted, while a writer
 * updates, inserts and deletes rows. From etcd itself: every key the writer never touched
 * is written exactly once after the ALTER (its version), the saved cursor never goes back
 * and the snapshot keeps its start across the restarts, its row total counts each row once,
 * no restart dumps, and at the end the independent checker finds etcd equal to the
 * database. The scenario is in testing/snapshot_kill.ts.
 */
import { test } from "../testing/deadline.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";
import { killedSnapshot, ROWS, seedFromEnv } from "../testing/snapshot_kill.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, deadlineMs: 180_000 };
const seed = seedFromEnv();

test("pgx: a re-snapshot killed three times resumes at its cursor", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  try {
    await pg.psql(`CREATE TABLE big (id int PRIMARY KEY, v text);
      INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, ${ROWS}) g;`);
    await killedSnapshot({
      driver: "pgx",
      args: [
        "--driver=pgx",
        `--db-url=${pg.url}`,
        `--etcd-endpoints=${etcd.endpoint}`,
        "--etcd-prefix=/s",
      ],
      endpoint: etcd.endpoint,
      stateKey: "/s-state/pgx-postgres/snapshots",
      table: "big",
      sqlTable: "big",
      prefix: "/s/",
      exec: (sql) => pg.sql.unsafe(sql),
      txn: (stmts) =>
        pg.sql.begin(async (tx) => {
          for (const s of stmts) await tx.unsafe(s);
        }),
      expected: () => expectedFromPg(pg.sql, "/s"),
    }, seed);
  } finally {
    await pg.close();
    await etcd.close();
  }
});

test("mysql: a re-snapshot killed three times resumes at its cursor", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb();
  try {
    await db.query(`CREATE DATABASE app; USE app; CREATE TABLE app.big (id INT PRIMARY KEY, v TEXT);
      INSERT INTO app.big SELECT seq, CONCAT('v', seq) FROM seq_1_to_${ROWS};`);
    await killedSnapshot({
      driver: "mysql",
      args: [
        "--driver=mysql",
        `--db-url=${db.url}app`,
        `--etcd-endpoints=${etcd.endpoint}`,
        "--etcd-prefix=/s",
        "--server-id=4262",
      ],
      endpoint: etcd.endpoint,
      stateKey: "/s-state/mysql-app/snapshots",
      table: "big",
      sqlTable: "app.big",
      prefix: "/s/",
      exec: (sql) => db.query(sql),
      txn: (stmts) => db.query(`BEGIN; ${stmts.join("; ")}; COMMIT;`),
      expected: () => expectedFromMysql(db.query, "/s", ["app"], "app"),
    }, seed);
  } finally {
    await db.close();
    await etcd.close();
  }
});
