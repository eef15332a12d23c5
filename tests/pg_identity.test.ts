/**
 * REPLICA IDENTITY decides what old key a DELETE or a key-changing UPDATE carries. With
 * DEFAULT or FULL it holds the primary key; USING INDEX holds the index's columns, so an
 * index that leaves out a primary-key column would make deletes unmappable to etcd keys.
 * Such a table is refused at first start with one line saying what to change; a table that
 * turns into one while sync streams is held (none of its changes applied, said in a warning
 * and in the snapshots state), through a restart too, while the other tables stream on;
 * once its identity carries the key again it is snapshotted, and its sweep removes the keys
 * of the rows deleted meanwhile: a delete is never dropped silently.
 */
import { step, test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { runSync, startSync } from "../testing/sync.ts";
import { assertConverges, readEtcdKvs, unexpectedWrites } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { waitFor } from "../testing/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

test("pgx: REPLICA IDENTITY USING INDEX with and without the primary key", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  let sync: ReturnType<typeof startSync> | undefined;
  let writing = false;
  try {
    await pg.psql(`
      CREATE TABLE covered (id int PRIMARY KEY, u int NOT NULL, v text);
      CREATE UNIQUE INDEX covered_id_u ON covered (id, u);
      ALTER TABLE covered REPLICA IDENTITY USING INDEX covered_id_u;
      INSERT INTO covered SELECT g, g, 'v' || g FROM generate_series(1, 50) g;
      CREATE TABLE later (id int PRIMARY KEY, u int NOT NULL, v text);
      CREATE UNIQUE INDEX later_u ON later (u);
      INSERT INTO later SELECT g, 100 + g, 'v' || g FROM generate_series(1, 50) g;
      CREATE TABLE busy (id serial PRIMARY KEY, v text);
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

    // While streaming, a table's identity becomes an index without the key, then rows go,
    // while another table takes a row every 100 ms throughout.
    const still = await readEtcdKvs(etcd.endpoint, "/ri/covered/");
    writing = true;
    const workload = (async () => {
      while (writing) {
        await pg.sql`INSERT INTO busy (v) VALUES ('b')`;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const busyRows = async () => Number((await pg.sql`SELECT max(id) AS n FROM busy`)[0].n);
    const busyStreams = async (what: string) => {
      const n = await busyRows();
      await waitFor(
        `busy row ${n} in etcd ${what}`,
        async () => {
          return (await readEtcdKvs(etcd.endpoint, `/ri/busy/${n}`)).kvs.has(`/ri/busy/${n}`);
        },
        30_000,
        () => sync!.output(),
      );
    };
    await pg.psql(`
      ALTER TABLE later REPLICA IDENTITY USING INDEX later_u;
      DELETE FROM later WHERE id <= 5;
      UPDATE later SET id = id + 1000 WHERE id BETWEEN 6 AND 10;
    `);
    const held = async () => {
      const { kvs } = await readEtcdKvs(etcd.endpoint, "/ri-state/pgx-postgres/snapshots");
      const p = JSON.parse(kvs.get("/ri-state/pgx-postgres/snapshots")?.value ?? "{}");
      return p.later;
    };
    await waitFor(
      "the table held, in the log and the state",
      async () =>
        /table held.*table=later.*REPLICA IDENTITY USING INDEX later_u/.test(sync!.output()) &&
        (await held())?.state === "held",
      60_000,
      () => sync!.output(),
    );
    assertMatch((await held()).why, /leaves out primary-key column id/);
    await busyStreams("while later is held");

    step("a restart while held stays held (no exit 2, no dump), and streams the others");
    await sync.stop();
    sync = startSync(args);
    await waitFor("resumed", () => /msg=resuming/.test(sync!.output()), 60_000, sync.output);
    await pg.psql("DELETE FROM later WHERE id BETWEEN 11 AND 15");
    await busyStreams("after the restart");
    assertEquals((await held())?.state, "held");
    assert(/table held.*table=later/.test(sync.output()), sync.output());

    step("fixed: the next change of the table brings its snapshot; deletes made meanwhile go");
    await pg.psql(`
      ALTER TABLE later REPLICA IDENTITY DEFAULT;
      UPDATE later SET v = 'fixed' WHERE id = 20;
    `);
    await waitFor(
      "later snapshotted",
      async () => (await held())?.state === "done",
      60_000,
      sync.output,
    );
    writing = false;
    await workload;
    await converge();
    const gone = await readEtcdKvs(etcd.endpoint, "/ri/later/");
    for (const id of [1, 5, 6, 10, 11, 15]) assert(!gone.kvs.has(`/ri/later/${id}`), `later/${id}`);
    assert(!/dump starting/.test(sync.output()), `no dump after the restart:\n${sync.output()}`);
    // No full re-dump: the rows of another table that did not change were not written.
    const after = await readEtcdKvs(etcd.endpoint, "/ri/covered/");
    assertEquals(unexpectedWrites(still.kvs, after.kvs, () => 0), null);
  } finally {
    writing = false;
    await sync?.stop();
    await pg.close();
    await etcd.close();
  }
});
