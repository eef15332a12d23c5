/**
 * Changes made while sync is stopped, which no stream shows (issue: silent divergence):
 * schema changes to the tables, and a saved position the server never reached (a restored
 * backup, a clone). Each restart must notice and converge: etcd equal to the database.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { runSync, startLog, startSync } from "../testing/sync.ts";
import { assertConverges, readEtcd, readEtcdKvs, unexpectedWrites } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";
import { type Spawned, waitFor } from "../testing/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function converged(
  endpoint: string,
  prefix: string,
  expected: () => Promise<Map<string, string>>,
  sync: Spawned,
) {
  await assertConverges(endpoint, prefix, expected, 90_000).catch((e) => {
    throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
  });
}

/** Wait until sync streams after its last dump: the dump's state is written by then. */
function streaming(sync: Spawned): Promise<void> {
  return waitFor(
    "sync streaming after its dump",
    () => {
      const out = sync.output();
      return out.lastIndexOf("msg=streaming") > out.lastIndexOf('msg="dump starting"');
    },
    60_000,
    () => sync.output(),
  );
}

/** Rewrite the state key's position with `edit` (etcd's own CLI: no product code). */
async function editState(
  endpoint: string,
  key: string,
  edit: (s: Record<string, unknown>) => void,
) {
  const state = JSON.parse((await readEtcd(endpoint, key)).get(key)!);
  edit(state.position);
  const r = await new Deno.Command("etcdctl", {
    args: [`--endpoints=${endpoint}`, "put", key, JSON.stringify(state)],
    stdout: "null",
  }).output();
  assert(r.success, "etcdctl put");
}

