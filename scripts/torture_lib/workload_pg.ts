/**
 * The PostgreSQL workload: a type-rich table (literal pools from tests/pg_values.test.ts),
 * composite keys with awkward text, a table of big out-of-line (TOASTed) values updated
 * with and without touching them, REPLICA IDENTITY FULL, another schema, bulk
 * transactions, TRUNCATE and ALTER TABLE.
 */
import { type Rng, uuidOf } from "./prng.ts";
import { type Column, type Op, rowOf, withTransactions, type Workload } from "./workload.ts";

const ITEM_COLUMNS: Column[] = [
  ["b", "bool", ["true", "false"]],
  ["i2", "int2", ["-32768", "32767", "0", "7"]],
  ["i4", "int4", ["-2147483648", "2147483647", "42"]],
  ["i8", "int8", ["-9223372036854775808", "9223372036854775807", "1"]],
  ["f4", "float4", ["'NaN'", "'Infinity'", "'-0'", "1.5e-30", "3.4028235e38", "0.1", "3.14159"]],
  ["f8", "float8", ["'NaN'", "'-Infinity'", "1e100", "0.1", "-1.7976931348623157e308"]],
  ["n", "numeric", [
    "'NaN'",
    "'Infinity'",
    "-0.000",
    "123456789012345678901234567890.123456789012345678901234567890",
    "1e-20",
    "100",
  ]],
  ["n2", "numeric(12,3)", ["1.5", "-0", "999999999.999"]],
  ["m", "money", ["12.34", "-1000000.5", "0"]],
  ["t", "text", [
    "E'h\\u00e9llo \"w\" \\\\ \\n\\t'",
    "''",
    "'NULL'",
    "E'\\u0001 ctl \\u007f'",
    "'日本語 😀'",
  ]],
  ["vc", "varchar(20)", ["'abc'", "' padded '"]],
  ["bc", "char(4)", ["'ab'", "'abcd'"]],
  ["by", "bytea", ["'\\x'", "'\\x00ff10'", "convert_to('hello world, longer', 'UTF8')"]],
  ["j", "json", [`'{"a" : [1, 2.50, "x y"], "b":null}'`, "'\"str\"'", "'  1e3 '"]],
  ["jb", "jsonb", [`'{"b": 1e3, "a": [1, 2.50, "x y"]}'`, "'null'", "'[]'"]],
  ["u", "uuid", ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"]],
  ["d", "date", ["'2024-02-29'", "'infinity'", "'0044-03-15 BC'"]],
  ["tm", "time", ["'23:59:59.999999'", "'00:00'", "'12:00:00.5'"]],
  ["ttz", "timetz", ["'12:00:00+05:30'", "'00:00:00.25+00'"]],
  ["ts", "timestamp", ["'2024-05-01 12:00:00.5'", "'-infinity'", "'0044-03-15 10:00:00 BC'"]],
  ["tstz", "timestamptz", [
    "'2024-05-01 12:00:00.123+02'",
    "'infinity'",
    "'2024-05-01 12:00:00.000001-09:30'",
    "now()",
  ]],
  ["iv", "interval", ["'1 year 2 mons -3 days 04:05:06.7'", "'0'", "'-1 day -00:00:01'"]],
  ["ip", "inet", ["'192.168.0.1/24'", "'::1'"]],
  ["mac", "macaddr", ["'08:00:2b:01:02:03'"]],
  ["bt", "bit(4)", ["B'1010'"]],
  ["vb", "varbit", ["B'101'", "B''"]],
  ["x", "xml", ["'<a>x &amp; \"y\"</a>'"]],
  ["pt", "point", ["'(1.5,-2)'"]],
  ["ia", "int4[]", ["'{1,NULL,3}'", "'{}'", "'[0:1]={5,6}'", "'{{1,2},{3,4}}'"]],
  ["ta", "text[]", [
    `'{"a b","c\\"d",NULL,"NULL","",",","{}","\\\\",x}'`,
    "ARRAY['é', ' lead', 'trail ', E'tab\\t']",
  ]],
  ["bya", "bytea[]", ['\'{"\\\\x0102",NULL,"\\\\x"}\'', "'{}'"]],
  ["tza", "timestamptz[]", ["'{\"2024-01-01 00:00:00+00\",infinity,NULL}'"]],
  ["e", "mood", ["'happy'", "'quote\"d'", "'com,ma'"]],
  ["ea", "mood[]", [`'{sad,"quote\\"d","com,ma",NULL}'`]],
  ["cp", "pair", ["ROW(1, 'x,y')", "ROW(NULL, NULL)", "ROW(2, 'quote\"d (paren)')"]],
  ["r", "int4range", ["'[1,5)'", "'empty'", "'(,3]'"]],
];

const PAIR_KEYS = ["a/b", "%", "ü", "x y", "", "NULL", "slash/", "%2F", "日本", "tab\t", "q'uote"];

const ITEM_IDS = 240;
const DOC_IDS = 60;

function lit(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

export class PgWorkload implements Workload {
  readonly schema: string;
  #r: Rng;
  #uuids: string[];
  #extra = 0;

  constructor(r: Rng) {
    this.#r = r;
    this.#uuids = Array.from({ length: 40 }, () => uuidOf(r));
    const cols = ITEM_COLUMNS.map(([n, t]) => `${n} ${t}`).join(", ");
    const items: string[] = [];
    for (let id = 1; id <= ITEM_IDS; id += 2) {
      items.push(`(${id}, ${rowOf(r, ITEM_COLUMNS).join(", ")})`);
    }
    const docs: string[] = [];
    for (let id = 1; id <= DOC_IDS; id += 2) docs.push(this.#docValues(id));
    this.schema = `
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'quote"d', 'com,ma');
      CREATE TYPE pair AS (a int, b text);
      CREATE TABLE items (id bigint PRIMARY KEY, ${cols});
      CREATE TABLE pairs (a text, b int, v text, PRIMARY KEY (a, b));
      CREATE TABLE multi (k1 int, k2 text, k3 date, v int, PRIMARY KEY (k1, k2, k3));
      CREATE TABLE docs (id int PRIMARY KEY, n int, title text, body text, meta jsonb);
      ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
      CREATE TABLE full_ident (id int PRIMARY KEY, v text, big text);
      ALTER TABLE full_ident REPLICA IDENTITY FULL;
      ALTER TABLE full_ident ALTER COLUMN big SET STORAGE EXTERNAL;
      CREATE SCHEMA other;
      CREATE TABLE other.things (id uuid PRIMARY KEY, n int, at timestamptz);
      CREATE TABLE nokey (v text);
      INSERT INTO items VALUES ${items.join(",\n")};
      INSERT INTO docs VALUES ${docs.join(",\n")};
      INSERT INTO pairs SELECT 'seed', g, md5(g::text) FROM generate_series(1, 200) g;
      INSERT INTO full_ident SELECT g, 'v' || g, NULL FROM generate_series(1, 20) g;
    `;
  }

  #docValues(id: number): string {
    const r = this.#r;
    const body = r.chance(0.8) ? lit(r.text(r.int(2100, 9000))) : lit(r.text(r.int(0, 300)));
    return `(${id}, ${r.int(0, 1000)}, ${lit(r.text(r.int(1, 40)))}, ${body}, ` +
      `'{"k": ${r.int(0, 99)}, "s": "x/y"}')`;
  }

  next(): Op {
    return withTransactions(this.#r, () => this.#single());
  }

  #single(): Op {
    const r = this.#r;
    const one = (kind: string, sql: string): Op => ({ kind, stmts: [sql], end: "auto" });
    const kind = r.weighted<string>([
      [14, "item-upsert"],
      [14, "item-update"],
      [3, "item-rekey"],
      [5, "item-delete"],
      [8, "doc-insert"],
      [8, "doc-touch"],
      [3, "doc-rekey"],
      [4, "doc-body"],
      [3, "doc-delete"],
      [8, "pair-upsert"],
      [4, "pair-rekey"],
      [3, "pair-delete"],
      [4, "multi"],
      [5, "full-ident"],
      [3, "things"],
      [1, "bulk"],
      [0.6, "truncate"],
      [0.5, "ddl"],
      [1, "nokey"],
    ]);
    switch (kind) {
      case "item-upsert": {
        const vals = rowOf(r, ITEM_COLUMNS);
        const set = ITEM_COLUMNS.map(([n]) => `${n} = EXCLUDED.${n}`).join(", ");
        return one(
          kind,
          `INSERT INTO items VALUES (${r.int(1, ITEM_IDS)}, ${vals.join(", ")}) ` +
            `ON CONFLICT (id) DO UPDATE SET ${set}`,
        );
      }
      case "item-update": {
        const sets: string[] = [];
        for (let i = r.int(1, 4); i > 0; i--) {
          const [n, , lits] = r.pick(ITEM_COLUMNS);
          if (!sets.some((s) => s.startsWith(`${n} =`))) {
            sets.push(`${n} = ${r.chance(0.1) ? "NULL" : r.pick(lits)}`);
          }
        }
        const where = r.chance(0.85)
          ? `id = ${r.int(1, ITEM_IDS)}`
          : `id BETWEEN ${r.int(1, ITEM_IDS)} AND ${r.int(1, ITEM_IDS)}`;
        return one(kind, `UPDATE items SET ${sets.join(", ")} WHERE ${where}`);
      }
      case "item-rekey": {
        const to = r.int(1, ITEM_IDS);
        return one(
          kind,
          `UPDATE items SET id = ${to} WHERE id = ${r.int(1, ITEM_IDS)} ` +
            `AND NOT EXISTS (SELECT 1 FROM items WHERE id = ${to})`,
        );
      }
      case "item-delete":
        return one(
          kind,
          r.chance(0.8)
            ? `DELETE FROM items WHERE id = ${r.int(1, ITEM_IDS)}`
            : `DELETE FROM items WHERE id BETWEEN ${r.int(1, ITEM_IDS)} AND ${r.int(1, ITEM_IDS)}`,
        );
      case "doc-insert": {
        const v = this.#docValues(r.int(1, DOC_IDS));
        return one(
          kind,
          `INSERT INTO docs (id, n, title, body, meta) VALUES ${v} ON CONFLICT (id) DO UPDATE ` +
            "SET n = EXCLUDED.n, title = EXCLUDED.title, body = EXCLUDED.body",
        );
      }
      case "doc-touch": // the TOASTed body is left unchanged: pgoutput does not send it
        return one(
          kind,
          r.chance(0.7)
            ? `UPDATE docs SET n = n + 1 WHERE id = ${r.int(1, DOC_IDS)}`
            : `UPDATE docs SET title = ${lit(r.text(r.int(0, 30)))}, meta = NULL ` +
              `WHERE id % ${r.int(2, 9)} = 0`,
        );
      case "doc-rekey": {
        const to = r.int(1, DOC_IDS);
        return one(
          kind,
          `UPDATE docs SET id = ${to}, n = n + 1 WHERE id = ${r.int(1, DOC_IDS)} ` +
            `AND NOT EXISTS (SELECT 1 FROM docs WHERE id = ${to})`,
        );
      }
      case "doc-body":
        return one(
          kind,
          `UPDATE docs SET body = ${
            r.chance(0.6) ? lit(r.text(r.int(2100, 6000))) : r.chance(0.5) ? "NULL" : "'short'"
          } WHERE id = ${r.int(1, DOC_IDS)}`,
        );
      case "doc-delete":
        return one(kind, `DELETE FROM docs WHERE id = ${r.int(1, DOC_IDS)}`);
      case "pair-upsert":
        return one(
          kind,
          `INSERT INTO pairs VALUES (${lit(r.pick(PAIR_KEYS))}, ${r.int(0, 20)}, ` +
            `${lit(r.text(r.int(0, 50)))}) ON CONFLICT (a, b) DO UPDATE SET v = EXCLUDED.v`,
        );
      case "pair-rekey": {
        const a = lit(r.pick(PAIR_KEYS));
        const b = r.int(0, 20);
        return one(
          kind,
          `UPDATE pairs SET a = ${a}, b = ${b} WHERE a = ${lit(r.pick(PAIR_KEYS))} ` +
            `AND b = ${r.int(0, 20)} AND NOT EXISTS (SELECT 1 FROM pairs WHERE a = ${a} ` +
            `AND b = ${b})`,
        );
      }
      case "pair-delete":
        return one(
          kind,
          r.chance(0.7)
            ? `DELETE FROM pairs WHERE a = ${lit(r.pick(PAIR_KEYS))}`
            : `DELETE FROM pairs WHERE a = 'seed' AND b % ${r.int(2, 10)} = 0`,
        );
      case "multi": {
        const k = `${r.int(1, 5)}, ${lit(r.pick(PAIR_KEYS))}, '2024-0${r.int(1, 9)}-1${
          r.int(0, 9)
        }'`;
        return one(
          kind,
          r.weighted([
            [
              3,
              `INSERT INTO multi VALUES (${k}, ${r.int(0, 99)}) ON CONFLICT (k1, k2, k3) ` +
              "DO UPDATE SET v = EXCLUDED.v",
            ],
            [1, `UPDATE multi SET k1 = k1 + 10 WHERE k1 = ${r.int(1, 5)}`],
            [1, `DELETE FROM multi WHERE k1 > ${r.int(3, 15)}`],
          ]),
        );
      }
      case "full-ident": {
        const id = r.int(1, 30);
        const big = r.chance(0.3) ? lit(r.text(r.int(2100, 4000))) : "NULL";
        return one(
          kind,
          r.weighted([
            [
              3,
              `INSERT INTO full_ident VALUES (${id}, ${lit(r.text(8))}, ${big}) ` +
              "ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v",
            ],
            [3, `UPDATE full_ident SET v = ${lit(r.text(8))} WHERE id = ${id}`],
            [1, `UPDATE full_ident SET id = id + 100 WHERE id = ${id}`],
            [1, `DELETE FROM full_ident WHERE id = ${id}`],
          ]),
        );
      }
      case "things": {
        const id = lit(r.pick(this.#uuids));
        return one(
          kind,
          r.chance(0.7)
            ? `INSERT INTO other.things VALUES (${id}, ${r.int(0, 9)}, now()) ` +
              "ON CONFLICT (id) DO UPDATE SET n = other.things.n + 1, at = EXCLUDED.at"
            : `DELETE FROM other.things WHERE id = ${id}`,
        );
      }
      case "bulk": {
        // Larger than one etcd transaction: applied in chunks.
        const from = r.int(1, 1000);
        return one(
          kind,
          r.weighted([
            [
              2,
              `INSERT INTO pairs SELECT 'bulk', g, md5(g::text) FROM generate_series(${from}, ` +
              `${from + r.int(100, 600)}) g ON CONFLICT (a, b) DO UPDATE SET v = 'again'`,
            ],
            [1, "UPDATE items SET i4 = coalesce(i4, 0) % 1000 + 1"],
            [1, "DELETE FROM pairs WHERE a = 'bulk'"],
          ]),
        );
      }
      case "truncate": {
        const t = r.pick(["pairs", "full_ident", "multi"]);
        const stmts = [`TRUNCATE ${t}`];
        if (t === "pairs" && r.chance(0.5)) {
          stmts.push(
            "INSERT INTO pairs SELECT 'seed', g, 'after truncate' " +
              `FROM generate_series(1, ${r.int(1, 50)}) g`,
          );
        }
        return { kind, stmts, end: stmts.length > 1 ? "commit" : "auto" };
      }
      case "ddl": {
        const t = r.pick(["docs", "multi"]);
        // Adding a column with a default changes rows without streaming them.
        if (this.#extra > 0 && r.chance(0.5)) {
          return one(kind, `ALTER TABLE ${t} DROP COLUMN IF EXISTS x${r.int(1, this.#extra)}`);
        }
        this.#extra++;
        return one(
          kind,
          `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS x${this.#extra} int DEFAULT ${r.int(0, 9)}`,
        );
      }
      default:
        return one(kind, `INSERT INTO nokey VALUES (${lit(r.text(5))})`);
    }
  }
}
