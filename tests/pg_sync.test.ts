/**
 * The pgx driver end to end against real PostgreSQL and etcd: dump, stream every kind of
 * change, resume after a crash, and clear errors for bad settings. Each step ends with the
 * independent checker finding etcd equal to the database. The servers' default time zone is
 * Asia/Kathmandu (+05:45, not a whole hour), so a session sync forgets to set to UTC shows.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { runSync, startLog, startSync } from "../testing/sync.ts";
import { assertConverges, readEtcd } from "../testing/checker.ts";
import { waitFor } from "../testing/process.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { Etcd3 } from "etcd3";

const opts = { sanitizeOps: false, sanitizeResources: false };
/** Not UTC, and not a whole hour from it. */
const TZ = { conf: { timezone: "'Asia/Kathmandu'" } };

/** An expected failure is one error line, and no stack trace. */
function assertOneErrorLine(stderr: string) {
  const errors = stderr.split("\n").filter((l) => /level=error/.test(l));
  assertEquals(errors.length, 1, stderr);
  assert(!/^\s+at /m.test(stderr), `stack trace in:\n${stderr}`);
}

const SCHEMA = `
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE TABLE items (
    id bigint PRIMARY KEY, name text, price numeric(12, 3), ratio float8, ok boolean,
    data jsonb, tags text[], blob bytea, at timestamptz, day date, feel mood, doc text);
  ALTER TABLE items ALTER COLUMN doc SET STORAGE EXTERNAL;
  CREATE TABLE pairs (a text, b int, v text, PRIMARY KEY (a, b));
  CREATE TABLE full_ident (id int PRIMARY KEY, v text);
  ALTER TABLE full_ident REPLICA IDENTITY FULL;
  CREATE SCHEMA other;
  CREATE TABLE other.things (id uuid PRIMARY KEY, n int);
  CREATE TABLE nokey (v text);
  INSERT INTO items SELECT g, 'item ' || g, g * 1.5, g / 3.0, g % 2 = 0,
    jsonb_build_object('g', g, 's', 'x y'), ARRAY['a', 'b,c', NULL], '\\x00ff'::bytea,
    '2024-05-01 12:00:00.25+02', '2024-05-01', 'ok', NULL FROM generate_series(1, 1200) g;
  INSERT INTO pairs VALUES ('a/b', 1, 'slash'), ('%', 2, 'percent'), ('ü', 3, 'umlaut');
  INSERT INTO full_ident VALUES (1, 'one'), (2, 'two');
  INSERT INTO other.things VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1);
  INSERT INTO nokey VALUES ('ignored');
`;

const WORKLOAD = `
  INSERT INTO items (id, name, price, ratio, data, tags, at, feel)
    VALUES (5000, 'new', 'NaN', 'Infinity', '[1, 2, {"k": null}]', '{}', 'infinity', 'happy');
  UPDATE items SET name = 'renamed', price = 99999999.999 WHERE id = 2;
  DELETE FROM items WHERE id BETWEEN 10 AND 20;
  UPDATE items SET id = 7000 WHERE id = 3;
  UPDATE pairs SET b = 20 WHERE a = 'a/b';
  UPDATE full_ident SET v = 'uno' WHERE id = 1;
  DELETE FROM full_ident WHERE id = 2;
  UPDATE other.things SET n = n + 1;
  BEGIN; INSERT INTO pairs VALUES ('rolled', 1, 'back'); ROLLBACK;
  BEGIN;
  INSERT INTO pairs SELECT 'bulk', g, repeat('x', g % 50) FROM generate_series(1, 3000) g;
  UPDATE pairs SET v = 'twice' WHERE a = 'bulk' AND b < 100;
  COMMIT;
  INSERT INTO nokey VALUES ('still ignored');
`;

