/**
 * `sync check`, `sync status` and `sync drop` against real servers, for both drivers: every
 * check passes on a well-configured server (exit 0); a misconfigured one fails the checks
 * it should, each with its fix (exit 1); etcd auth and permissions; status as JSON and text;
 * drop asks for --yes off a terminal and keeps the replicated data unless --purge-data.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { enableEtcdAuth } from "../testing/etcd_auth.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { launchSync, runSync, startSync, type SyncRun } from "../testing/sync.ts";
import {
  assertConverges,
  firstDifference,
  readEtcd,
  readEtcdKvs,
  unexpectedWrites,
} from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";
import { freePort, type Spawned, waitFor } from "../testing/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

interface Row {
  ok: boolean;
  detail: string;
  fix?: string;
}

/** `sync check`'s table: check name → PASS/FAIL, what was found, and the fix. */
function parseCheck(stdout: string): Map<string, Row> {
  const out = new Map<string, Row>();
  let last: Row | undefined;
  for (const line of stdout.split("\n")) {
    const m = /^(PASS|FAIL) {2}(.+?) {2}(.*)$/.exec(line);
    if (m) {
      last = { ok: m[1] === "PASS", detail: m[3].trim() };
      out.set(m[2].trim(), last);
      continue;
    }
    const f = /^ {6}fix: (.*)$/.exec(line);
    if (f && last) last.fix = f[1];
  }
  return out;
}

async function check(args: string[]) {
  const r = await runSync(["check", ...args]);
  return { ...r, rows: parseCheck(r.stdout) };
}

function assertAllPass(r: Awaited<ReturnType<typeof check>>, names: string[]) {
  assertEquals(r.code, 0, r.stdout + r.stderr);
  for (const n of names) assert(r.rows.get(n)?.ok, `${n} passes:\n${r.stdout}`);
  for (const [n, row] of r.rows) assert(row.ok, `${n} fails:\n${r.stdout}`);
  assertMatch(r.stdout, /^all checks passed$/m);
}

function assertFails(r: Awaited<ReturnType<typeof check>>, name: string, fix: RegExp) {
  assertEquals(r.code, 1, r.stdout + r.stderr);
  const row = r.rows.get(name);
  assert(row && !row.ok, `${name} fails:\n${r.stdout}`);
  assertMatch(row.fix ?? "", fix);
  assertMatch(r.stdout, /^\d+ of \d+ checks failed$/m);
}

const PG_CHECKS = [
  "database reachable",
  "credentials",
  "server version",
  "wal_level",
  "replication privilege",
  "free replication slots",
  "replication slot",
  "free WAL senders",
  "tables have primary keys",
  "read privilege",
  "publication",
  "etcd reachable",
  "etcd auth",
  "etcd writable under the prefix",
];

