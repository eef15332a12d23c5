/**
 * Online snapshots with the pgx driver (design: Snapshots), against real PostgreSQL and
 * etcd: an ALTER re-snapshots only its table while the others keep streaming and keep
 * their keys untouched; a re-snapshot of rows that did not change writes nothing; writes
 * aimed at the rows being read while they are read still converge; a kill -9 in the middle
 * resumes at the cursor instead of writing the table again; updates that leave TOAST values
 * out for rows the snapshot has not reached keep those values.
 */
import { step, test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { runSync, startSync } from "../testing/sync.ts";
import { assertConverges, readEtcdKvs, unexpectedWrites } from "../testing/checker.ts";
import { waitFor } from "../testing/process.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
/** Large chunks: a longer read and write, so the writes below land inside them. */
const CHUNK = 2000;
const ROUNDS = 4;

const SCHEMA = `
  CREATE TABLE hot (id int PRIMARY KEY, v text, n int);
  CREATE TABLE quiet (id int PRIMARY KEY, v text);
  CREATE TABLE pairs (a text, b int, v text, PRIMARY KEY (a, b));
  INSERT INTO hot SELECT g, 'hot ' || g, g FROM generate_series(1, 40000) g;
  INSERT INTO quiet SELECT g, 'quiet ' || g FROM generate_series(1, 500) g;
  INSERT INTO pairs SELECT chr(65 + g % 26) || '/' || g, g % 7, 'p' FROM generate_series(1, 2000) g;`;

/** The snapshot progress sync keeps beside its state key. */
async function progress(endpoint: string): Promise<Record<string, Record<string, unknown>>> {
  const { kvs } = await readEtcdKvs(endpoint, "/s-state/pgx-postgres/snapshots");
  const v = kvs.get("/s-state/pgx-postgres/snapshots")?.value;
  return v ? JSON.parse(v) : {};
}

test("pgx: an ALTER re-snapshots one table online, racing writes converge", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  await pg.psql(SCHEMA);
  const args = [
    "--driver=pgx",
    `--db-url=${pg.url}`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/s",
    `--snapshot-chunk-rows=${CHUNK}`,
  ];
  const sync = startSync(args);
  const fail = (e: Error) => {
    throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
  };
  const expected = () => expectedFromPg(pg.sql, "/s");
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
      if (op === 0) await pg.sql`UPDATE hot SET n = n + 1 WHERE id = ${id}`;
      else if (op === 1) await pg.sql`DELETE FROM hot WHERE id = ${id}`;
      else if (op === 2) await pg.sql`UPDATE hot SET id = ${fresh++} WHERE id = ${id}`;
      else await pg.sql`INSERT INTO hot VALUES (${id}, 'back', 0) ON CONFLICT (id) DO NOTHING`;
    };
    for (let round = 1; round <= ROUNDS; round++) {
      step(`round ${round}: ALTER TABLE hot while writes aim at the rows being read`);
      await pg.psql(`ALTER TABLE hot ADD COLUMN extra${round} int DEFAULT ${round};
        UPDATE hot SET v = 'round ${round}' WHERE id = 1;`);
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
      }, 90_000).catch(fail);
      done = true;
      await Promise.all(workers);
      await assertConverges(etcd.endpoint, "/s/", expected, 60_000).catch(fail);
    }
    const out = sync.output();
    assertEquals(out.match(/msg="dump starting"/g)?.length, 1, `one dump only:\n${out}`);
    assert(/msg="snapshot done" table=hot/.test(out), out);

    step("the other tables' keys were not written");
    const mid = await readEtcdKvs(etcd.endpoint, "/s/");
    const others = (m: typeof mid.kvs) => new Map([...m].filter(([k]) => !k.startsWith("/s/hot/")));
    assertEquals(unexpectedWrites(others(before.kvs), others(mid.kvs), () => 0), null);

    step("a re-snapshot of unchanged rows writes none of them");
    // varchar: another type, the same JSON for every row.
    await pg.psql(`ALTER TABLE quiet ALTER COLUMN v TYPE varchar(100);
      UPDATE quiet SET v = 'touched' WHERE id = 500;`);
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

    step("sync snapshot: a table on request, from another process");
    const cli = args.filter((a) => !a.startsWith("--snapshot"));
    const bad = await runSync(["snapshot", "nope", ...cli]);
    assertEquals(bad.code, 2, bad.stderr);
    assertMatch(bad.stderr, /^sync: not replicated by this source: nope \(.*replicated: /);
    assertEquals(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    const asked = await runSync(["snapshot", "pairs", ...cli]);
    assertEquals(asked.code, 0, asked.stderr);
    assertMatch(asked.stdout, /snapshot of pairs requested/);
    await waitFor("the requested snapshot done", async () => {
      const p = (await progress(etcd.endpoint)).pairs;
      return p?.state === "done" && Array.isArray(p.requests);
    }, 60_000).catch(fail);
    const requested = await readEtcdKvs(etcd.endpoint, "/s/");
    assertEquals(unexpectedWrites(last.kvs, requested.kvs, () => 0), null);
  } finally {
    await sync.stop();
    await pg.close();
    await etcd.close();
  }
});

