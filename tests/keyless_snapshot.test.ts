/**
 * Keyless tables replicated under `--keys` through snapshots (issue 14, item 9), against
 * real servers: a configured key that a unique index covers is paged in chunks; one that
 * may repeat is read whole, with a warning naming the table, since a keyset page that ends
 * inside a run of equal key values goes on after that value and skips the rest of the run
 * (and the sweep then deletes their keys). The data holds such runs across every chunk
 * boundary (2 rows a chunk): values equal for the database whose text (hence etcd key)
 * differs, `1`, `1.0`, `1.00` for PostgreSQL's numeric, `xy`, `Xy`, `xY` for MariaDB's
 * case-insensitive collation, plus identical rows, which are one etcd key with one value.
 * Both the first dump and an online re-snapshot (`sync snapshot`) must end with etcd equal
 * to what the independent checker computes.
 */
import { step, test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { runSync, startSync, streaming } from "../testing/sync.ts";
import { assertConverges, readEtcdKvs } from "../testing/checker.ts";
import { freePort, waitFor } from "../testing/process.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const WARNING = /read whole: no unique index covers its configured key columns/;

/** Tables read whole (warned) and paged (not warned), by driver. */
const WHOLE = { pgx: ["dup", "nullable", "partial"], mysql: ["dup", "nullable"] };
const PAGED = "uniq";

const PG_SCHEMA = `
  CREATE TABLE dup (k numeric NOT NULL, v text);
  INSERT INTO dup SELECT (g || s)::numeric, 'd' || g || s
    FROM generate_series(1, 40) g, unnest(ARRAY['', '.0', '.00']) s;
  INSERT INTO dup VALUES (1000, 'same'), (1000, 'same'), (1000, 'same');
  CREATE TABLE uniq (k numeric NOT NULL, id int NOT NULL, v text);
  CREATE UNIQUE INDEX uniq_id ON uniq (id);
  INSERT INTO uniq SELECT (g || s)::numeric, g * 10 + o, 'u' || g || s
    FROM generate_series(1, 20) g, unnest(ARRAY['', '.0', '.00']) WITH ORDINALITY x(s, o);
  CREATE TABLE nullable (k int, v text);
  CREATE UNIQUE INDEX nullable_k ON nullable (k);
  INSERT INTO nullable SELECT g, 'n' || g FROM generate_series(1, 5) g;
  CREATE TABLE partial (k int NOT NULL, v text);
  CREATE UNIQUE INDEX partial_k ON partial (k) WHERE k > 0;
  INSERT INTO partial SELECT g, 'p' || g FROM generate_series(1, 5) g;
  ALTER TABLE dup REPLICA IDENTITY FULL;
  ALTER TABLE uniq REPLICA IDENTITY FULL;
  ALTER TABLE nullable REPLICA IDENTITY FULL;
  ALTER TABLE partial REPLICA IDENTITY FULL;`;

/**
 * 6,009 rows in `dup`: more than the MariaDB first dump's 5,000-row chunk, the boundary
 * falling inside a run of three equal keys, so a chunked dump would lose one.
 */
const MYSQL_SCHEMA = `
  CREATE DATABASE app;
  CREATE TABLE app.dup (k VARCHAR(20) COLLATE utf8mb4_general_ci NOT NULL, v TEXT)
    CHARACTER SET utf8mb4;
  INSERT INTO app.dup SELECT CONCAT(x.p, seq), CONCAT('d', x.p, seq)
    FROM app.seq_1_to_2000, (SELECT 'xy' AS p UNION ALL SELECT 'Xy' UNION ALL SELECT 'xY') x;
  INSERT INTO app.dup VALUES ('same', 's'), ('same', 's'), ('same', 's');
  INSERT INTO app.dup VALUES ('zz', 'a'), ('Zz', 'b'), ('zZ', 'c'), ('ZZ', 'd'), ('zz ', 'e'), ('z', 'f');
  CREATE TABLE app.uniq (k VARCHAR(20) COLLATE utf8mb4_general_ci NOT NULL, id INT NOT NULL,
    v TEXT, UNIQUE KEY uniq_id (id)) CHARACTER SET utf8mb4;
  INSERT INTO app.uniq SELECT CONCAT(x.p, seq), seq * 10 + x.o, CONCAT('u', x.p, seq)
    FROM app.seq_1_to_20,
      (SELECT 'xy' AS p, 1 AS o UNION ALL SELECT 'Xy', 2 UNION ALL SELECT 'xY', 3) x;
  CREATE TABLE app.nullable (k INT, v TEXT, UNIQUE KEY nullable_k (k));
  INSERT INTO app.nullable SELECT seq, CONCAT('n', seq) FROM app.seq_1_to_5;`;

async function metricsText(port: number): Promise<string> {
  return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/** `sync_snapshot_chunks_total` of `table` (0 when absent). */
function chunks(metrics: string, table: string): number {
  const m = new RegExp(`^sync_snapshot_chunks_total\\{table="${table}"\\} (\\d+)$`, "m")
    .exec(metrics);
  return m ? Number(m[1]) : 0;
}

/** The warned tables, from sync's log lines. */
function warned(output: string): string[] {
  return output.split("\n").filter((l) => WARNING.test(l))
    .map((l) => /table=(\S+)/.exec(l)?.[1] ?? l);
}

interface Run {
  driver: "pgx" | "mysql";
  args: string[];
  expected: () => Promise<Map<string, string>>;
  prefix: string;
  stateKey: string;
  /** Tables the first dump reads in chunks, so warns of when read whole (MariaDB). */
  dumpWarns: boolean;
}

/** First dump, then every table re-snapshotted online on request; etcd exact each time. */
async function scenario(endpoint: string, r: Run): Promise<void> {
  const port = freePort();
  const args = [...r.args, `--etcd-endpoints=${endpoint}`, `--etcd-prefix=${r.prefix}`];
  const sync = startSync([...args, "--snapshot-chunk-rows=2", `--http-addr=127.0.0.1:${port}`]);
  const fail = (e: Error) => {
    throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
  };
  try {
    step("first dump");
    await assertConverges(endpoint, `${r.prefix}/`, r.expected, 90_000).catch(fail);
    await streaming(sync, 60_000).catch(fail);
    const whole = WHOLE[r.driver];
    assertEquals(warned(sync.output()).sort(), r.dumpWarns ? whole : [], sync.output());

    step("online re-snapshot of every table, on request");
    const tables = [...whole, PAGED];
    const asked = await runSync(["snapshot", ...tables, ...args]);
    assertEquals(asked.code, 0, asked.stderr);
    await waitFor("the requested snapshots done", async () => {
      const v = (await readEtcdKvs(endpoint, r.stateKey)).kvs.get(r.stateKey)?.value;
      const p = v ? JSON.parse(v) : {};
      return tables.every((t) => p[t]?.state === "done" && Array.isArray(p[t].requests));
    }, 90_000).catch(fail);
    await assertConverges(endpoint, `${r.prefix}/`, r.expected, 30_000).catch(fail);
    const once = r.dumpWarns ? [...whole, ...whole].sort() : whole;
    assertEquals(warned(sync.output()).sort(), once, sync.output());

    step("the covered key was paged, the others read in one piece");
    const m = await metricsText(port);
    assert(chunks(m, PAGED) > 10, `${PAGED} read in chunks of 2:\n${m}`);
    for (const t of whole) assertEquals(chunks(m, t), 1, `${t} read whole:\n${m}`);
    assertMatch(sync.output(), new RegExp(`msg="snapshot done" table=${PAGED}`));
  } finally {
    await sync.stop();
  }
}

test("pgx --keys: a key no unique index covers is read whole", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  try {
    await pg.psql(PG_SCHEMA);
    const keys = {
      "public.dup": ["k"],
      "public.uniq": ["k", "id"],
      "public.nullable": ["k"],
      "public.partial": ["k"],
    };
    await scenario(etcd.endpoint, {
      driver: "pgx",
      args: [
        "--driver=pgx",
        `--db-url=${pg.url}`,
        "--keys=public.dup=k,public.uniq=k+id,public.nullable=k,public.partial=k",
      ],
      expected: () => expectedFromPg(pg.sql, "/kl", undefined, keys),
      prefix: "/kl",
      stateKey: "/kl-state/pgx-postgres/snapshots",
      dumpWarns: false,
    });
  } finally {
    await pg.close();
    await etcd.close();
  }
});

test("mysql --keys: a key no unique index covers is read whole", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb();
  try {
    await db.query(MYSQL_SCHEMA);
    const keys = { "app.dup": ["k"], "app.uniq": ["k", "id"], "app.nullable": ["k"] };
    await scenario(etcd.endpoint, {
      driver: "mysql",
      args: [
        "--driver=mysql",
        `--db-url=${db.url}app`,
        "--server-id=4546",
        "--keys=app.dup=k,app.uniq=k+id,app.nullable=k",
      ],
      expected: () => expectedFromMysql(db.query, "/kl", ["app"], "app", keys),
      prefix: "/kl",
      stateKey: "/kl-state/mysql-app/snapshots",
      dumpWarns: true,
    });
  } finally {
    await db.close();
    await etcd.close();
  }
});