test("pgx: sync check on a good and on a misconfigured server", opts, async () => {
  const etcd = await startEtcd();
  const good = await startPostgres({ auth: "md5", password: "good-secret" });
  const bad = await startPostgres({ conf: { wal_level: "replica" }, auth: "md5", password: "x" });
  try {
    await good.sql`CREATE TABLE t (id int PRIMARY KEY)`;
    const ep = `--etcd-endpoints=${etcd.endpoint}`;
    const ok = await check(["--driver=pgx", `--db-url=${good.url}`, ep]);
    assertAllPass(ok, PG_CHECKS);
    assert(!ok.stdout.includes("good-secret"), "no password in the output");

    // wal_level=replica, a role without REPLICATION, a table without a primary key.
    await bad.sql`CREATE ROLE app LOGIN PASSWORD 'app-secret'`;
    await bad.sql`CREATE TABLE nokey (x int)`;
    await bad.sql`GRANT SELECT ON nokey TO app`;
    const appUrl = bad.url.replace("postgres:x@", "app:app-secret@");
    const r = await check(["--driver=pgx", `--db-url=${appUrl}`, ep]);
    assertFails(r, "wal_level", /wal_level = logical/);
    assertFails(r, "replication privilege", /ALTER ROLE "app" REPLICATION/);
    assertFails(r, "tables have primary keys", /primary key/);
    assertEquals(r.rows.get("tables have primary keys")!.detail, "not replicated: public.nokey");
    // Not a superuser: the FOR ALL TABLES publication sync would create is out of reach too.
    assertFails(r, "publication", /as a superuser/);
    assertMatch(r.stdout, /^4 of \d+ checks failed$/m);
    assert(r.rows.get("credentials")?.ok, "the login itself works");
    assert(!r.stdout.includes("app-secret"));

    // A wrong password: the server answered, the credentials fail.
    const wrong = await check([
      "--driver=pgx",
      `--db-url=${appUrl.replace("app-secret", "nope")}`,
      ep,
    ]);
    assert(wrong.rows.get("database reachable")?.ok, wrong.stdout);
    assertFails(wrong, "credentials", /user and password/);
    assert(!wrong.stdout.includes("nope"), "no password in the output");

    // Nothing listens: the database is unreachable, and so is etcd.
    const none = await check([
      "--driver=pgx",
      `--db-url=postgres://postgres@127.0.0.1:${freePort()}/postgres`,
      `--etcd-endpoints=http://127.0.0.1:${freePort()}`,
      "--etcd-timeout=3s",
    ]);
    assertFails(none, "database reachable", /host, port/);
    assertFails(none, "etcd reachable", /start etcd or fix --etcd-endpoints/);
  } finally {
    await good.close();
    await bad.close();
    await etcd.close();
  }
});

/** `run` with these arguments: its exit status and output (it must end: HTTP server up). */
async function runFails(args: string[]) {
  const r = await runSync([...args, `--http-addr=127.0.0.1:${freePort()}`], {}, 60_000);
  return { code: r.code, out: r.stderr };
}

test("pgx: sync check fails what sync run refuses at start", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  try {
    await pg.sql.unsafe(`
      CREATE TABLE t (id int PRIMARY KEY);
      CREATE ROLE repl LOGIN REPLICATION;
      GRANT SELECT ON t TO repl;
      CREATE ROLE noread LOGIN REPLICATION;
      CREATE PUBLICATION everything FOR ALL TABLES;`);
    await pg.sql`SELECT pg_create_logical_replication_slot('other', 'test_decoding')`;
    const ep = `--etcd-endpoints=${etcd.endpoint}`;
    const as = (role: string) => pg.url.replace("postgres://postgres@", `postgres://${role}@`);
    assert(as("repl") !== pg.url, pg.url);

    // REPLICATION alone cannot create a FOR ALL TABLES publication: check says so, with
    // what does help, and run refuses for the same reason.
    const repl = ["--driver=pgx", `--db-url=${as("repl")}`, ep, "--publication=p1", "--slot=s1"];
    const r = await check([...repl, "--etcd-prefix=/c1"]);
    assertFails(
      r,
      "publication",
      /as a superuser: CREATE PUBLICATION "p1" FOR ALL TABLES.*--tables/,
    );
    assertMatch(r.rows.get("publication")!.detail, /FOR ALL TABLES takes a superuser/);
    const run1 = await runFails([...repl, "--etcd-prefix=/c1"]);
    assertEquals(run1.code, 2, run1.out);
    assertMatch(run1.out, /sync creates the publication when it is missing.*superuser/);
    assert(!/ALTER ROLE/.test(run1.out), `REPLICATION is no fix here:\n${run1.out}`);

    // With --tables, CREATE on the database and owning the tables is enough; a table it does
    // not own is named.
    await pg.sql.unsafe(`CREATE TABLE own (id int PRIMARY KEY); ALTER TABLE own OWNER TO repl;
      GRANT CREATE ON DATABASE postgres TO repl`);
    const notOwned = await check([...repl, "--etcd-prefix=/c2", "--tables=public.t"]);
    assertFails(notOwned, "publication", /as a superuser: CREATE PUBLICATION "p1" FOR TABLE/);
    assertMatch(
      notOwned.rows.get("publication")!.detail,
      /takes owning public\.t$/,
    );
    const owned = await check([...repl, "--etcd-prefix=/c3", "--tables=public.own"]);
    assertAllPass(owned, PG_CHECKS);
    const ok = launchSync([...repl, "--etcd-prefix=/c3", "--tables=public.own"]);
    try {
      await waitFor("run to stream", () => /msg=streaming/.test(ok.output()), 60_000, ok.output);
    } finally {
      await ok.stop();
    }

    // A slot of that name made for another plugin.
    const other = ["--driver=pgx", `--db-url=${pg.url}`, ep, "--slot=other"];
    const o = await check([...other, "--etcd-prefix=/c4"]);
    assertFails(o, "replication slot", /choose another --slot/);
    assertEquals(
      o.rows.get("replication slot")!.detail,
      "other is a test_decoding slot of database postgres",
    );
    const run2 = await runFails([...other, "--etcd-prefix=/c4"]);
    assertEquals(run2.code, 2, run2.out);
    assertMatch(run2.out, /replication slot other exists but is not a pgoutput slot/);

    // No SELECT on the replicated tables: the dump would fail.
    const noread = [
      "--driver=pgx",
      `--db-url=${as("noread")}`,
      ep,
      "--publication=everything",
      "--slot=s5",
    ];
    const n = await check([...noread, "--etcd-prefix=/c5"]);
    assertFails(n, "read privilege", /^GRANT SELECT ON "public"\."own", "public"\."t" TO "noread"/);
    assertEquals(n.rows.get("read privilege")!.detail, 'cannot read "public"."own", "public"."t"');
    assert(n.rows.get("publication")?.ok, "the publication exists");
    const run3 = await runFails([...noread, "--etcd-prefix=/c5"]);
    assertEquals(run3.code, 2, run3.out);
    assertMatch(run3.out, /permission denied for table .*grant SELECT on the replicated tables/);
  } finally {
    await pg.close();
    await etcd.close();
  }
});

