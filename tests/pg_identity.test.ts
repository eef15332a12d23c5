/**
 * REPLICA IDENTITY decides what old key a DELETE or a key-changing UPDATE carries. With
 * DEFAULT or FULL it holds the primary key; USING INDEX holds the index's columns, so an
 * index that leaves out a primary-key column would make deletes unmappable to etcd keys.
 * Such a table is refused with one line saying what to change, and when a table turns
 * into one while sync streams, sync dumps again and says the same until it is fixed: a
 * delete is never dropped silently.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { runSync, startSync } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { waitFor } from "../testing/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

test("pgx: REPLICA IDENTITY USING INDEX with and without the primary key", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  let sync: ReturnType<typeof startSync> | undefined;
  try {
    await pg.psql(`
      CREATE TABLE covered (id int PRIMARY KEY, u int NOT NULL, v text);
      CREATE UNIQUE INDEX covered_id_u ON covered (id, u);
      ALTER TABLE covered REPLICA IDENTITY USING INDEX covered_id_u;
      INSERT INTO covered SELECT g, g, 'v' || g FROM generate_series(1, 50) g;
      CREATE TABLE later (id int PRIMARY KEY, u int NOT NULL, v text);
      CREATE UNIQUE INDEX later_u ON later (u);
      INSERT INTO later SELECT g, 100 + g, 'v' || g FROM generate_series(1, 50) g;
      CREATE TABLE uncovered (id int PRIMARY KEY, u int NOT NULL);
      CREATE UNIQUE INDEX uncovered_u ON uncovered (u);
      ALTER TABLE uncovered REPLICA IDENTITY USING INDEX uncovered_u;
    `);
    const args = [
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/ri",
    ];
    // At first start: one line naming the table and the fix, exit status 2.
    const refused = await runSync(args);
    assertEquals(refused.code, 2, refused.stderr);
    assertMatch(
      refused.stderr,
      /uncovered.*REPLICA IDENTITY USING INDEX uncovered_u.*leaves out.*id.*REPLICA IDENTITY DEFAULT/,
    );
    assertEquals(refused.stderr.split("\n").filter((l) => /level=error/.test(l)).length, 1);
    await pg.psql("DROP TABLE uncovered");

    sync = startSync(args);
    const expected = () => expectedFromPg(pg.sql, "/ri");
    const converge = () =>
      assertConverges(etcd.endpoint, "/ri/", expected, 90_000).catch((e) => {
        throw new Error(`${e.message}\n--- sync output:\n${sync!.output()}`);
      });
    await converge();
    // An index holding the key: deletes and key changes map to keys.
    await pg.psql(`
      DELETE FROM covered WHERE id <= 5;
      UPDATE covered SET id = id + 1000 WHERE id BETWEEN 6 AND 10;
      UPDATE covered SET v = 'changed' WHERE id = 20;
    `);
    await converge();

    // While streaming, a table's identity becomes an index without the key, then rows go.
    await pg.psql(`
      ALTER TABLE later REPLICA IDENTITY USING INDEX later_u;
      DELETE FROM later WHERE id <= 5;
      UPDATE later SET id = id + 1000 WHERE id BETWEEN 6 AND 10;
    `);
    await waitFor(
      "sync to refuse the table",
      () => /later.*REPLICA IDENTITY USING INDEX later_u/.test(sync!.output()),
      60_000,
      () => sync!.output(),
    );
    // Fixed: the dump that follows brings etcd back to the database.
    await pg.psql("ALTER TABLE later REPLICA IDENTITY DEFAULT");
    await converge();
    assert(sync.output().includes("dump starting"), "dumped again");
  } finally {
    await sync?.stop();
    await pg.close();
    await etcd.close();
  }
});
