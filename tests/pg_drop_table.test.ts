/**
 * pgoutput carries no DDL: a table dropped (or renamed out of the filter, or renamed with no
 * change after) while sync streams sends nothing. sync polls the catalogue and removes such a
 * table's keys in stream order, once the stream has passed the point where the catalogue
 * showed it gone: rows the stream had not delivered yet cannot come back after the removal.
 * Another table streams throughout, and an untouched one keeps its keys' revisions.
 */
import { step, test } from "../testing/deadline.ts";
import { assert, assertEquals } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startSync } from "../testing/sync.ts";
import { assertConverges, readEtcdKvs, unexpectedWrites } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { waitFor } from "../testing/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("pgx: DROP TABLE and RENAME while streaming remove the keys in order", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  let sync: ReturnType<typeof startSync> | undefined;
  let writing = false;
  try {
    await pg.psql(`
      CREATE TABLE doomed (id int PRIMARY KEY, v text);
      INSERT INTO doomed SELECT g, 'd' || g FROM generate_series(1, 200) g;
      CREATE TABLE moved (id int PRIMARY KEY, v text);
      INSERT INTO moved SELECT g, 'm' || g FROM generate_series(1, 50) g;
      CREATE TABLE renamed (id int PRIMARY KEY, v text);
      INSERT INTO renamed SELECT g, 'r' || g FROM generate_series(1, 50) g;
      CREATE TABLE quiet (id int PRIMARY KEY, v text);
      INSERT INTO quiet SELECT g, 'q' || g FROM generate_series(1, 50) g;
      CREATE TABLE busy (id serial PRIMARY KEY, v text);
    `);
    const args = [
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/d",
      "--exclude=public.old_*",
      "--status-interval=200ms",
    ];
    sync = startSync(args);
    const output = () => sync!.output();
    // The tables the filter selects now (old_* excluded).
    const expected = async () => {
      const rows = await pg.sql`SELECT tablename FROM pg_tables
        WHERE schemaname = 'public' AND tablename NOT LIKE 'old\_%'`;
      const tables = rows.map((r) => ({ schema: "public", table: String(r.tablename) }));
      return await expectedFromPg(pg.sql, "/d", tables);
    };
    const converge = () =>
      assertConverges(etcd.endpoint, "/d/", expected, 90_000).catch((e) => {
        throw new Error(`${e.message}\n--- sync output:\n${output()}`);
      });
    // doomed's Relation message goes out now, before its DROP: the late rows below come
    // without one, read by what the stream knew of it, and are applied.
    await pg.psql("UPDATE doomed SET v = 'seen' WHERE id = 1");
    await converge();
    const still = await readEtcdKvs(etcd.endpoint, "/d/quiet/");
    writing = true;
    const workload = (async () => {
      while (writing) {
        await pg.sql`INSERT INTO busy (v) VALUES ('b')`;
        await sleep(100);
      }
    })();

    step("a large insert, then DROP at once: the rows still streaming must not come back");
    // The catalogue is polled at the status interval here (200 ms), and etcd is frozen for
    // a moment (under the 3 s keepalive that would end the attempt): the stream stands inside
    // the large insert when the poll finds the table gone, so a removal applied there would
    // be followed by the rows after it.
    etcd.proc.signal("SIGSTOP");
    // One script, each statement its own transaction, moments apart.
    await pg.psql(`
      INSERT INTO doomed SELECT g, 'late' || g FROM generate_series(1000, 100999) g;
      INSERT INTO doomed VALUES (200000, 'just before the drop');
      DROP TABLE doomed;
      ALTER TABLE moved RENAME TO old_moved;
      ALTER TABLE renamed RENAME TO renamed2;
    `);
    const polled = Date.now() + 2000;
    while (Date.now() < polled && !/table gone.*table=doomed/.test(output())) await sleep(50);
    etcd.proc.signal("SIGCONT");
    assert(/table gone.*table=doomed/.test(output()), `not polled while frozen:\n${output()}`);
    const prefixes = async () => {
      const { kvs } = await readEtcdKvs(etcd.endpoint, "/d/");
      return new Set([...kvs.keys()].map((k) => k.split("/")[2]));
    };
    await waitFor(
      "the dropped and renamed tables' keys gone, renamed2's there",
      async () => {
        const p = await prefixes();
        return !p.has("doomed") && !p.has("moved") && !p.has("renamed") && p.has("renamed2");
      },
      60_000,
      output,
    );
    const n = Number((await pg.sql`SELECT max(id) AS n FROM busy`)[0].n);
    await waitFor(
      `busy row ${n} in etcd, sync still running`,
      async () => {
        return (await readEtcdKvs(etcd.endpoint, `/d/busy/${n}`)).kvs.has(`/d/busy/${n}`);
      },
      30_000,
      output,
    );

    step("nothing of the dropped table reappears later");
    await sleep(3000);
    assert(!(await prefixes()).has("doomed"), `doomed keys came back:\n${output()}`);
    writing = false;
    await workload;
    await converge();
    const { kvs } = await readEtcdKvs(etcd.endpoint, "/d-state/pgx-postgres/snapshots");
    const progress = JSON.parse(kvs.get("/d-state/pgx-postgres/snapshots")?.value ?? "{}");
    for (const t of ["doomed", "moved", "renamed"]) {
      assert(!(t in progress), JSON.stringify(progress));
    }
    assertEquals(progress.renamed2?.state, "done");
    assert(!/dump starting.*\n(.|\n)*dump starting/.test(output()), output());
    const after = await readEtcdKvs(etcd.endpoint, "/d/quiet/");
    assertEquals(unexpectedWrites(still.kvs, after.kvs, () => 0), null);
  } finally {
    etcd.proc.signal("SIGCONT");
    writing = false;
    await sync?.stop();
    await pg.close();
    await etcd.close();
  }
});