test("sync check: etcd auth and permissions", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  try {
    await enableEtcdAuth(etcd.endpoint, "root-pw", [
      { name: "sync", password: "sync-pw", prefixes: ["/ok/", "/ok-state/"] },
      { name: "narrow", password: "narrow-pw", prefixes: ["/ok/"] },
    ]);
    const base = ["--driver=pgx", `--db-url=${pg.url}`, `--etcd-endpoints=${etcd.endpoint}`];
    const ok = await check([
      ...base,
      "--etcd-prefix=/ok",
      "--etcd-username=sync",
      "--etcd-password=sync-pw",
    ]);
    assertAllPass(ok, PG_CHECKS);
    assertMatch(ok.rows.get("etcd auth")!.detail, /logged in as sync/);

    const noCreds = await check([...base, "--etcd-prefix=/ok"]);
    assertFails(noCreds, "etcd auth", /--etcd-username and --etcd-password/);

    const wrong = await check([
      ...base,
      "--etcd-prefix=/ok",
      "--etcd-username=sync",
      "--etcd-password=bad-pw",
    ]);
    assertFails(wrong, "etcd auth", /check --etcd-username and --etcd-password/);
    assert(!wrong.stdout.includes("bad-pw"));

    // Allowed the data prefix but not the state prefix.
    const narrow = await check([
      ...base,
      "--etcd-prefix=/ok",
      "--etcd-username=narrow",
      "--etcd-password=narrow-pw",
    ]);
    assertFails(
      narrow,
      "etcd writable under the prefix",
      /readwrite on the prefix and on the state/,
    );
  } finally {
    await pg.close();
    await etcd.close();
  }
});

const MYSQL_CHECKS = [
  "database reachable",
  "credentials",
  "server version",
  "log_bin",
  "binlog_format",
  "binlog_row_image",
  "binlog_row_metadata",
  "server_id",
  "replication privilege",
  "tables have primary keys",
  "etcd reachable",
  "etcd auth",
  "etcd writable under the prefix",
];

