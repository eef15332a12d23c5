/**
 * The mysql driver end to end against real MariaDB and etcd: the first dump, binlog
 * streaming of every change kind (DDL and rotation included, ALTER and RENAME snapshotted
 * again online), resume after SIGKILL, and
 * clear errors for bad settings. Each step ends with etcd equal to the database. The
 * servers' default time zone is +05:45 (not UTC, not a whole hour), so a TIMESTAMP sync
 * does not write in UTC shows.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { runSync, startLog, startSync } from "../testing/sync.ts";
import { assertConverges, readEtcd } from "../testing/checker.ts";
import { waitFor } from "../testing/process.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
/** Asia/Kathmandu's offset (a named zone needs the server's time zone tables). */
const TZ = { conf: { "default-time-zone": "+05:45" } };

const SCHEMA = `
  CREATE DATABASE app CHARACTER SET utf8mb4;
  CREATE DATABASE other;
  USE app;
  CREATE TABLE items (
    id BIGINT PRIMARY KEY, name VARCHAR(100), latin VARCHAR(20) CHARACTER SET latin1,
    price DECIMAL(12,3), big DECIMAL(40,20), ratio DOUBLE, f FLOAT, ok BOOLEAN,
    u INT UNSIGNED, ub BIGINT UNSIGNED, tiny TINYINT, y YEAR,
    doc JSON, kind ENUM('a','b','c'), flags SET('x','y','z'), bits BIT(12),
    d DATE, t TIME(3), dt DATETIME(6), ts TIMESTAMP(2) NULL, blob_col BLOB, bin BINARY(4),
    note TEXT, g GEOMETRY);
  CREATE TABLE pairs (a VARCHAR(20), b INT, v TEXT, PRIMARY KEY (a, b));
  CREATE TABLE bkey (k VARBINARY(8) PRIMARY KEY, v INT);
  CREATE TABLE nokey (v INT);
  CREATE TABLE other.hidden (id INT PRIMARY KEY);
  INSERT INTO items VALUES
    (1, 'one', 'caf\\xe9', 1.5, -12345678901234567890.01234567890123456789, 0.1, 1.1, 1,
     4294967295, 18446744073709551615, -128, 2024, '{"a": [1, 2.5, "x"], "b": null}', 'b',
     'x,z', b'101010101010', '2024-02-29', '-838:59:59.000', '2024-02-29 23:59:59.123456',
     '2038-01-19 03:14:07.99', x'00ff10', x'01020304', 'line\\nbreak "q"',
     ST_GeomFromText('POINT(1 2)')),
    (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
  INSERT INTO items (id, name) SELECT seq, CONCAT('n', seq) FROM seq_3_to_800;
  INSERT INTO pairs VALUES ('a/b', 1, 'slash'), ('%', 2, 'percent'), ('ü', 3, 'umlaut');
  INSERT INTO bkey VALUES (x'00ff2f', 1), ('plain', 2);
  INSERT INTO nokey VALUES (1);
  INSERT INTO other.hidden VALUES (1);
`;

const WORKLOAD = `
  USE app;
  -- The smallest TIMESTAMP (1970-01-01 00:00:01 UTC) in the session's +05:45.
  INSERT INTO items (id, name, price, doc, kind, flags, bits, dt, ts)
    VALUES (5000, 'new', 2.25, '[]', 'c', '', b'1', '1000-01-01 00:00:00', '1970-01-01 05:45:01');
  UPDATE items SET name = 'renamed', price = 99999.999, f = 3.25 WHERE id = 1;
  DELETE FROM items WHERE id BETWEEN 10 AND 20;
  UPDATE items SET id = 7000 WHERE id = 3;
  UPDATE pairs SET b = 20 WHERE a = 'a/b';
  UPDATE bkey SET v = 10 WHERE k = x'00ff2f';
  BEGIN; INSERT INTO pairs VALUES ('rolled', 1, 'back'); ROLLBACK;
  BEGIN;
  INSERT INTO pairs SELECT 'bulk', seq, REPEAT('x', seq % 50) FROM seq_1_to_3000;
  UPDATE pairs SET v = 'twice' WHERE a = 'bulk' AND b < 100;
  COMMIT;
  FLUSH BINARY LOGS;
  ALTER TABLE pairs ADD COLUMN extra INT DEFAULT 7;
  INSERT INTO pairs VALUES ('after alter', 1, 'x', 8);
  ALTER TABLE pairs DROP COLUMN extra;
  UPDATE pairs SET v = 'after drop' WHERE a = '%';
  ALTER TABLE items MODIFY COLUMN price DECIMAL(14,5);
  UPDATE items SET name = 'after modify' WHERE id = 5;
  RENAME TABLE pairs TO pairs_renamed;
  RENAME TABLE pairs_renamed TO pairs;
  CREATE TABLE moved (id INT PRIMARY KEY); INSERT INTO moved VALUES (1);
  ALTER TABLE moved RENAME TO moved2;
  TRUNCATE TABLE bkey;
  INSERT INTO bkey VALUES ('again', 3);
  INSERT INTO nokey VALUES (2);
  INSERT INTO other.hidden VALUES (2);
`;