test("pgx: schema changes and a restored server while sync is stopped", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  let sync: Spawned | undefined;
  try {
    await pg.psql(`
      CREATE TABLE t (id int PRIMARY KEY, v text);
      CREATE TABLE u (id int PRIMARY KEY, v text);
      CREATE TABLE keep (id int PRIMARY KEY, v text);
      INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50) g;
      INSERT INTO u SELECT g, 'u' || g FROM generate_series(1, 20) g;
      INSERT INTO keep SELECT g, 'k' || g FROM generate_series(1, 20) g;`);
    const args = [
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/o",
      "--status-interval=1s",
    ];
    const expected = () => expectedFromPg(pg.sql, "/o");
    const restart = async () => {
      await sync?.stop();
      sync = startSync(args);
      return sync;
    };
    await restart();
    await converged(etcd.endpoint, "/o/", expected, sync!);
    await streaming(sync!);

    // An empty table created while sync runs and never written: no reason to dump later.
    await pg.psql("CREATE TABLE quiet (id int PRIMARY KEY)");
    await pg.psql("INSERT INTO keep VALUES (100, 'mark')");
    await converged(etcd.endpoint, "/o/", expected, sync!);
    let log = await startLog(await restart());
    await converged(etcd.endpoint, "/o/", expected, sync!);
    assertMatch(log, /msg=resuming/);
    assert(!/dump starting/.test(log), `no dump for an empty new table:\n${log}`);
    await streaming(sync!);

    // While stopped: a column with a default (every row changes, none streamed) and a
    // rename (the old name's keys must go, the new name's rows come).
    // Only those tables are read again, online: the others' keys stay as they were.
    await sync!.stop();
    const kept = await readEtcdKvs(etcd.endpoint, "/o/keep/");
    await pg.psql(`
      ALTER TABLE t ADD COLUMN c int DEFAULT 5;
      ALTER TABLE u RENAME TO u2;`);
    await startLog(await restart());
    await converged(etcd.endpoint, "/o/", expected, sync!);
    // Read once converged: the warning follows the "resuming" line startLog waits for.
    log = sync!.output();
    assertMatch(
      log,
      /level=warn msg="snapshotting tables again" reason="tables changed while sync was stopped/,
    );
    assert(!/dump starting/.test(log), `no full dump:\n${log}`);
    const keptNow = await readEtcdKvs(etcd.endpoint, "/o/keep/");
    assertEquals(unexpectedWrites(kept.kvs, keptNow.kvs, () => 0), null);
    assert((await readEtcd(etcd.endpoint, "/o/t/1")).get("/o/t/1")!.includes('"c":5'));
    assert(!(await readEtcd(etcd.endpoint, "/o/u/")).size, "keys of the renamed table removed");

    // A saved position past the server's WAL end (what a restored backup leaves): it must
    // not be confirmed (the slot would skip what the server writes next), but dumped over.
    await streaming(sync!);
    await sync!.stop();
    const stateKey = [...(await readEtcd(etcd.endpoint, "/o-state/")).keys()]
      .find((k) => !k.endsWith("/tables"))!;
    await editState(etcd.endpoint, stateKey, (p) => (p.lsn = "FF/0"));
    await pg.psql("INSERT INTO keep SELECT g, 'after restore' FROM generate_series(200, 210) g");
    // `sync status` says so before any start, instead of a negative lag.
    const st = await runSync(["status", "--json", ...args]);
    assertMatch(JSON.parse(st.stdout).phase, /saved FF\/0 is past this server's WAL end/);
    log = await startLog(await restart());
    await converged(etcd.endpoint, "/o/", expected, sync!);
    assertMatch(log, /level=warn msg="dump starting" reason="the saved position FF\/0 is past/);
    const [slot] = await pg.sql`SELECT confirmed_flush_lsn <= pg_current_wal_lsn() AS ok
      FROM pg_replication_slots`;
    assert(slot.ok, "the slot never confirms a position past the server's WAL");
  } finally {
    await sync?.stop();
    await pg.close();
    await etcd.close();
  }
});

test("mysql: unlogged schema change and a restored server while stopped", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb();
  let sync: Spawned | undefined;
  try {
    await db.query(`
      CREATE DATABASE app; USE app;
      CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
      CREATE TABLE keep (id INT PRIMARY KEY, v VARCHAR(20));
      INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');
      INSERT INTO keep VALUES (1, 'k');`);
    const args = [
      "--driver=mysql",
      `--db-url=${db.url}app`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/my",
      "--server-id=4301",
    ];
    const expected = () => expectedFromMysql(db.query, "/my", ["app"], "app");
    const restart = async () => {
      await sync?.stop();
      sync = startSync(args);
      return sync;
    };
    await restart();
    await converged(etcd.endpoint, "/my/", expected, sync!);
    await streaming(sync!);

    // A schema change the binlog never saw (sql_log_bin = 0): only the recorded
    // definitions can tell.
    await sync!.stop();
    await db.query("SET SESSION sql_log_bin = 0; ALTER TABLE app.t ADD COLUMN c INT DEFAULT 5");
    await startLog(await restart());
    await converged(etcd.endpoint, "/my/", expected, sync!);
    // Read once converged: the warning follows the "resuming" line startLog waits for.
    let log = sync!.output();
    assertMatch(
      log,
      /level=warn msg="snapshotting tables again" reason="tables changed while sync was stopped/,
    );
    assert(!/dump starting/.test(log), `no full dump:\n${log}`);

    // A saved offset past the end of the server's binlog.
    await streaming(sync!);
    await sync!.stop();
    const stateKey = [...(await readEtcd(etcd.endpoint, "/my-state/")).keys()]
      .find((k) => /^\/my-state\/[^/]+$/.test(k))!;
    await editState(etcd.endpoint, stateKey, (p) => (p.offset = 999_999_999));
    await db.query("INSERT INTO app.keep VALUES (2, 'after restore')");
    log = await startLog(await restart());
    await converged(etcd.endpoint, "/my/", expected, sync!);
    assertMatch(log, /level=warn msg="dump starting" reason="the saved position .* is past/);
  } finally {
    await sync?.stop();
    await db.close();
    await etcd.close();
  }
});

test(
  "pgx: a keyless table that gains a primary key mid-stream is read whole",
  opts,
  async () => {
    const etcd = await startEtcd();
    const pg = await startPostgres();
    let sync: Spawned | undefined;
    try {
      await pg.psql(`
      CREATE TABLE nk (id int NOT NULL, v text);
      CREATE TABLE other (id int PRIMARY KEY);
      INSERT INTO nk SELECT g, 'before' FROM generate_series(1, 30) g;`);
      sync = startSync([
        "--driver=pgx",
        `--db-url=${pg.url}`,
        `--etcd-endpoints=${etcd.endpoint}`,
        "--etcd-prefix=/gk",
      ]);
      const expected = () => expectedFromPg(pg.sql, "/gk");
      await converged(etcd.endpoint, "/gk/", expected, sync);
      await streaming(sync);
      // Its 30 rows were never read; only the row written after the key arrives by stream.
      await pg.psql(`
      ALTER TABLE nk ADD PRIMARY KEY (id);
      INSERT INTO nk VALUES (31, 'after');`);
      await converged(etcd.endpoint, "/gk/", expected, sync);
      assert((await readEtcd(etcd.endpoint, "/gk/nk/")).size === 31);
    } finally {
      await sync?.stop();
      await pg.close();
      await etcd.close();
    }
  },
);