test("mysql: sync check on a good and on a misconfigured server", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb();
  try {
    await db.query("CREATE DATABASE app");
    await db.query("CREATE TABLE app.t (id int PRIMARY KEY)");
    const ep = `--etcd-endpoints=${etcd.endpoint}`;
    const ok = await check(["--driver=mysql", `--db-url=${db.url}app`, ep, "--server-id=4250"]);
    assertAllPass(ok, MYSQL_CHECKS);
    assert(!ok.stdout.includes(db.password));

    // Statement-based binlog, minimal row images, a user with only SELECT, a keyless table.
    await db.query("SET GLOBAL binlog_format = 'STATEMENT'");
    await db.query("SET GLOBAL binlog_row_image = 'MINIMAL'");
    await db.query("CREATE TABLE app.nokey (x int)");
    await db.query("CREATE USER 'app'@'%' IDENTIFIED BY 'app-secret'");
    await db.query("GRANT SELECT ON app.* TO 'app'@'%'");
    const appUrl = `mysql://app:app-secret@127.0.0.1:${db.port}/app`;
    const r = await check(["--driver=mysql", `--db-url=${appUrl}`, ep, "--server-id=4250"]);
    assertFails(r, "binlog_format", /binlog_format = ROW/);
    assertFails(r, "binlog_row_image", /binlog_row_image = FULL/);
    assertFails(
      r,
      "replication privilege",
      /^GRANT REPLICATION SLAVE, REPLICATION CLIENT ON \*\.\* TO 'app'@'<its host>'$/,
    );
    assertMatch(r.rows.get("replication privilege")!.detail, /missing REPLICATION SLAVE/);
    assertFails(r, "tables have primary keys", /primary key/);
    assertEquals(r.rows.get("tables have primary keys")!.detail, "not replicated: app.nokey");
    assertMatch(r.stdout, /^4 of \d+ checks failed$/m);
    assert(!r.stdout.includes("app-secret"));

    // Key columns given with --keys make the keyless table replicable.
    const keyed = await check([
      "--driver=mysql",
      `--db-url=${appUrl}`,
      ep,
      "--server-id=4250",
      "--keys=app.nokey=x",
    ]);
    assertEquals(keyed.rows.get("tables have primary keys"), {
      ok: true,
      detail: "2 tables selected",
    });

    // With the grants the fix names, the privilege check passes (MariaDB prints REPLICATION
    // CLIENT as BINLOG MONITOR).
    await db.query("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'app'@'%'");
    const granted = await check(["--driver=mysql", `--db-url=${appUrl}`, ep, "--server-id=4250"]);
    assert(granted.rows.get("replication privilege")?.ok, granted.stdout);

    // sync's --server-id equal to the server's own.
    const sid = (await db.query("SELECT @@server_id AS s"))[0].s;
    const clash = await check([
      "--driver=mysql",
      `--db-url=${db.url}app`,
      ep,
      `--server-id=${sid}`,
    ]);
    assertFails(clash, "server_id", /different from --server-id/);

    const wrong = await check([
      "--driver=mysql",
      `--db-url=mysql://app:nope@127.0.0.1:${db.port}/app`,
      ep,
    ]);
    assertFails(wrong, "credentials", /user and password/);
    assert(!wrong.stdout.includes("nope"));
  } finally {
    await db.close();
    await etcd.close();
  }
});