test("pgx: a snapshot killed half-way resumes at its cursor", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  await pg.psql(`CREATE TABLE big (id int PRIMARY KEY, v text);
    INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 40000) g;`);
  const args = [
    "--driver=pgx",
    `--db-url=${pg.url}`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/s",
    "--snapshot-chunk-rows=500",
  ];
  let sync = startSync(args);
  const fail = (e: Error) => {
    throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
  };
  const expected = () => expectedFromPg(pg.sql, "/s");
  try {
    await assertConverges(etcd.endpoint, "/s/", expected, 90_000).catch(fail);
    // Every row changes without a change streamed: the snapshot rewrites all of them.
    await pg.psql(`ALTER TABLE big ADD COLUMN extra int DEFAULT 7;
      UPDATE big SET v = 'go' WHERE id = 1;`);
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
    await pg.close();
    await etcd.close();
  }
});

test(
  "pgx: updates that leave TOAST values out, mid-snapshot of a renamed table",
  opts,
  async () => {
    const etcd = await startEtcd();
    const pg = await startPostgres();
    // Bodies stored out of line, uncompressed: an UPDATE of `n` sends them as unchanged.
    await pg.psql(`CREATE TABLE docs (id int PRIMARY KEY, n int, body text);
      ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
      INSERT INTO docs SELECT g, 0, repeat(md5(g::text), 80) FROM generate_series(1, 1000) g;`);
    const sync = startSync([
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/s",
      "--snapshot-chunk-rows=2",
    ]);
    const fail = (e: Error) => {
      throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
    };
    const expected = () => expectedFromPg(pg.sql, "/s");
    try {
      await assertConverges(etcd.endpoint, "/s/", expected, 120_000).catch(fail);
      // The rename shows with the next row change; the new name's keys come from a snapshot.
      await pg.psql(`ALTER TABLE docs RENAME TO docs2; UPDATE docs2 SET n = 1 WHERE id = 1;`);
      await waitFor("the renamed table's snapshot under way", async () => {
        const p = (await progress(etcd.endpoint)).docs2;
        return p?.state === "running" && Number(p.rows) > 0;
      }, 60_000).catch(fail);
      // Rows the snapshot has not reached, not in etcd yet: their bodies are left out.
      await pg.psql("UPDATE docs2 SET n = n + 1 WHERE id > 900");
      const p = (await progress(etcd.endpoint)).docs2;
      assertEquals(p?.state, "running", "the updates landed before the snapshot reached them");
      await waitFor("the snapshot of docs2 to end", async () => {
        return (await progress(etcd.endpoint)).docs2?.state === "done";
      }, 180_000).catch(fail);
      await assertConverges(etcd.endpoint, "/s/", expected, 30_000).catch(fail);
    } finally {
      await sync.stop();
      await pg.close();
      await etcd.close();
    }
  },
);
