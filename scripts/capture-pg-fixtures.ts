/**
 * Capture real pgoutput bytes from a throwaway PostgreSQL into tests/fixtures/pg/.
 *
 *   deno run --allow-all scripts/capture-pg-fixtures.ts
 *
 * Starts a server with testing/postgres.ts, runs a fixed workload and reads the
 * slots with pg_logical_slot_peek_binary_changes. Each output file holds JSON lines
 * `{"lsn":"0/1A2B3C4","xid":740,"hex":"42..."}`, one pgoutput message per line in slot
 * order (the `hex` is exactly the XLogData payload a walsender would send).
 * See tests/fixtures/pg/README.md.
 */
import { startPostgres } from "../testing/postgres.ts";

const OUT = new URL("../tests/fixtures/pg/", import.meta.url).pathname;

// Non-compressible text, so it is stored out of line (TOAST) and an update that does not
// touch it sends it as 'u' (unchanged).
function randomText(n: number, seed: number): string {
  const abc = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  let x = seed >>> 0;
  let s = "";
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    s += abc[(x >>> 16) % abc.length];
  }
  return s;
}

/** Workload A: every message kind except streaming. */
const WORKLOAD_A = `
SET TimeZone = 'UTC';
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posnum AS numeric CHECK (VALUE >= 0);
CREATE TYPE pair AS (a int, b text);
CREATE TABLE every_type (
  id int PRIMARY KEY,
  b bool, i2 int2, i8 int8, n numeric, f4 float4, f8 float8, m money,
  t text, vc varchar(10), c char(3), nm name, by bytea, j json, jb jsonb, u uuid,
  d date, tm time, ttz timetz, ts timestamp, tstz timestamptz, iv interval,
  ip inet, cd cidr, mac macaddr, bt bit(4), vb varbit, x xml, pt point, bx box,
  ia int[], ta text[], tsa timestamptz[], ba bytea[], bxa box[],
  e mood, dn posnum, cp pair, r int4range
);
CREATE TABLE full_ident (a int, b text);
ALTER TABLE full_ident REPLICA IDENTITY FULL;
CREATE TABLE toasted (id int PRIMARY KEY, small text, big text);
ALTER TABLE toasted ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE "Weird ""name""" ("k/1" text, "k 2" int, PRIMARY KEY ("k 2", "k/1"));
CREATE SCHEMA other;
CREATE TABLE other.t (id bigint PRIMARY KEY, v text);
CREATE PUBLICATION p FOR ALL TABLES;
SELECT 'slot' FROM pg_create_logical_replication_slot('s', 'pgoutput');

INSERT INTO every_type VALUES (
  1, true, -32768, 9223372036854775807, 'NaN', 'Infinity', -0, 12.34,
  E'h\\u00e9llo "w" \\\\ \\n', 'abc', 'ab', 'nm', '\\x00ff10', '{"a": [1, 2.50]}', '{"b": 1e3}',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '0044-03-15 BC', '23:59:59.999999', '12:00:00+05:30', '2024-05-01 12:00:00.5',
  '2024-05-01 12:00:00.123+02', '1 year 2 mons -3 days 04:05:06.7',
  '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', B'1010', B'101', '<a>x</a>',
  '(1.5,-2)', '(1,2),(3,4)',
  '{1,NULL,3}', '{"a b","c\\"d",NULL,"NULL",""}', '{"2024-01-01 00:00:00+00",infinity}',
  '{"\\\\x0102",NULL}', '{(1,2),(3,4);(5,6),(7,8)}',
  'happy', 12.5, ROW(1, 'x,y'), '[1,5)'
);
INSERT INTO every_type (id) VALUES (2);
UPDATE every_type SET t = 'changed', tstz = 'infinity' WHERE id = 2;
UPDATE every_type SET id = 3 WHERE id = 2;
DELETE FROM every_type WHERE id = 3;

INSERT INTO full_ident VALUES (1, 'one'), (2, NULL);
UPDATE full_ident SET b = 'uno' WHERE a = 1;
DELETE FROM full_ident WHERE a = 2;

INSERT INTO toasted VALUES (1, 'small', '${randomText(9000, 1)}');
UPDATE toasted SET small = 'changed' WHERE id = 1;
DELETE FROM toasted WHERE id = 1;

INSERT INTO "Weird ""name""" VALUES ('a/b', 1);
INSERT INTO other.t VALUES (1, 'x');

BEGIN;
INSERT INTO other.t VALUES (2, 'rolled back');
SELECT pg_logical_emit_message(false, 'nontx', 'sent even though rolled back');
ROLLBACK;

BEGIN;
SELECT pg_logical_emit_message(true, 'tx', E'\\\\x00ff'::bytea);
INSERT INTO other.t VALUES (3, 'with message');
COMMIT;

TRUNCATE other.t, full_ident RESTART IDENTITY CASCADE;

SELECT pg_replication_origin_create('upstream');
SELECT pg_replication_origin_session_setup('upstream');
BEGIN;
SELECT pg_replication_origin_xact_setup('0/12345678', '2024-01-02 03:04:05+00');
INSERT INTO other.t VALUES (4, 'from origin');
COMMIT;
SELECT pg_replication_origin_session_reset();
`;

