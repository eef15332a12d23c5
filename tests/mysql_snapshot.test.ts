/**
 * Online snapshots with the mysql driver (design: Snapshots), against real MariaDB and
 * etcd: keys of every type page through the chunk reader in the server's order; an ALTER
 * re-snapshots only its table while writes aim at the rows being read, and etcd still
 * equals the database every round; the other tables' keys keep their mod_revision; a
 * kill -9 in the middle resumes at the cursor; a user with only SELECT, REPLICATION SLAVE
 * and REPLICATION CLIENT, without mysqldump on the PATH, dumps, streams and re-snapshots.
 */
import { step, test } from "../testing/deadline.ts";
import { assert, assertEquals } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { type MariaServer, startMariadb } from "../testing/mariadb.ts";
import { startSync } from "../testing/sync.ts";
import { assertConverges, readEtcdKvs, unexpectedWrites } from "../testing/checker.ts";
import { waitFor } from "../testing/process.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";
import { MysqlConn } from "../src/mysql/conn.ts";
import { chunkSession, readChunk } from "../src/mysql/chunks.ts";
import { loadSchemas } from "../src/mysql/schema.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
/** Large chunks: a longer read and write, so the writes below land inside them. */
const CHUNK = 2000;
const ROUNDS = 5;
/** Not UTC: TIMESTAMP keys and values must still be read in UTC. */
const TZ = { conf: { "default-time-zone": "+05:45" } };

async function connect(db: MariaServer): Promise<MysqlConn> {
  const c = await MysqlConn.connect({
    host: "127.0.0.1",
    port: db.port,
    user: "root",
    password: db.password,
    sslMode: "DISABLED",
  });
  return await chunkSession(c);
}

/** The snapshot progress sync keeps beside its state key. */
async function progress(endpoint: string): Promise<Record<string, Record<string, unknown>>> {
  const key = "/s-state/mysql-app/snapshots";
  const v = (await readEtcdKvs(endpoint, key)).kvs.get(key)?.value;
  return v ? JSON.parse(v) : {};
}