test("mysql: dump, stream every change kind, resume after SIGKILL", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb(TZ);
  let sync: ReturnType<typeof startSync> | undefined;
  try {
    await db.query(SCHEMA);
    const args = [
      "--driver=mysql",
      `--db-url=${db.url}app`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/m",
      "--server-id=4242",
      "--log-level=debug",
    ];
    sync = startSync(args);
    const expected = () => expectedFromMysql(db.query, "/m", ["app"], "app");
    const converge = () =>
      assertConverges(etcd.endpoint, "/m/", expected, 90_000).catch((e) => {
        throw new Error(`${e.message}\n--- sync output:\n${sync!.output()}`);
      });
    await converge();
    const dumped = await readEtcd(etcd.endpoint, "/m/");
    assert(dumped.has("/m/items/1"), "items dumped");
    assert(dumped.has("/m/pairs/a%2Fb/1"), "composite key percent-encoded");
    assert(dumped.has("/m/bkey/%00%FF%2F"), "binary key from its bytes");
    assert(![...dumped.keys()].some((k) => k.includes("hidden")), "other database not selected");
    assertMatch(sync.output(), /without a primary key.*nokey/);

    await db.query(WORKLOAD);
    await converge();

    // ALTER and RENAME re-snapshot their tables online while the stream goes on: no second
    // dump, no retry.
    await waitFor("items and pairs snapshotted again", () => {
      const out = sync!.output();
      return /msg="snapshot done" table=items /.test(out) &&
        /msg="snapshot done" table=pairs /.test(out);
    }, 60_000);
    assertEquals(sync.output().match(/msg="dump starting"/g)?.length, 1, sync.output());
    assert(!/msg=retrying/.test(sync.output()), `no retry:\n${sync.output()}`);
    sync.signal("SIGKILL");
    await sync.exited;
    await db.query("INSERT INTO app.items (id, name) VALUES (6000, 'while down')");
    await db.query("DELETE FROM app.items WHERE id = 100");
    sync = startSync(args);
    await converge();
    const started = await startLog(sync);
    assertMatch(started, /resuming/);
    assert(!/dump starting/.test(started), "resumed without a dump");
    // MODIFY changed how every price prints (scale 3 to 5) without a row event for it.
    assertMatch(
      (await readEtcd(etcd.endpoint, "/m/items/")).get("/m/items/1")!,
      /"price":99999\.99900,/,
    );
  } finally {
    await sync?.stop();
    await db.close();
    await etcd.close();
  }
});