test("pgx: dump, stream every change kind, resume after SIGKILL", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres(TZ);
  let sync: ReturnType<typeof startSync> | undefined;
  try {
    await pg.sql.unsafe(SCHEMA);
    // A large, incompressible TOASTed value that later updates leave unchanged.
    await pg.sql`UPDATE items SET doc = (SELECT string_agg(md5(g::text), '')
      FROM generate_series(1, 400) g) WHERE id <= 5`;
    const args = [
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/t",
      "--status-interval=1s",
      "--log-level=debug",
    ];
    sync = startSync(args);
    const expected = () => expectedFromPg(pg.sql, "/t");
    await assertConverges(etcd.endpoint, "/t/", expected, 90_000).catch((e) => {
      throw new Error(`${e.message}\n--- sync output:\n${sync!.output()}`);
    });
    const dumped = await readEtcd(etcd.endpoint, "/t/");
    assert(dumped.has("/t/items/1"), "items dumped");
    assert(dumped.has("/t/pairs/a%2Fb/1"), "composite key percent-encoded");
    assert(dumped.has("/t/other.things/a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), "schema-qualified");
    assert(![...dumped.keys()].some((k) => k.includes("nokey")), "table without key skipped");
    assertMatch(sync.output(), /without a primary key.*nokey/);

    await pg.psql(WORKLOAD);
    // Unchanged TOAST: the big doc column is not sent; etcd must keep the old value.
    await pg.sql`UPDATE items SET name = 'toast kept' WHERE id = 1`;
    await pg.sql`UPDATE items SET id = 9001 WHERE id = 4`; // key change + unchanged TOAST
    await pg.sql`TRUNCATE full_ident`;
    await pg.sql`INSERT INTO full_ident VALUES (3, 'after truncate')`;
    // A column added with a default changes every row without streaming them: re-dump.
    await pg.sql`ALTER TABLE pairs ADD COLUMN extra int DEFAULT 7`;
    await pg.sql`UPDATE pairs SET v = 'after alter' WHERE a = '%'`;
    // A column dropped: every row loses it, again without streaming them.
    await pg.sql`ALTER TABLE items DROP COLUMN ratio`;
    await pg.sql`UPDATE items SET name = 'after drop' WHERE id = 6`;
    await assertConverges(etcd.endpoint, "/t/", expected, 90_000).catch((e) => {
      throw new Error(`${e.message}\n--- sync output:\n${sync!.output()}`);
    });
    const after = await readEtcd(etcd.endpoint, "/t/");
    assert(after.get("/t/items/9001")?.includes('"doc":"'), "TOAST value carried to new key");

    // Crash, change things while sync is down, restart: it resumes (no dump) and catches up.
    // The ALTERs made sync snapshot those tables again, online: let that finish first.
    await waitFor("the altered tables snapshotted", () => {
      const out = sync!.output();
      return /msg="snapshot done" table=pairs/.test(out) &&
        /msg="snapshot done" table=items/.test(out);
    }, 60_000);
    // No failure, no retry, and no full dump.
    assert(!/msg=retrying|dumping again/.test(sync.output()), `no retry:\n${sync.output()}`);
    sync.signal("SIGKILL");
    await sync.exited;
    await pg.sql`INSERT INTO items (id, name) VALUES (6000, 'while down')`;
    await pg.sql`DELETE FROM items WHERE id = 100`;
    sync = startSync(args);
    await assertConverges(etcd.endpoint, "/t/", expected, 90_000).catch((e) => {
      throw new Error(`${e.message}\n--- sync output:\n${sync!.output()}`);
    });
    const started = await startLog(sync);
    assertMatch(started, /resuming/);
    assert(!/dump starting/.test(started), "resumed without a dump");
    assert(!/"ratio"/.test((await readEtcd(etcd.endpoint, "/t/items/")).get("/t/items/1")!));

    // The state key records a position the slot has confirmed (never more).
    const state = JSON.parse((await readEtcd(etcd.endpoint, "/t-state/")).values().next().value!);
    assertEquals(state.driver, "pgx");
    await sync.stop();
    sync = undefined;
    const [slot] = await pg.sql`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots`;
    const cmp = await pg.sql`SELECT ${slot.lsn}::pg_lsn <= ${state.position.lsn}::pg_lsn AS ok`;
    assert(cmp[0].ok, `slot ${slot.lsn} not past state ${state.position.lsn}`);
  } finally {
    await sync?.stop();
    await pg.close();
    await etcd.close();
  }
});

test("pgx: follows a PostgreSQL restart without losing changes", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres(TZ);
  const sync = startSync([
    "--driver=pgx",
    `--db-url=${pg.url}`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/r",
  ]);
  try {
    await pg.sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
    await pg.sql`INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g`;
    const expected = () => expectedFromPg(pg.sql, "/r");
    await assertConverges(etcd.endpoint, "/r/", expected, 60_000);
    await pg.stop(true);
    await pg.restart();
    await pg.sql`UPDATE t SET v = 'after restart' WHERE id <= 50`;
    await assertConverges(etcd.endpoint, "/r/", expected, 90_000).catch((e) => {
      throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
    });
    assertMatch(sync.output(), /retrying/);
  } finally {
    await sync.stop();
    await pg.close();
    await etcd.close();
  }
});