/** Keys of each type, several rows each, in no particular insert order. */
const KEYS = `
  CREATE DATABASE k;
  CREATE TABLE k.i (k BIGINT UNSIGNED PRIMARY KEY);
  INSERT INTO k.i VALUES (18446744073709551615), (0), (9007199254740993), (9007199254740992), (5);
  CREATE TABLE k.s (k BIGINT PRIMARY KEY);
  INSERT INTO k.s VALUES (-9223372036854775808), (9223372036854775807), (-1), (0), (1);
  CREATE TABLE k.d (k DECIMAL(30,10) PRIMARY KEY);
  INSERT INTO k.d VALUES (-1.5), (0.0000000001), (12345678901234567890.5), (0), (-0.0000000001);
  CREATE TABLE k.f (k FLOAT PRIMARY KEY);
  INSERT INTO k.f VALUES (1.1), (2.2), (-3.3), (0.1), (1e30), (1.1000001);
  CREATE TABLE k.db (k DOUBLE PRIMARY KEY);
  INSERT INTO k.db VALUES (0.1), (0.30000000000000004), (0.3), (-1e300), (2.5);
  CREATE TABLE k.dt (k DATETIME(6) PRIMARY KEY);
  INSERT INTO k.dt VALUES ('2024-01-01 00:00:00.000001'), ('2024-01-01 00:00:00'),
    ('1000-01-01 00:00:00'), ('9999-12-31 23:59:59.999999'), ('0000-00-00 00:00:00');
  CREATE TABLE k.ts (k TIMESTAMP(2) PRIMARY KEY);
  INSERT INTO k.ts VALUES ('2024-03-31 05:45:00.5'), ('2024-03-31 05:45:00'),
    ('1970-01-01 05:45:01'), ('2038-01-19 08:59:07.99'), ('2000-01-01 00:00:00');
  CREATE TABLE k.t (k TIME(3) PRIMARY KEY);
  INSERT INTO k.t VALUES ('-838:59:59'), ('-00:00:00.001'), ('00:00:00'), ('838:59:59'), ('12:00');
  CREATE TABLE k.l (k VARCHAR(10) CHARACTER SET latin1 PRIMARY KEY);
  INSERT INTO k.l VALUES ('a'), ('é'), ('Z'), ('Ö'), ('b '), ('\\''), ('\\\\');
  CREATE TABLE k.u (k VARCHAR(20) COLLATE utf8mb4_unicode_ci PRIMARY KEY);
  INSERT INTO k.u VALUES ('ä'), ('b'), ('C'), ('😀'), ('日本'), ('%2F/'), ('');
  CREATE TABLE k.ub (k VARCHAR(20) COLLATE utf8mb4_bin PRIMARY KEY);
  INSERT INTO k.ub VALUES ('ä'), ('b'), ('B'), ('😀'), ('a\\0b'), ('z');
  CREATE TABLE k.e (k ENUM('zeta','alpha','mid') PRIMARY KEY);
  INSERT INTO k.e VALUES ('mid'), ('zeta'), ('alpha');
  CREATE TABLE k.st (k SET('z','a','m') PRIMARY KEY);
  INSERT INTO k.st VALUES ('a,m'), ('z'), (''), ('z,a,m'), ('m');
  CREATE TABLE k.b (k BIT(64) PRIMARY KEY);
  INSERT INTO k.b VALUES (b'0'), (b'1111111111111111111111111111111111111111111111111111111111111111'), (b'101'), (9007199254740993);
  CREATE TABLE k.y (k YEAR PRIMARY KEY);
  INSERT INTO k.y VALUES (2155), (1901), (0), (2024);
  CREATE TABLE k.bin (k BINARY(4) PRIMARY KEY);
  INSERT INTO k.bin VALUES (x'00'), (x'ffffffff'), ('ab'), (x'2f25'), (x'00000001');
  CREATE TABLE k.vb (k VARBINARY(8) PRIMARY KEY);
  INSERT INTO k.vb VALUES (x''), (x'00'), (x'0000'), (x'ff'), ('Aa'), ('a');
  CREATE TABLE k.c (a VARCHAR(5), b INT, c VARBINARY(4), d DATE, PRIMARY KEY (a, b, c, d));
  INSERT INTO k.c VALUES ('x', 2, x'01', '2024-01-01'), ('x', 2, x'01', '2023-01-01'),
    ('x', 1, x'ff', '2024-01-01'), ('w', 9, x'00', '2024-01-01'), ('x', 2, x'00', '2030-01-01'),
    ('X ', 3, x'', '2000-01-01');`;

test("mysql chunk reads: keys of every type page in the server's order", opts, async () => {
  const db = await startMariadb(TZ);
  const conn = await connect(db).catch(async (e) => {
    await db.close();
    throw e;
  });
  try {
    await db.query(KEYS);
    const tables = [...(await loadSchemas(conn, ["k"], true)).values()];
    assertEquals(tables.length, 18);
    for (const t of tables) {
      const keys = t.keyColumns.map((i) => "`" + t.columns[i].name + "`").join(", ");
      // The server's own order and rows, read whole.
      const whole = await readChunk(conn, t, null, 1000);
      const order = await conn.query(`SELECT COUNT(*) FROM k.${t.table}`);
      assertEquals(String(whole.length), order.rows[0][0], `${t.table}: every row (${keys})`);
      // One row at a time, each from the last one's cursor.
      const paged = [];
      let after: readonly string[] | null = null;
      for (let i = 0; i <= whole.length; i++) {
        const rows = await readChunk(conn, t, after, 1);
        if (!rows.length) break;
        paged.push(rows[0]);
        after = rows[0].after;
      }
      assertEquals(paged.map((r) => r.key), whole.map((r) => r.key), `${t.table} paged`);
      assertEquals(paged.map((r) => r.cells), whole.map((r) => r.cells), `${t.table} cells`);
      // A replay up to a cursor (after a restart) stops there, inclusive.
      const mid = whole[2].after;
      const upTo = await readChunk(conn, t, null, 1000, mid);
      assertEquals(upTo.map((r) => r.key), whole.slice(0, 3).map((r) => r.key), t.table);
      const between = await readChunk(conn, t, whole[0].after, 1000, mid);
      assertEquals(between.map((r) => r.key), whole.slice(1, 3).map((r) => r.key), t.table);
    }
  } finally {
    conn.close();
    await db.close();
  }
});