/** Workload B: a transaction larger than logical_decoding_work_mem, with a subxact abort. */
const WORKLOAD_B = `
CREATE TABLE big (id int PRIMARY KEY);
SELECT 'slot' FROM pg_create_logical_replication_slot('s2', 'pgoutput');
BEGIN;
INSERT INTO big SELECT g FROM generate_series(1, 300) g;
SAVEPOINT sp;
INSERT INTO big SELECT g FROM generate_series(301, 600) g;
ROLLBACK TO SAVEPOINT sp;
INSERT INTO big VALUES (5000);
COMMIT;
BEGIN;
INSERT INTO big SELECT g FROM generate_series(10001, 10520) g;
ROLLBACK;
INSERT INTO big VALUES (6000);
`;

interface Row {
  lsn: string;
  xid: string;
  hex: string;
}

async function main() {
  const pg = await startPostgres();
  try {
    await Deno.mkdir(OUT, { recursive: true });
    const sql = pg.connect();
    // The harness runs with synchronous_commit=off and peeking stops at the flushed WAL:
    // after a workload, wait until everything it wrote is flushed.
    const flushed = async () => {
      const [{ end }] = await sql`SELECT pg_current_wal_insert_lsn()::text AS end`;
      for (let i = 0; i < 100; i++) {
        const [{ ok }] = await sql`SELECT pg_current_wal_flush_lsn() >= ${end}::pg_lsn AS ok`;
        if (ok) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error("WAL was not flushed");
    };
    await sql`SET TimeZone = 'UTC'`;
    await sql`SET DateStyle = 'ISO'`;
    await sql`SET IntervalStyle = 'postgres'`;
    await sql`SET bytea_output = 'hex'`;
    await sql`SET logical_decoding_work_mem = '64kB'`;
    const peek = async (slot: string, opts: string[]) => {
      const args = opts.map((o) => `'${o}'`).join(", ");
      return await sql.unsafe<Row[]>(
        `SELECT lsn::text AS lsn, xid::text AS xid, encode(data, 'hex') AS hex
         FROM pg_logical_slot_peek_binary_changes('${slot}', NULL, NULL, ${args})`,
      );
    };
    const write = async (file: string, rows: Row[]) => {
      const lines = rows.map((r) => JSON.stringify({ lsn: r.lsn, xid: Number(r.xid), hex: r.hex }));
      await Deno.writeTextFile(OUT + file, lines.join("\n") + "\n");
      console.log(`${file}: ${rows.length} messages`);
    };
    const common = ["publication_names", "p", "messages", "true"];

    await pg.psql(WORKLOAD_A);
    await flushed();
    await write("v1.jsonl", await peek("s", ["proto_version", "1", ...common]));
    await write("v3.jsonl", await peek("s", ["proto_version", "3", "streaming", "on", ...common]));
    await sql`SELECT pg_drop_replication_slot('s')`;

    await pg.psql(WORKLOAD_B);
    await flushed();
    await write(
      "v2-stream.jsonl",
      await peek("s2", ["proto_version", "2", "streaming", "on", ...common]),
    );
    const [{ version }] = await sql`SELECT version()`;
    await Deno.writeTextFile(OUT + "server-version.txt", version + "\n");
    await Deno.writeTextFile(OUT + "toast.txt", randomText(9000, 1) + "\n");
  } finally {
    await pg.close();
  }
}

if (import.meta.main) await main();
