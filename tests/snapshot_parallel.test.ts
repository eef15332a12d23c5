/**
 * `--snapshot-parallel` above 1 (design: Snapshots), against real servers, for both
 * drivers: four tables re-snapshotted online at once, three at a time, in small chunks so
 * that many chunk reads of different tables overlap, while a workload writes to those same
 * tables. etcd ends equal to the database, every table's snapshot is done, and no attempt
 * failed on the way (reads sharing one connection interleaved their transactions and
 * replies there, and failed or read another table's rows).
 */
import { step, test } from "../testing/deadline.ts";
import { assert, assertEquals } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { launchSync, type SyncRun } from "../testing/sync.ts";
import { assertConverges, readEtcdKvs } from "../testing/checker.ts";
import { waitFor } from "../testing/process.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, deadlineMs: 150_000 };
const TABLES = ["t1", "t2", "t3", "t4"];
const ROWS = 3000;
/** Small chunks: many reads per table, so the tables' reads interleave. */
const CHUNK = 50;
const PARALLEL = 3;

/** What the scenario needs of one driver's server. */
interface Driver {
  /** The key of sync's snapshot progress in etcd. */
  progressKey: string;
  /** sync's arguments for this server (etcd's and the snapshot settings added). */
  args: string[];
  /** Run SQL text (several statements allowed). */
  exec(sql: string): Promise<unknown>;
  /** The database as etcd should hold it. */
  expected(): Promise<Map<string, string>>;
  /** SQL that changes every row of a table without a row event: it is snapshotted again. */
  alter(table: string): string;
  /** An insert that does nothing when the key is taken. */
  insertBack(table: string, id: number): string;
  /** Two UPDATEs in one transaction. */
  txn(first: string, second: string): string;
}

type Progress = Record<string, { state?: string; rows?: number }>;

async function progress(endpoint: string, key: string): Promise<Progress> {
  const v = (await readEtcdKvs(endpoint, key)).kvs.get(key)?.value;
  return v ? JSON.parse(v) : {};
}

