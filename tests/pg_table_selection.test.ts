/**
 * A `--tables` list changed between two runs of pgx (design: Snapshots, per table): the
 * FOR TABLE publication is set to the new list and the resume goes on from the saved
 * position. The table that left loses its keys, the table that joined with rows is
 * snapshotted, the one that joined empty needs nothing, and the table selected both times
 * is neither dumped nor rewritten. Changes made while sync was stopped, and after it
 * resumed, reach etcd for every selected table.
 */
import { step, test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { runSync, startLog, startSync, streaming } from "../testing/sync.ts";
import { assertConverges, readEtcdKvs, unexpectedWrites } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

test("pgx: a changed --tables list snapshots the joined table only", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  let sync: ReturnType<typeof startSync> | undefined;
  try {
    await pg.psql(`
      CREATE TABLE kept (id int PRIMARY KEY, v text);
      INSERT INTO kept SELECT g, 'k' || g FROM generate_series(1, 300) g;
      CREATE TABLE leaving (id int PRIMARY KEY, v text);
      INSERT INTO leaving SELECT g, 'l' || g FROM generate_series(1, 50) g;
      CREATE TABLE joining (id int PRIMARY KEY, v text);
      INSERT INTO joining SELECT g, 'j' || g FROM generate_series(1, 80) g;
      CREATE TABLE joining_empty (id int PRIMARY KEY, v text);
      CREATE TABLE never (id int PRIMARY KEY, v text);
      INSERT INTO never VALUES (1, 'n');
    `);
    const args = (tables: string[]) => [
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/d",
      `--tables=${tables.map((t) => `public.${t}`).join(",")}`,
    ];
    const expected = (tables: string[]) => () =>
      expectedFromPg(pg.sql, "/d", tables.map((table) => ({ schema: "public", table })));
    const converge = (tables: string[]) =>
      assertConverges(etcd.endpoint, "/d/", expected(tables), 60_000).catch((e) => {
        throw new Error(`${e.message}\n--- sync output:\n${sync?.output()}`);
      });

    const first = ["kept", "leaving"];
    sync = startSync(args(first));
    await streaming(sync);
    await converge(first);
    await sync.stop();
    const before = (await readEtcdKvs(etcd.endpoint, "/d/kept/")).kvs;

    // While stopped: one kept row changes, the joining tables get rows (joining_empty's
    // are gone again before the restart), the leaving table changes too.
    await pg.psql(`
      UPDATE kept SET v = 'changed while stopped' WHERE id = 7;
      INSERT INTO joining VALUES (81, 'while stopped');
      INSERT INTO joining_empty VALUES (1, 'gone before the restart');
      DELETE FROM joining_empty;
      UPDATE leaving SET v = 'not selected any more' WHERE id = 1;
    `);
    const second = ["kept", "joining", "joining_empty"];
    sync = startSync(args(second));
    const started = await startLog(sync);
    assert(!/dump starting/.test(started), `a changed selection dumped:\n${started}`);
    await converge(second);
    await streaming(sync);

    // Streamed after the resume: the joined tables are published now.
    await pg.psql(`
      UPDATE kept SET v = 'streamed' WHERE id = 8;
      INSERT INTO joining VALUES (82, 'streamed');
      UPDATE joining SET v = 'streamed' WHERE id = 1;
      INSERT INTO joining_empty VALUES (2, 'streamed');
      UPDATE leaving SET v = 'still not selected' WHERE id = 2;
    `);
    await converge(second);
    const after = (await readEtcdKvs(etcd.endpoint, "/d/kept/")).kvs;
    // kept's rows were not read into etcd again: only the two changed rows were written.
    const written = (k: string) => (k === "/d/kept/7" || k === "/d/kept/8" ? 1 : 0);
    assertEquals(unexpectedWrites(before, after, written), null, sync.output());
    const progress = JSON.parse(
      (await readEtcdKvs(etcd.endpoint, "/d-state/pgx-postgres/snapshots")).kvs
        .get("/d-state/pgx-postgres/snapshots")?.value ?? "{}",
    );
    assertEquals(progress.joining?.state, "done", JSON.stringify(progress));
    assert(!("kept" in progress) || progress.kept.state === "done", JSON.stringify(progress));

    step("sync snapshot of a table that left the selection: refused in one line");
    const refused = await runSync(["snapshot", "leaving", ...args(second)]);
    assertEquals(refused.code, 2, refused.stderr);
    assertMatch(refused.stderr, /^sync: not replicated by this source: leaving \(/);
    assertEquals(refused.stderr.trim().split("\n").length, 1, refused.stderr);
  } finally {
    await sync?.stop();
    await pg.close();
    await etcd.close();
  }
});
