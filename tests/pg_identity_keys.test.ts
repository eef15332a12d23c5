/**
 * A table without a primary key, replicated under `--keys`, needs REPLICA IDENTITY FULL: with
 * DEFAULT or NOTHING its old rows carry no key columns. Switched to either while sync streams,
 * it is held (none of its changes applied, said in the state) while another table streams on
 * and an untouched one keeps its keys' revisions. Fixed with no change to its rows afterwards,
 * no Relation message tells: the catalogue poll releases it, and its snapshot's sweep removes
 * the keys of rows gone while it was held (PostgreSQL refuses DELETE on such a table while it
 * is published, so they go by TRUNCATE).
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startSync } from "../testing/sync.ts";
import { assertConverges, readEtcdKvs, unexpectedWrites } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { waitFor } from "../testing/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

test(
  "pgx: a --keys table held under REPLICA IDENTITY DEFAULT/NOTHING, released by the poll",
  opts,
  async () => {
    const etcd = await startEtcd();
    const pg = await startPostgres();
    let sync: ReturnType<typeof startSync> | undefined;
    let writing = false;
    let workload: Promise<void> = Promise.resolve();
    try {
      await pg.psql(`
      CREATE TABLE loose (src text NOT NULL, n int NOT NULL, v text);
      ALTER TABLE loose REPLICA IDENTITY FULL;
      INSERT INTO loose SELECT 's' || (g % 3), g, 'v' || g FROM generate_series(1, 60) g;
      CREATE TABLE quiet (id int PRIMARY KEY, v text);
      INSERT INTO quiet SELECT g, 'q' || g FROM generate_series(1, 30) g;
      CREATE TABLE busy (id serial PRIMARY KEY, v text);
      INSERT INTO busy (v) SELECT 'b' FROM generate_series(1, 20);
    `);
      const args = [
        "--driver=pgx",
        `--db-url=${pg.url}`,
        `--etcd-endpoints=${etcd.endpoint}`,
        "--etcd-prefix=/rk",
        "--keys=public.loose=src+n",
        "--status-interval=500ms",
      ];
      const keys = { "public.loose": ["src", "n"] };
      sync = startSync(args);
      const output = () => sync!.output();
      const expected = () => expectedFromPg(pg.sql, "/rk", undefined, keys);
      const converge = () =>
        assertConverges(etcd.endpoint, "/rk/", expected, 90_000).catch((e) => {
          throw new Error(`${e.message}\n--- sync output:\n${output()}`);
        });
      await converge();
      const state = async () => {
        const key = "/rk-state/pgx-postgres/snapshots";
        const { kvs } = await readEtcdKvs(etcd.endpoint, key);
        return JSON.parse(kvs.get(key)?.value ?? "{}").loose;
      };
      const has = async (key: string) => (await readEtcdKvs(etcd.endpoint, key)).kvs.has(key);

      // Another table takes a row every 100 ms throughout; its rows written so far, and every
      // row of quiet, must keep their revisions.
      const before = await readEtcdKvs(etcd.endpoint, "/rk/");
      const others = (kvs: typeof before.kvs) =>
        new Map([...kvs].filter(([k]) => k.startsWith("/rk/quiet/") || k.startsWith("/rk/busy/")));
      writing = true;
      workload = (async () => {
        while (writing) {
          await pg.sql`INSERT INTO busy (v) VALUES ('b')`;
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const busyStreams = async (what: string) => {
        const n = Number((await pg.sql`SELECT max(id) AS n FROM busy`)[0].n);
        await waitFor(`busy row ${n} in etcd ${what}`, () => has(`/rk/busy/${n}`), 30_000, output);
      };

      // DEFAULT: its next change's Relation message shows no key columns in the old rows.
      await pg.psql(`
      ALTER TABLE loose REPLICA IDENTITY DEFAULT;
      INSERT INTO loose VALUES ('held', 1, 'not applied');
    `);
      await waitFor(
        "loose held, in the log and the state",
        async () =>
          /table held.*table=loose.*REPLICA IDENTITY DEFAULT/.test(output()) &&
          (await state())?.state === "held",
        60_000,
        output,
      );
      assertMatch((await state()).why, /no primary key and REPLICA IDENTITY DEFAULT/);
      // NOTHING keeps it held; its rows go (DELETE is refused while published) and others come.
      await pg.psql(`
      ALTER TABLE loose REPLICA IDENTITY NOTHING;
      INSERT INTO loose VALUES ('held', 2, 'not applied');
      TRUNCATE loose;
      INSERT INTO loose SELECT 's' || (g % 3), g, 'w' || g FROM generate_series(40, 80) g;
    `);
      await busyStreams("while loose is held");
      assertEquals((await state())?.state, "held");
      assert(!(await has("/rk/loose/held/1")), "a held table's insert is not applied");
      assert(await has("/rk/loose/s1/1"), "a held table's truncate is not applied");

      // Fixed, and none of its rows touched after: only the catalogue poll can tell.
      await pg.psql("ALTER TABLE loose REPLICA IDENTITY FULL");
      await waitFor(
        "loose released by the catalogue poll and snapshotted",
        async () => (await state())?.state === "done",
        60_000,
        output,
      );
      assertMatch(output(), /replica identity carries the key again.*table=loose/);
      await busyStreams("after loose was released");
      writing = false;
      await workload;
      await converge();
      for (const k of ["/rk/loose/s1/1", "/rk/loose/s0/39", "/rk/loose/held/1"]) {
        assert(!(await has(k)), `${k} removed by the snapshot's sweep`);
      }
      const streamed = output().slice(output().indexOf("msg=streaming"));
      assert(!/dump starting/.test(streamed), `no full dump after the first:\n${output()}`);
      // Only quiet's and busy's keys from before: busy's later rows are new keys.
      const after = await readEtcdKvs(etcd.endpoint, "/rk/");
      const kept = new Map([...others(after.kvs)].filter(([k]) => before.kvs.has(k)));
      assertEquals(unexpectedWrites(others(before.kvs), kept, () => 0), null);
    } finally {
      writing = false;
      await workload;
      await sync?.stop();
      await pg.close();
      await etcd.close();
    }
  },
);