test(
  "pgx: tables renamed by ALTER TABLE, mid-stream and while sync is away",
  opts,
  async () => {
    const etcd = await startEtcd();
    const pg = await startPostgres(TZ);
    const args = [
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/n",
      "--tables=public.*",
    ];
    let sync = startSync(args);
    const fail = (e: Error) => {
      throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
    };
    try {
      await pg.psql(`
      CREATE TABLE a (id int PRIMARY KEY, v text);
      CREATE TABLE b (id int PRIMARY KEY, v text);
      CREATE TABLE gone (id int PRIMARY KEY);
      CREATE SCHEMA elsewhere;
      INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 50) g;
      INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 50) g;
      INSERT INTO gone VALUES (1), (2);`);
      // Only what --tables selects: the public schema's tables.
      const expected = async () =>
        expectedFromPg(
          pg.sql,
          "/n",
          await pg.sql<{ schema: string; table: string }[]>`
            SELECT 'public' AS schema, tablename AS table FROM pg_tables
            WHERE schemaname = 'public'`,
        );
      await assertConverges(etcd.endpoint, "/n/", expected, 60_000).catch(fail);

      // Mid-stream: the next change after the rename carries the new name; the old keys go.
      await pg.psql(`ALTER TABLE a RENAME TO a2; UPDATE a2 SET v = 'renamed' WHERE id = 1;`);
      await assertConverges(etcd.endpoint, "/n/", expected, 60_000).catch(fail);
      // Moved out of the selected schema: its keys go too.
      await pg.psql(`ALTER TABLE b SET SCHEMA elsewhere; UPDATE elsewhere.b SET v = 'x';`);
      await assertConverges(etcd.endpoint, "/n/", expected, 60_000).catch(fail);
      await waitFor("the renamed table snapshotted", () => {
        return /msg="snapshot done" table=a2/.test(sync.output());
      }, 60_000);

      // While sync is away a table is renamed and another dropped, and the slot is lost (as
      // in a failover): the full dump's sweep clears the names that no longer exist.
      await sync.stop();
      await pg.psql(`ALTER TABLE a2 RENAME TO a3; DROP TABLE gone;
      SELECT pg_drop_replication_slot('sync');`);
      sync = startSync(args);
      await assertConverges(etcd.endpoint, "/n/", expected, 60_000).catch(fail);
      const keys = [...(await readEtcd(etcd.endpoint, "/n/")).keys()];
      assert(keys.some((k) => k.startsWith("/n/a3/")), "a3 dumped");
      assert(!keys.some((k) => /^\/n\/(a|a2|b|gone)\//.test(k)), `old names left: ${keys}`);
    } finally {
      await sync.stop();
      await pg.close();
      await etcd.close();
    }
  },
);

test("pgx: misconfiguration is one clear line and exit status 2", opts, async () => {
  const etcd = await startEtcd();
  const replica = await startPostgres({ conf: { wal_level: "replica" } });
  const noSlots = await startPostgres({ conf: { max_replication_slots: 0 } });
  const secured = await startPostgres({ auth: "scram-sha-256", password: "s3cret-pw" });
  try {
    const base = [`--etcd-endpoints=${etcd.endpoint}`, "--driver=pgx"];
    const wal = await runSync([...base, `--db-url=${replica.url}`]);
    assertEquals(wal.code, 2, wal.stderr);
    assertMatch(wal.stderr, /wal_level is replica: set wal_level = logical/);
    assertOneErrorLine(wal.stderr);
    const slots = await runSync([...base, `--db-url=${noSlots.url}`]);
    assertEquals(slots.code, 2, slots.stderr);
    assertMatch(slots.stderr, /max_replication_slots/);
    assertOneErrorLine(slots.stderr);

    const badUrl = secured.url.replace("s3cret-pw", "wrong-pw");
    const pw = await runSync([...base, `--db-url=${badUrl}`]);
    assertEquals(pw.code, 2, pw.stderr);
    assertMatch(pw.stderr, /password authentication failed/);
    assert(!pw.stderr.includes("wrong-pw"), "password not logged");
    assertOneErrorLine(pw.stderr);

    // No REPLICATION privilege, an unknown database: one line, exit 2.
    await secured.sql.unsafe("CREATE ROLE plain LOGIN PASSWORD 'plain-pw'");
    const plainUrl = secured.url.replace("postgres:s3cret-pw", "plain:plain-pw");
    const priv = await runSync([...base, `--db-url=${plainUrl}`]);
    assertEquals(priv.code, 2, priv.stderr);
    assertMatch(priv.stderr, /REPLICATION/);
    assertOneErrorLine(priv.stderr);
    const nodb = await runSync([
      ...base,
      `--db-url=${secured.url.replace(/\/postgres$/, "/nope")}`,
    ]);
    assertEquals(nodb.code, 2, nodb.stderr);
    assertMatch(nodb.stderr, /database \W+nope\W+ does not exist/);
    assertOneErrorLine(nodb.stderr);

    // The right password over SCRAM works: check passes the database checks.
    const ok = await runSync(["check", ...base, `--db-url=${secured.url}`]);
    assertMatch(ok.stdout, /PASS\s+wal_level/);
    assert(!ok.stdout.includes("s3cret-pw") && !ok.stderr.includes("s3cret-pw"));
  } finally {
    await replica.close();
    await noSlots.close();
    await secured.close();
    await etcd.close();
  }
});

/** How many keys etcd holds under `prefix` (counted by etcd). */
async function countKeys(endpoint: string, prefix: string): Promise<number> {
  const c = new Etcd3({ hosts: endpoint });
  try {
    return await c.getAll().prefix(prefix).count();
  } finally {
    c.close();
  }
}

/** The state key's saved LSN under `<prefix>-state/`, if any. */
async function savedLsn(endpoint: string, prefix: string): Promise<string | undefined> {
  const state = [...(await readEtcd(endpoint, `${prefix}-state/`)).values()][0];
  return state === undefined ? undefined : JSON.parse(state).position?.lsn;
}

test("pgx: kill -9 during the dump and inside a 200k-row transaction", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres(TZ);
  const args = [
    "--driver=pgx",
    `--db-url=${pg.url}`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/k",
  ];
  let sync = startSync(args);
  try {
    await pg.sql`CREATE TABLE big (id int PRIMARY KEY, v text, doc text)`;
    await pg.sql`ALTER TABLE big ALTER COLUMN doc SET STORAGE EXTERNAL`;
    await pg.sql`INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 30000) g`;
    // TOASTed values that the big transaction's key changes leave unchanged.
    await pg.sql`UPDATE big SET doc = (SELECT string_agg(md5(g::text), '')
      FROM generate_series(1, 400) g) WHERE id <= 5`;
    await sync.stop();
    // Dump from scratch in small transactions (a dump of seconds, not of one poll); kill it
    // once rows are arriving.
    sync = startSync([...args, "--etcd-prefix=/k2", "--etcd-max-txn-ops=16"]);
    await waitFor("the dump to be under way", async () => {
      return (await readEtcd(etcd.endpoint, "/k2/big/1")).size > 0;
    }, 60_000);
    sync.signal("SIGKILL");
    await sync.exited;
    // It died mid-dump: etcd holds some of the table, not all of it.
    const dumped = await countKeys(etcd.endpoint, "/k2/big/");
    assert(dumped > 0 && dumped < 30000, `killed after the dump: ${dumped} of 30000 keys`);
    sync = startSync([...args, "--etcd-prefix=/k2"]);
    const expected = () => expectedFromPg(pg.sql, "/k2");
    await assertConverges(etcd.endpoint, "/k2/", expected, 120_000);

    // One transaction of 200k changes, applied in chunks of 1,000; killed between chunks,
    // resumed: PostgreSQL sends it again from its start, over what the first try applied
    // (its first changes move keys, their TOASTed values unchanged, and delete rows).
    await pg.sql`UPDATE big SET v = 'x'`; // warm-up: a 30k-row transaction
    await assertConverges(etcd.endpoint, "/k2/", expected, 120_000);
    // The transaction's WAL position just before its commit record.
    const beforeCommit = await pg.sql.begin(async (tx) => {
      await tx`UPDATE big SET id = -id WHERE id <= 5`;
      await tx`DELETE FROM big WHERE id BETWEEN 100 AND 199`;
      await tx`INSERT INTO big SELECT g, 'bulk ' || g FROM generate_series(30001, 230000) g`;
      return (await tx`SELECT pg_current_wal_insert_lsn()::text AS lsn`)[0].lsn as string;
    });
    // Row 60,000 is in the transaction's 30th chunk, row 230,000 in its last.
    await waitFor("the big transaction to be under way", async () => {
      return (await readEtcd(etcd.endpoint, "/k2/big/60000")).size > 0;
    }, 120_000);
    const status = await Deno.readTextFile(`/proc/${sync.pid}/status`);
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    sync.signal("SIGKILL");
    await sync.exited;
    // Killed half-way: some of the transaction's rows are in etcd, its last one is not, and
    // the state key has not moved past its commit (a keepalive position saved while the
    // server was still decoding it may lie inside it: PostgreSQL resends a transaction
    // whose commit is past the confirmed position).
    const applied = await countKeys(etcd.endpoint, "/k2/big/") - 29900;
    assert(applied > 0 && applied < 200000, `killed with ${applied} of 200000 rows applied`);
    assertEquals((await readEtcd(etcd.endpoint, "/k2/big/230000")).size, 0, "last row applied");
    const lsn = await savedLsn(etcd.endpoint, "/k2");
    assert(lsn, "a state key");
    const [{ ok }] = await pg.sql`SELECT ${lsn}::pg_lsn <= ${beforeCommit}::pg_lsn AS ok`;
    assert(ok, `state ${lsn} moved past the transaction's commit (after ${beforeCommit})`);
    sync = startSync([...args, "--etcd-prefix=/k2"]);
    await assertConverges(etcd.endpoint, "/k2/", expected, 180_000).catch((e) => {
      throw new Error(`${e.message}\n${sync.output()}`);
    });
    // Memory stays bounded: the transaction is never held whole (measured, not timed).
    assert(hwm > 0 && hwm < 400, `peak RSS ${hwm.toFixed(0)} MiB`);
  } finally {
    await sync.stop();
    await pg.close();
    await etcd.close();
  }
});