test("mysql: status with the README's grants never claims what it cannot see", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb();
  let sync: SyncRun | undefined;
  try {
    await db.query("CREATE DATABASE app");
    await db.query("CREATE TABLE app.t (id int PRIMARY KEY)");
    await db.query("CREATE USER 'min'@'%' IDENTIFIED BY 'min-secret'");
    await db.query(
      "GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'min'@'%'",
    );
    const base = [
      "--driver=mysql",
      `--db-url=mysql://min:min-secret@127.0.0.1:${db.port}/app`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/mg",
      "--server-id=4252",
    ];
    const s = sync = launchSync(base);
    await waitFor("sync to stream", () => /msg=streaming/.test(s.output()), 90_000, s.output);
    const status = async () => {
      const r = await runSync(["status", "--json", ...base]);
      assertEquals(r.code, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    // Listing replicas takes REPLICATION MASTER ADMIN on MariaDB: without it, "unknown".
    const blind = await status();
    const needs = "unknown: needs privilege REPLICATION MASTER ADMIN";
    assertEquals(blind.source.replica_registered, needs);
    assertEquals(blind.phase.startsWith(`${needs} to see whether a sync streams`), true);
    assert(!/stopped/.test(blind.phase), blind.phase);
    const text = await runSync(["status", ...base]);
    assertMatch(text.stdout, /^source\.replica_registered +unknown: needs privilege/m);

    await db.query("GRANT REPLICATION MASTER ADMIN ON *.* TO 'min'@'%'");
    const seen = await status();
    assertEquals(seen.source.replica_registered, true);
    assertEquals(seen.phase, "streaming (a replica with this --server-id is registered)");
  } finally {
    await sync?.stop();
    await db.close();
    await etcd.close();
  }
});

test("pgx: sync status while running and stopped (JSON and text)", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  let sync: Spawned | undefined;
  try {
    await pg.sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
    await pg.sql`INSERT INTO t SELECT g, 'v' FROM generate_series(1, 100) g`;
    const base = ["--driver=pgx", `--db-url=${pg.url}`, `--etcd-endpoints=${etcd.endpoint}`];
    const none = await runSync(["status", "--json", ...base, "--etcd-prefix=/st"]);
    assertEquals(none.code, 0, none.stderr);
    assertEquals(JSON.parse(none.stdout).phase, "no state: the next start dumps");

    sync = startSync([...base, "--etcd-prefix=/st", "--status-interval=1s"]);
    await assertConverges(etcd.endpoint, "/st/", () => expectedFromPg(pg.sql, "/st"), 60_000);
    const running = JSON.parse(
      (await runSync(["status", "--json", ...base, "--etcd-prefix=/st"])).stdout,
    );
    assertEquals(running.phase, "streaming (the slot is in use)");
    assertEquals(running.source.slot_active, true);
    assertEquals(running.stateKey, "/st-state/pgx-postgres");
    assert(Date.parse(running.updatedAt) > 0, "last write time of the state");
    await sync.stop();
    sync = undefined;

    // Stopped, with WAL written since: the slot retains it, and the lag says how much.
    await pg
      .sql`INSERT INTO t SELECT g, repeat(md5(g::text), 8) FROM generate_series(1000, 3000) g`;
    const st = await runSync(["status", "--json", ...base, "--etcd-prefix=/st"]);
    const j = JSON.parse(st.stdout);
    assertEquals(j.phase, "stopped: the next start resumes from the state");
    assertEquals(j.source.slot_active, false);
    assertEquals(j.source.saved_lsn, j.position.lsn);
    const [pgSays] = await pg.sql`SELECT
        pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag,
        pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained
      FROM pg_replication_slots WHERE slot_name = 'sync'`;
    assert(j.source.lag_bytes > 500_000, `lag ${j.source.lag_bytes} bytes`);
    assert(j.source.lag_bytes <= Number(pgSays.lag), "not more than the server says now");
    assert(j.source.retained_wal_bytes >= j.source.lag_bytes);
    assert(j.source.retained_wal_bytes <= Number(pgSays.retained));

    const text = await runSync(["status", ...base, "--etcd-prefix=/st"]);
    assertEquals(text.code, 0);
    assertMatch(text.stdout, /^phase +stopped: the next start resumes from the state$/m);
    assertMatch(text.stdout, /^source\.lag_bytes +\d+$/m);
    assertMatch(text.stdout, /^source\.retained_wal_bytes +\d+$/m);
  } finally {
    await sync?.stop();
    await pg.close();
    await etcd.close();
  }
});