const SCHEMA = `
  CREATE DATABASE app;
  USE app;
  CREATE TABLE app.hot (id INT PRIMARY KEY, v TEXT, n INT);
  CREATE TABLE app.quiet (id INT PRIMARY KEY, v VARCHAR(50));
  CREATE TABLE app.pairs (a VARCHAR(20), b INT, v TEXT, PRIMARY KEY (a, b));
  INSERT INTO app.hot SELECT seq, CONCAT('hot ', seq), seq FROM seq_1_to_40000;
  INSERT INTO app.quiet SELECT seq, CONCAT('quiet ', seq) FROM seq_1_to_500;
  INSERT INTO app.pairs SELECT CONCAT(CHAR(65 + seq % 26), '/', seq), seq % 7, 'p'
    FROM seq_1_to_2000;`;

function syncArgs(db: MariaServer, etcd: string, url = `${db.url}app`): string[] {
  return [
    "--driver=mysql",
    `--db-url=${url}`,
    `--etcd-endpoints=${etcd}`,
    "--etcd-prefix=/s",
    "--server-id=4261",
  ];
}

test("mysql: an ALTER re-snapshots one table online, racing writes converge", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb(TZ);
  await db.query(SCHEMA);
  const sync = startSync([...syncArgs(db, etcd.endpoint), `--snapshot-chunk-rows=${CHUNK}`]);
  const fail = (e: Error) => {
    throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
  };
  const expected = () => expectedFromMysql(db.query, "/s", ["app"], "app");
  try {
    await assertConverges(etcd.endpoint, "/s/", expected, 90_000).catch(fail);
    const before = await readEtcdKvs(etcd.endpoint, "/s/");

    // Seeded: the same writes every run, aimed at the rows just after the saved cursor,
    // which the snapshot is reading at that moment.
    let seed = 42;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    let fresh = 100_000;
    const hammer = async (cursor: number) => {
      const id = cursor + 1 + rnd(CHUNK * 2);
      const op = rnd(4);
      if (op === 0) await db.query(`UPDATE app.hot SET n = n + 1 WHERE id = ${id}`);
      else if (op === 1) await db.query(`DELETE FROM app.hot WHERE id = ${id}`);
      else if (op === 2) await db.query(`UPDATE app.hot SET id = ${fresh++} WHERE id = ${id}`);
      else await db.query(`INSERT IGNORE INTO app.hot (id, v, n) VALUES (${id}, 'back', 0)`);
    };
    for (let round = 1; round <= ROUNDS; round++) {
      step(`round ${round}: ALTER TABLE hot while writes aim at the rows being read`);
      // FORCE rewrites the table (no row events), ADD COLUMN changes every row's JSON.
      await db.query(`ALTER TABLE app.hot ADD COLUMN extra${round} INT DEFAULT ${round}, FORCE;
        UPDATE app.hot SET v = 'round ${round}' WHERE id = 1;`);
      let done = false;
      const workers = [0, 1, 2].map(async () => {
        while (!done) {
          const s = (await progress(etcd.endpoint)).hot;
          const after = s?.state === "running" && Array.isArray(s.after) ? Number(s.after[0]) : 0;
          for (let i = 0; i < 5; i++) await hammer(after);
        }
      });
      await waitFor(`round ${round}: hot's snapshot done`, async () => {
        const s = (await progress(etcd.endpoint)).hot;
        return s?.state === "done" && (s.rows as number) > 0 &&
          sync.output().split('msg="snapshot done" table=hot').length > round;
      }, 120_000).catch(fail);
      done = true;
      await Promise.all(workers);
      await assertConverges(etcd.endpoint, "/s/", expected, 60_000).catch(fail);
    }
    const out = sync.output();
    assertEquals(out.match(/msg="dump starting"/g)?.length, 1, `one dump only:\n${out}`);
    assert(!/msg=retrying/.test(out), `no retry:\n${out}`);

    step("the other tables' keys were not written");
    const mid = await readEtcdKvs(etcd.endpoint, "/s/");
    const others = (m: typeof mid.kvs) => new Map([...m].filter(([k]) => !k.startsWith("/s/hot/")));
    assertEquals(unexpectedWrites(others(before.kvs), others(mid.kvs), () => 0), null);

    step("a re-snapshot of unchanged rows writes none of them");
    // A longer VARCHAR: another definition, the same JSON for every row.
    await db.query(`ALTER TABLE app.quiet MODIFY v VARCHAR(100);
      UPDATE app.quiet SET v = 'touched' WHERE id = 500;`);
    // The dump already marked quiet done: wait for this snapshot's own end.
    await waitFor("quiet's snapshot done", async () => {
      return (await progress(etcd.endpoint)).quiet?.state === "done" &&
        /msg="snapshot done" table=quiet/.test(sync.output());
    }, 60_000).catch(fail);
    await assertConverges(etcd.endpoint, "/s/", expected, 60_000).catch(fail);
    const last = await readEtcdKvs(etcd.endpoint, "/s/");
    const quiet = (m: typeof mid.kvs) => new Map([...m].filter(([k]) => k.startsWith("/s/quiet/")));
    assertEquals(
      unexpectedWrites(quiet(mid.kvs), quiet(last.kvs), (k) => k === "/s/quiet/500" ? 1 : 0),
      null,
    );
  } finally {
    await sync.stop();
    await db.close();
    await etcd.close();
  }
});

