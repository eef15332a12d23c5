/**
 * `--keys`: a table without a primary key is replicated under the columns configured for
 * it (design: Keys), dump and stream alike, on both drivers; a configured key that cannot
 * work (a column the table lacks; a PostgreSQL table whose deletes would not carry it) is
 * one line and exit status 2. A keyless table sync does not replicate is kept out of the
 * publication, so PostgreSQL does not refuse its UPDATEs and DELETEs.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch, assertThrows } from "../testing/assert.ts";
import { KeyConfig } from "../src/core/key_config.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { runSync, startLog, startSync } from "../testing/sync.ts";
import { assertConverges, readEtcd } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const oneErrorLine = (stderr: string) =>
  assertEquals(stderr.split("\n").filter((l) => /level=error/.test(l)).length, 1, stderr);

test("pgx --keys: a keyless table replicated under its configured key", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  let sync: ReturnType<typeof startSync> | undefined;
  try {
    await pg.psql(`
      CREATE TABLE events (src text NOT NULL, n int NOT NULL, body text);
      ALTER TABLE events REPLICA IDENTITY FULL;
      INSERT INTO events SELECT 'a/' || (g % 3), g, 'e' || g FROM generate_series(1, 300) g;
      CREATE TABLE plain (v int);
      INSERT INTO plain VALUES (1), (2);
      CREATE TABLE keyed (id int PRIMARY KEY, v text);
      INSERT INTO keyed VALUES (1, 'one');
    `);
    const base = [
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/k",
    ];
    const missing = await runSync([...base, "--keys=public.events=src+nope"]);
    assertEquals(missing.code, 2, missing.stderr);
    assertMatch(missing.stderr, /--keys public\.events: the table has no column nope/);
    oneErrorLine(missing.stderr);
    const syntax = await runSync([...base, "--keys=events"]);
    assertEquals(syntax.code, 2, syntax.stderr);
    assertMatch(syntax.stderr, /^sync: invalid value "events" in --keys: expected schema\.table=/m);

    // --exclude makes the publication a table list: keyless tables stay out of it.
    const args = [...base, "--keys=public.events=src+n", "--exclude=public.nothing"];
    const keys = { "public.events": ["src", "n"] };
    sync = startSync(args);
    const expected = () => expectedFromPg(pg.sql, "/k", undefined, keys);
    const converge = () =>
      assertConverges(etcd.endpoint, "/k/", expected, 90_000).catch((e) => {
        throw new Error(`${e.message}\n--- sync output:\n${sync!.output()}`);
      });
    await converge();
    const dumped = await readEtcd(etcd.endpoint, "/k/events/");
    assertEquals(dumped.size, 300);
    assert(dumped.has("/k/events/a%2F1/1"), "key parts in the configured order, encoded");
    assertMatch(sync.output(), /without a primary key.*tables=public\.plain/);
    await pg.psql(`
      INSERT INTO events VALUES ('b', 1, 'new');
      UPDATE events SET body = 'changed' WHERE n <= 10;
      UPDATE events SET n = n + 1000 WHERE n BETWEEN 11 AND 20;
      DELETE FROM events WHERE n BETWEEN 21 AND 40;
      UPDATE plain SET v = v + 1;
      DELETE FROM plain WHERE v = 3;
      UPDATE keyed SET v = 'uno';
    `);
    await converge();
    const pub = await pg.sql`SELECT tablename FROM pg_publication_tables
      WHERE pubname = 'sync' ORDER BY 1`;
    assertEquals(pub.map((r) => r.tablename), ["events", "keyed"]);

    // Resume: the key is the configured one again.
    await sync.stop();
    await pg.psql("DELETE FROM events WHERE n = 50; INSERT INTO events VALUES ('c', 2, 'x')");
    sync = startSync(args);
    await converge();
    assertMatch(await startLog(sync), /msg=resuming/);
    await sync.stop();
    sync = undefined;

    // A key the table's deletes would not carry: refused with the fix.
    await pg.psql("ALTER TABLE events REPLICA IDENTITY DEFAULT");
    const refused = await runSync(args);
    assertEquals(refused.code, 2, refused.stderr);
    assertMatch(
      refused.stderr,
      /table \\"public\\"\.\\"events\\" has no primary key and REPLICA IDENTITY DEFAULT.*REPLICA IDENTITY FULL/,
    );
    oneErrorLine(refused.stderr);
  } finally {
    await sync?.stop();
    await pg.close();
    await etcd.close();
  }
});

test("mysql --keys: a keyless table replicated under its configured key", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb();
  let sync: ReturnType<typeof startSync> | undefined;
  try {
    await db.query(`
      CREATE DATABASE app;
      CREATE TABLE app.events (src VARCHAR(20) NOT NULL, n INT NOT NULL, body TEXT);
      INSERT INTO app.events SELECT CONCAT('a/', seq % 3), seq, CONCAT('e', seq)
        FROM app.seq_1_to_300;
      CREATE TABLE app.plain (v INT);
      INSERT INTO app.plain VALUES (1);`);
    const base = [
      "--driver=mysql",
      `--db-url=${db.url}app`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/mk",
      "--server-id=4545",
    ];
    const missing = await runSync([...base, "--keys=app.events=nope"]);
    assertEquals(missing.code, 2, missing.stderr);
    assertMatch(missing.stderr, /--keys app\.events: the table has no column nope/);
    oneErrorLine(missing.stderr);

    const args = [...base, "--keys=app.events=src+n"];
    const keys = { "app.events": ["src", "n"] };
    sync = startSync(args);
    const expected = () => expectedFromMysql(db.query, "/mk", ["app"], "app", keys);
    const converge = () =>
      assertConverges(etcd.endpoint, "/mk/", expected, 90_000).catch((e) => {
        throw new Error(`${e.message}\n--- sync output:\n${sync!.output()}`);
      });
    await converge();
    assertEquals((await readEtcd(etcd.endpoint, "/mk/events/")).size, 300);
    assert((await readEtcd(etcd.endpoint, "/mk/")).has("/mk/events/a%2F1/1"), "configured key");
    await db.query(`
      INSERT INTO app.events VALUES ('b', 1, 'new');
      UPDATE app.events SET body = 'changed' WHERE n <= 10;
      UPDATE app.events SET n = n + 1000 WHERE n BETWEEN 11 AND 20;
      DELETE FROM app.events WHERE n BETWEEN 21 AND 40;`);
    await converge();
  } finally {
    await sync?.stop();
    await db.close();
    await etcd.close();
  }
});

test("KeyConfig parses schema.table=col[+col] entries and rejects the rest", () => {
  const k = new KeyConfig(["public.events=src+n", "app.log = seq "]);
  assertEquals(k.columnsFor("public", "events"), ["src", "n"]);
  assertEquals(k.columnsFor("app", "log"), ["seq"]);
  assertEquals(k.columnsFor("public", "other"), undefined);
  for (const bad of ["events=id", "public.events", "public.events=", "a.b=c++d", "a.b=c=d"]) {
    // Low layers name the setting by id; the CLI spells it (`--keys`).
    assertMatch(assertThrows(() => new KeyConfig([bad])).message, /in \{setting:keys\}/, bad);
  }
  assertMatch(assertThrows(() => new KeyConfig(["a.b=x", "a.b=y"])).message, /names a\.b twice/);
  assertMatch(assertThrows(() => new KeyConfig(["a.b=x+x"])).message, /repeats a column/);
});