test("mysql: sync status and sync drop", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb();
  let sync: Spawned | undefined;
  try {
    await db.query("CREATE DATABASE app");
    await db.query("CREATE TABLE app.t (id int PRIMARY KEY, v text)");
    await db.query("INSERT INTO app.t SELECT seq, 'v' FROM app.seq_1_to_100");
    const base = [
      "--driver=mysql",
      `--db-url=${db.url}app`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/md",
      "--server-id=4251",
    ];
    const expected = () => expectedFromMysql(db.query, "/md", ["app"], "app");
    sync = startSync(base);
    await assertConverges(etcd.endpoint, "/md/", expected, 90_000);
    const running = JSON.parse((await runSync(["status", "--json", ...base])).stdout);
    assertEquals(running.phase, "streaming (a replica with this --server-id is registered)");
    assertEquals(running.source.replica_registered, true);
    await sync.stop();
    sync = undefined;
    // What etcd must still hold after a drop without --purge-data: the rows as they were when
    // sync stopped, rendered by the checker (the inserts below are never replicated).
    const kept = await expected();

    const [before] = await db.query("SHOW MASTER STATUS");
    await db.query("INSERT INTO app.t SELECT seq, REPEAT(MD5(seq), 8) FROM app.seq_1000_to_3000");
    const [after] = await db.query("SHOW MASTER STATUS");
    // The server lists a replica until its dump thread notices the disconnect.
    let st = await runSync(["status", "--json", ...base]);
    await waitFor(
      "the server to drop the replica",
      async () => {
        st = await runSync(["status", "--json", ...base]);
        return JSON.parse(st.stdout).source.replica_registered === false;
      },
      30_000,
      () => st.stdout + st.stderr,
    );
    assertEquals(st.code, 0, st.stderr);
    const j = JSON.parse(st.stdout);
    assertEquals(j.phase, "stopped: the next start resumes from the state");
    assertEquals(j.position.file, before.File);
    assertEquals(j.source.server_file, after.File);
    assertEquals(j.source.server_offset, Number(after.Position));
    assertEquals(j.source.saved_offset, j.position.offset);
    // Same file here: the lag is the server's offset minus the saved one.
    assertEquals(j.source.lag_bytes, Number(after.Position) - j.position.offset);
    assert(j.source.lag_bytes >= Number(after.Position) - Number(before.Position));
    assert(!st.stdout.includes(db.password) && !st.stderr.includes(db.password));

    // Off a terminal drop needs --yes: nothing in etcd is removed or written.
    const stateBefore = (await readEtcdKvs(etcd.endpoint, "/md-state/")).kvs;
    const dataBefore = (await readEtcdKvs(etcd.endpoint, "/md/")).kvs;
    assert(stateBefore.has("/md-state/mysql-app"), `a state to drop: ${[...stateBefore.keys()]}`);
    const ask = await runSync(["drop", ...base]);
    assertEquals(ask.code, 2);
    assertMatch(ask.stderr, /pass --yes to confirm/);
    const none = () => 0;
    const stateAfter = (await readEtcdKvs(etcd.endpoint, "/md-state/")).kvs;
    assertEquals(unexpectedWrites(stateBefore, stateAfter, none), null, "state untouched");
    const dataAfter = (await readEtcdKvs(etcd.endpoint, "/md/")).kvs;
    assertEquals(unexpectedWrites(dataBefore, dataAfter, none), null, "data untouched");

    const dropped = await runSync(["drop", "--yes", ...base]);
    assertEquals(dropped.code, 0, dropped.stderr);
    assertEquals(dropped.stdout.trim(), "removed state key /md-state/mysql-app");
    assertEquals((await readEtcd(etcd.endpoint, "/md-state/")).size, 0);
    // Data kept: value for value what the checker rendered at the stop, and not rewritten.
    assertEquals(firstDifference(kept, await readEtcd(etcd.endpoint, "/md/")), null, "data kept");
    const dataKept = (await readEtcdKvs(etcd.endpoint, "/md/")).kvs;
    assertEquals(unexpectedWrites(dataBefore, dataKept, none), null, "data not rewritten");
    const after2 = JSON.parse((await runSync(["status", "--json", ...base])).stdout);
    assertEquals(after2.phase, "no state: the next start dumps");

    const purged = await runSync(["drop", "--yes", "--purge-data", ...base]);
    assertEquals(purged.code, 0, purged.stderr);
    assertMatch(purged.stdout, /^removed 100 replicated keys under \/md\/$/m);
    assertEquals((await readEtcd(etcd.endpoint, "/md/")).size, 0);
  } finally {
    await sync?.stop();
    await db.close();
    await etcd.close();
  }
});