test("mysql: a snapshot killed half-way resumes at its cursor", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb(TZ);
  await db.query(`CREATE DATABASE app; USE app; CREATE TABLE app.big (id INT PRIMARY KEY, v TEXT);
    INSERT INTO app.big SELECT seq, CONCAT('v', seq) FROM seq_1_to_40000;`);
  const args = [...syncArgs(db, etcd.endpoint), "--snapshot-chunk-rows=500"];
  let sync = startSync(args);
  const fail = (e: Error) => {
    throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
  };
  const expected = () => expectedFromMysql(db.query, "/s", ["app"], "app");
  try {
    await assertConverges(etcd.endpoint, "/s/", expected, 90_000).catch(fail);
    // Every row changes without a row event: the snapshot rewrites all of them.
    await db.query(`ALTER TABLE app.big ADD COLUMN extra INT DEFAULT 7;
      UPDATE app.big SET v = 'go' WHERE id = 1;`);
    let cursor = 0;
    await waitFor("the snapshot a quarter through", async () => {
      const s = (await progress(etcd.endpoint)).big;
      cursor = s?.state === "running" && Array.isArray(s.after) ? Number(s.after[0]) : 0;
      return cursor >= 10000;
    }, 60_000).catch(fail);
    sync.signal("SIGKILL");
    await sync.exited;
    const killed = await readEtcdKvs(etcd.endpoint, "/s/");
    const saved = (await progress(etcd.endpoint)).big;
    assertEquals(saved?.state, "running", "killed mid-snapshot");
    const at = Number((saved as { after: string[] }).after[0]);
    assert(at >= cursor && at < 40000, `cursor ${at}`);

    sync = startSync(args);
    await waitFor("big's snapshot done", async () => {
      return (await progress(etcd.endpoint)).big?.state === "done";
    }, 90_000).catch(fail);
    await assertConverges(etcd.endpoint, "/s/", expected, 60_000).catch(fail);
    assert(!/dump starting/.test(sync.output()), `resumed without a dump:\n${sync.output()}`);
    const after = await readEtcdKvs(etcd.endpoint, "/s/");
    // Rows up to the saved cursor were written before the kill: not again.
    let again = 0;
    for (const [k, kv] of after.kvs) {
      const id = Number(k.slice("/s/big/".length));
      if (id <= at && kv.modRevision !== killed.kvs.get(k)?.modRevision) again++;
    }
    assertEquals(again, 0, "rows before the cursor written again");
    const rest = [...after.kvs].filter(([k, kv]) =>
      Number(k.slice("/s/big/".length)) > at && kv.modRevision > killed.revision
    ).length;
    assert(rest > 0 && rest <= 40000 - at, `rows after the cursor written: ${rest}`);
  } finally {
    await sync.stop();
    await db.close();
    await etcd.close();
  }
});