test("mysql: two databases selected by --tables/--exclude", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb(TZ);
  const sync = startSync([
    "--driver=mysql",
    `--db-url=${db.url}shop`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/f",
    "--server-id=4243",
    "--tables=shop.*,crm.*",
    "--exclude=*.secret*",
  ]);
  try {
    await db.query(`
      CREATE DATABASE shop; CREATE DATABASE crm; CREATE DATABASE skipped;
      CREATE TABLE shop.orders (id INT PRIMARY KEY, total DECIMAL(8,2));
      CREATE TABLE shop.secrets (id INT PRIMARY KEY, v TEXT);
      CREATE TABLE crm.people (id INT, region CHAR(2), name TEXT, PRIMARY KEY (region, id));
      CREATE TABLE skipped.t (id INT PRIMARY KEY);
      INSERT INTO shop.orders VALUES (1, 9.99), (2, 100);
      INSERT INTO shop.secrets VALUES (1, 'no');
      INSERT INTO crm.people VALUES (1, 'eu', 'Ada'), (2, 'us', 'Grace');
      INSERT INTO skipped.t VALUES (1);`);
    const expected = async () => {
      const shop = await expectedFromMysql(db.query, "/f", ["shop"], "shop");
      const crm = await expectedFromMysql(db.query, "/f", ["crm"], "shop");
      for (const k of shop.keys()) if (k.includes("secrets")) shop.delete(k);
      return new Map([...shop, ...crm]);
    };
    await assertConverges(etcd.endpoint, "/f/", expected, 60_000).catch((e) => {
      throw new Error(`${e.message}\n${sync.output()}`);
    });
    await db.query(`
      UPDATE crm.people SET name = 'Ada L.' WHERE id = 1;
      INSERT INTO shop.orders VALUES (3, 1);
      INSERT INTO shop.secrets VALUES (2, 'still no');
      INSERT INTO skipped.t VALUES (2);`);
    await assertConverges(etcd.endpoint, "/f/", expected, 60_000);
    const keys = [...(await readEtcd(etcd.endpoint, "/f/")).keys()];
    assert(keys.includes("/f/orders/3"), "default database unqualified");
    assert(keys.includes("/f/crm.people/eu/1"), "other database qualified");
    assert(!keys.some((k) => k.includes("secrets") || k.includes("skipped")), keys.join());
  } finally {
    await sync.stop();
    await db.close();
    await etcd.close();
  }
});

test("mysql: misconfiguration is one clear line and exit status 2", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb({ conf: { "binlog-format": "STATEMENT" } });
  const minimal = await startMariadb({ conf: { "binlog-row-image": "MINIMAL" } });
  const noBinlog = await startMariadb({ conf: { "skip-log-bin": "" } });
  try {
    const off = await runSync([
      `--etcd-endpoints=${etcd.endpoint}`,
      "--driver=mysql",
      `--db-url=${noBinlog.url}`,
    ]);
    assertEquals(off.code, 2, off.stderr);
    assertMatch(off.stderr, /log_bin/);
    assertEquals(off.stderr.split("\n").filter((l) => /level=error/.test(l)).length, 1);

    const img = await runSync([
      `--etcd-endpoints=${etcd.endpoint}`,
      "--driver=mysql",
      `--db-url=${minimal.url}`,
    ]);
    assertEquals(img.code, 2, img.stderr);
    assertMatch(img.stderr, /binlog_row_image is MINIMAL: set binlog_row_image = FULL/);

    const base = [`--etcd-endpoints=${etcd.endpoint}`, "--driver=mysql"];
    const fmt = await runSync([...base, `--db-url=${db.url}`]);
    assertEquals(fmt.code, 2, fmt.stderr);
    assertMatch(fmt.stderr, /binlog_format is STATEMENT: set binlog_format = ROW/);
    const errors = fmt.stderr.split("\n").filter((l) => /level=error/.test(l));
    assertEquals(errors.length, 1, fmt.stderr);

    const bad = db.url.replace(db.password, "wrong-pw");
    const pw = await runSync([...base, `--db-url=${bad}`]);
    assertEquals(pw.code, 2, pw.stderr);
    assertMatch(pw.stderr, /Access denied/);
    assert(!pw.stderr.includes("wrong-pw"), "password not logged");

    // A user without replication privileges, on a correctly set up server.
    await minimal.query(
      "SET GLOBAL binlog_row_image = FULL; CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY " +
        "'weak-pw'; GRANT SELECT ON *.* TO 'weak'@'127.0.0.1'",
    );
    const weakUrl = minimal.url.replace(`root:${minimal.password}`, "weak:weak-pw");
    const weak = await runSync([...base, `--db-url=${weakUrl}`]);
    assertEquals(weak.code, 2, weak.stderr);
    assertMatch(weak.stderr, /REPLICATION|BINLOG MONITOR|privilege/);
    assertEquals(weak.stderr.split("\n").filter((l) => /level=error/.test(l)).length, 1);
  } finally {
    await db.close();
    await minimal.close();
    await noBinlog.close();
    await etcd.close();
  }
});