/** Writes to the snapshotted tables until `stop()`: seeded, the same every run. */
function workload(d: Driver): { stop(): Promise<number> } {
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  let fresh = 100_000;
  let running = true;
  let writes = 0;
  const one = (): string => {
    const t = TABLES[rnd(TABLES.length)];
    const id = 1 + rnd(ROWS);
    switch (rnd(5)) {
      case 0:
        return `UPDATE ${t} SET n = n + 1 WHERE id = ${id}`;
      case 1:
        return `DELETE FROM ${t} WHERE id = ${id}`;
      case 2:
        return `UPDATE ${t} SET id = ${fresh++} WHERE id = ${id}`;
      case 3:
        return d.insertBack(t, id);
      default: {
        // One transaction across two tables (both may be mid-snapshot).
        const u = TABLES[rnd(TABLES.length)];
        return d.txn(
          `UPDATE ${t} SET v = 'x${fresh}' WHERE id = ${id}`,
          `UPDATE ${u} SET n = n - 1 WHERE id = ${1 + rnd(ROWS)}`,
        );
      }
    }
  };
  const workers = [0, 1].map(async () => {
    while (running) {
      await d.exec(one());
      writes++;
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(workers);
      return writes;
    },
  };
}

/** How many `msg="snapshot done"` lines sync logged for `table`. */
function doneLines(out: string, table: string): number {
  return out.match(new RegExp(`msg="snapshot done" table=${table}\\b`, "g"))?.length ?? 0;
}

/**
 * Wait until every table's snapshot is done (state, and a log line more than `before`);
 * meanwhile count the tables seen mid-snapshot (running, rows written) at one time.
 */
async function waitAllDone(
  sync: SyncRun,
  endpoint: string,
  d: Driver,
  before: number[],
): Promise<number> {
  let most = 0;
  await waitFor(
    `the snapshots of ${TABLES.join(", ")} done`,
    async () => {
      const p = await progress(endpoint, d.progressKey);
      const mid = TABLES.filter((t) => p[t]?.state === "running" && (p[t].rows ?? 0) > 0);
      most = Math.max(most, mid.length);
      const out = sync.output();
      return TABLES.every((t, i) => p[t]?.state === "done" && doneLines(out, t) > before[i]);
    },
    60_000,
    () => sync.output(),
  );
  return most;
}

async function scenario(d: Driver, etcd: string): Promise<void> {
  const sync = launchSync([
    ...d.args,
    `--etcd-endpoints=${etcd}`,
    "--etcd-prefix=/s",
    `--snapshot-chunk-rows=${CHUNK}`,
    `--snapshot-parallel=${PARALLEL}`,
  ]);
  const fail = (e: Error) => {
    throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
  };
  try {
    await assertConverges(etcd, "/s/", d.expected, 60_000).catch(fail);
    await waitFor("sync to stream", () => /msg=streaming/.test(sync.output()), 30_000)
      .catch(fail);

    step(`ALTER ${TABLES.join(", ")} while a workload writes to them`);
    const before = TABLES.map((t) => doneLines(sync.output(), t));
    const t0 = Date.now();
    await d.exec(TABLES.map((t) => d.alter(t)).join("\n"));
    const load = workload(d);
    let most = 0;
    try {
      most = await waitAllDone(sync, etcd, d, before).catch(fail);
    } finally {
      const writes = await load.stop();
      step(`snapshots done in ${Date.now() - t0} ms, ${writes} writes meanwhile`);
    }
    await assertConverges(etcd, "/s/", d.expected, 30_000).catch(fail);

    const out = sync.output();
    assert(!/msg=retrying/.test(out), `no attempt failed:\n${out}`);
    assertEquals(out.match(/msg="dump starting"/g)?.length, 1, `one dump only:\n${out}`);
    // The reads overlapped (else this proves nothing), and no more than the setting.
    assert(most >= 2 && most <= PARALLEL, `tables mid-snapshot at once: ${most}`);
  } finally {
    await sync.stop();
  }
}

test("pgx: four tables snapshotted three at a time while written converge", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  try {
    await pg.psql(
      TABLES.map((t) =>
        `CREATE TABLE ${t} (id int PRIMARY KEY, v text, n int);
       INSERT INTO ${t} SELECT g, '${t} ' || g, g FROM generate_series(1, ${ROWS}) g;`
      ).join("\n"),
    );
    await scenario({
      progressKey: "/s-state/pgx-postgres/snapshots",
      args: ["--driver=pgx", `--db-url=${pg.url}`],
      exec: (sql) => pg.sql.unsafe(sql),
      expected: () => expectedFromPg(pg.sql, "/s"),
      // PostgreSQL sends the new shape with the table's next row change.
      alter: (t) =>
        `ALTER TABLE ${t} ADD COLUMN extra int DEFAULT 7; UPDATE ${t} SET v = 'go' WHERE id = 1;`,
      insertBack: (t, id) =>
        `INSERT INTO ${t} VALUES (${id}, 'back', 0) ON CONFLICT (id) DO NOTHING`,
      // One statement (postgres.js refuses a BEGIN on a pooled connection).
      txn: (a, b) => `WITH w AS (${a} RETURNING 1) ${b}`,
    }, etcd.endpoint);
  } finally {
    await pg.close();
    await etcd.close();
  }
});

test("mysql: four tables snapshotted three at a time while written converge", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb();
  try {
    await db.query(
      "CREATE DATABASE app; USE app;\n" +
        TABLES.map((t) =>
          `CREATE TABLE app.${t} (id INT PRIMARY KEY, v TEXT, n INT);
         INSERT INTO app.${t} SELECT seq, CONCAT('${t} ', seq), seq FROM seq_1_to_${ROWS};`
        ).join("\n"),
    );
    await scenario({
      progressKey: "/s-state/mysql-app/snapshots",
      args: ["--driver=mysql", `--db-url=${db.url}app`, "--server-id=4262"],
      // The root session has no default database: name it in every batch.
      exec: (sql) => db.query(`USE app; ${sql}`),
      expected: () => expectedFromMysql(db.query, "/s", ["app"], "app"),
      // FORCE rewrites the table (no row events), ADD COLUMN changes every row's JSON.
      alter: (t) => `ALTER TABLE ${t} ADD COLUMN extra INT DEFAULT 7, FORCE;`,
      insertBack: (t, id) => `INSERT IGNORE INTO ${t} (id, v, n) VALUES (${id}, 'back', 0)`,
      txn: (a, b) => `START TRANSACTION; ${a}; ${b}; COMMIT`,
    }, etcd.endpoint);
  } finally {
    await db.close();
    await etcd.close();
  }
});