test(
  "mysql: a first dump killed half-way resumes with the tables it had not finished",
  opts,
  async () => {
    const etcd = await startEtcd();
    const db = await startMariadb(TZ);
    await db.query(`CREATE DATABASE app; USE app;
    CREATE TABLE app.a_small (id INT PRIMARY KEY, v TEXT);
    CREATE TABLE app.b_big (id INT PRIMARY KEY, v TEXT);
    INSERT INTO app.a_small SELECT seq, CONCAT('s', seq) FROM seq_1_to_3000;
    INSERT INTO app.b_big SELECT seq, CONCAT('v', seq) FROM seq_1_to_40000;`);
    // Small etcd transactions: a dump of seconds, so the kill lands inside it.
    const args = [...syncArgs(db, etcd.endpoint), "--etcd-max-txn-ops=16"];
    let sync = startSync(args);
    const fail = (e: Error) => {
      throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
    };
    const expected = () => expectedFromMysql(db.query, "/s", ["app"], "app");
    try {
      await waitFor("the small table done and the big one under way", async () => {
        const p = await progress(etcd.endpoint);
        return p.a_small?.state === "done" && p.b_big?.state === "running" &&
          (await readEtcdKvs(etcd.endpoint, "/s/b_big/1")).kvs.size > 0;
      }, 90_000).catch(fail);
      sync.signal("SIGKILL");
      await sync.exited;
      const killed = await readEtcdKvs(etcd.endpoint, "/s/");
      const big = [...killed.kvs.keys()].filter((k) => k.startsWith("/s/b_big/")).length;
      assert(big > 0 && big < 40000, `killed with ${big} of 40000 rows in etcd`);
      assertEquals((await progress(etcd.endpoint)).b_big?.state, "running", "killed mid-dump");

      sync = startSync(args);
      // 40,000 rows in 16-op transactions: tens of seconds on a machine the whole suite loads.
      await assertConverges(etcd.endpoint, "/s/", expected, 300_000).catch(fail);
      assert(!/dump starting/.test(sync.output()), `resumed without a dump:\n${sync.output()}`);
      // Nothing the dump wrote before the kill is written again: the finished table is not read
      // again, and the unfinished one's rows already in etcd are equal.
      const after = await readEtcdKvs(etcd.endpoint, "/s/");
      const again = [...killed.kvs].filter(([k, kv]) =>
        after.kvs.get(k)?.modRevision !== kv.modRevision
      );
      assertEquals(again.length, 0, "rows the dump wrote were written again");
    } finally {
      await sync.stop();
      await db.close();
      await etcd.close();
    }
  },
);

test(
  "mysql: SELECT and replication grants only, no mysqldump: dump, stream, ALTER",
  opts,
  async () => {
    const etcd = await startEtcd();
    const db = await startMariadb(TZ);
    await db.query(`${SCHEMA}
    CREATE USER 'ro'@'127.0.0.1' IDENTIFIED BY 'ro-pw';
    GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'ro'@'127.0.0.1';`);
    const url = db.url.replace(`root:${db.password}`, "ro:ro-pw") + "app";
    // No program can be found, and none may be run (the harness grants no --allow-run).
    const sync = startSync(
      [...syncArgs(db, etcd.endpoint, url), "--snapshot-chunk-rows=700"],
      { PATH: "/nonexistent" },
    );
    const fail = (e: Error) => {
      throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
    };
    const expected = () => expectedFromMysql(db.query, "/s", ["app"], "app");
    try {
      await assertConverges(etcd.endpoint, "/s/", expected, 90_000).catch(fail);
      assert(/msg="dump done"/.test(sync.output()), sync.output());
      await db.query(`INSERT INTO app.hot VALUES (50000, 'new', 1);
      ALTER TABLE app.pairs ADD COLUMN w INT DEFAULT 3;
      UPDATE app.pairs SET v = 'q' WHERE b = 2;
      RENAME TABLE app.quiet TO app.calm;
      DELETE FROM app.hot WHERE id < 100;`);
      await waitFor("pairs and calm snapshotted", () => {
        const out = sync.output();
        return /msg="snapshot done" table=pairs /.test(out) &&
          /msg="snapshot done" table=calm /.test(out);
      }, 90_000).catch(fail);
      await assertConverges(etcd.endpoint, "/s/", expected, 60_000).catch(fail);
      const out = sync.output();
      assert(!/msg=retrying/.test(out), `no retry:\n${out}`);
      assertEquals(out.match(/msg="dump starting"/g)?.length, 1, out);
    } finally {
      await sync.stop();
      await db.close();
      await etcd.close();
    }
  },
);
