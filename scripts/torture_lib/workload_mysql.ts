/**
 * The MariaDB/MySQL workload: the type-rich `items` of tests/mysql_sync.test.ts, composite
 * and binary keys, big TEXT/BLOB values, bulk transactions, TRUNCATE and ALTER TABLE.
 */
import type { Rng } from "./prng.ts";
import { type Column, type Op, rowOf, withTransactions, type Workload } from "./workload.ts";

const ITEM_COLUMNS: Column[] = [
  ["name", "VARCHAR(100)", ["'one'", "''", "'日本語 😀'", "'q\\'uote \"d\"'", "'a/b%'"]],
  ["latin", "VARCHAR(20) CHARACTER SET latin1", ["'café'", "'plain'", "'ÿ'"]],
  ["price", "DECIMAL(12,3)", ["1.5", "-0.001", "999999999.999", "0"]],
  ["big", "DECIMAL(40,20)", ["-12345678901234567890.01234567890123456789", "0.1", "1"]],
  ["ratio", "DOUBLE", ["0.1", "-1.7976931348623157e308", "1e100", "3.141592653589793", "0"]],
  ["f", "FLOAT", ["1.1", "3.25", "-0.5", "3.14159265", "1e30", "123456789"]],
  ["ok", "BOOLEAN", ["0", "1"]],
  ["u", "INT UNSIGNED", ["4294967295", "0", "7"]],
  ["ub", "BIGINT UNSIGNED", ["18446744073709551615", "9007199254740993"]],
  ["tiny", "TINYINT", ["-128", "127"]],
  ["y", "YEAR", ["2024", "1901", "2155"]],
  ["doc", "JSON", [`'{"a": [1, 2.5, "x"], "b": null}'`, "'[]'", `'"s/t"'`, "'1e3'"]],
  ["kind", "ENUM('a','b','c')", ["'a'", "'c'"]],
  ["flags", "SET('x','y','z')", ["''", "'x,z'", "'y'"]],
  ["bits", "BIT(12)", ["b'101010101010'", "b'1'", "b'0'"]],
  ["d", "DATE", ["'2024-02-29'", "'1000-01-01'", "'9999-12-31'"]],
  ["t", "TIME(3)", ["'-838:59:59.000'", "'12:00:00.5'", "'00:00:00'"]],
  ["dt", "DATETIME(6)", ["'2024-02-29 23:59:59.123456'", "'1000-01-01 00:00:00'"]],
  ["ts", "TIMESTAMP(2) NULL", ["'2038-01-19 03:14:07.99'", "'1970-01-01 00:00:01'"]],
  ["blob_col", "BLOB", ["x'00ff10'", "x''", "'text in blob'"]],
  ["bin", "BINARY(4)", ["x'01020304'", "x'00'"]],
  ["note", "TEXT", ["'line\\nbreak \"q\"'", "'tab\\there'"]],
  ["g", "GEOMETRY", ["ST_GeomFromText('POINT(1 2)')"]],
];

const PAIR_KEYS = ["a/b", "%", "ü", "x y", "", "NULL", "slash/", "%2F", "日本", "q\\'uote"];
const BIN_KEYS = ["x'00ff2f'", "'plain'", "x'2f2f'", "x'25'", "x'00'", "x'ffffffff'"];
const ITEM_IDS = 240;
const DOC_IDS = 60;

function lit(s: string): string {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

export class MysqlWorkload implements Workload {
  readonly schema: string;
  #r: Rng;
  #extra = 0;

  constructor(r: Rng) {
    this.#r = r;
    const cols = ITEM_COLUMNS.map(([n, t]) => `${n} ${t}`).join(", ");
    const items: string[] = [];
    for (let id = 1; id <= ITEM_IDS; id += 2) {
      items.push(`(${id}, ${rowOf(r, ITEM_COLUMNS).join(", ")})`);
    }
    const docs: string[] = [];
    for (let id = 1; id <= DOC_IDS; id += 2) docs.push(this.#docValues(id));
    this.schema = `
      CREATE DATABASE app CHARACTER SET utf8mb4;
      USE app;
      CREATE TABLE items (id BIGINT PRIMARY KEY, ${cols});
      CREATE TABLE pairs (a VARCHAR(20), b INT, v TEXT, PRIMARY KEY (a, b));
      CREATE TABLE multi (k1 INT, k2 VARCHAR(20), k3 DATE, v INT, PRIMARY KEY (k1, k2, k3));
      CREATE TABLE bkey (k VARBINARY(8) PRIMARY KEY, v INT);
      CREATE TABLE docs (id INT PRIMARY KEY, n INT, title VARCHAR(64), body LONGTEXT,
        raw MEDIUMBLOB);
      CREATE TABLE nokey (v INT);
      INSERT INTO items VALUES ${items.join(",\n")};
      INSERT INTO docs VALUES ${docs.join(",\n")};
      INSERT INTO pairs SELECT 'seed', seq, MD5(seq) FROM seq_1_to_200;
      INSERT INTO bkey VALUES (x'00ff2f', 1), ('plain', 2);
    `;
  }

  #docValues(id: number): string {
    const r = this.#r;
    const body = r.chance(0.8) ? lit(r.text(r.int(2100, 9000))) : lit(r.text(r.int(0, 300)));
    return `(${id}, ${r.int(0, 1000)}, ${lit(r.text(r.int(1, 40)))}, ${body}, ` +
      `x'${r.hex(2 * r.int(0, 600))}')`;
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
      [3, "doc-delete"],
      [8, "pair-upsert"],
      [4, "pair-rekey"],
      [3, "pair-delete"],
      [4, "multi"],
      [4, "bkey"],
      [1, "bulk"],
      [0.6, "truncate"],
      [0.5, "ddl"],
      [1, "nokey"],
    ]);
    switch (kind) {
      case "item-upsert": {
        const vals = rowOf(r, ITEM_COLUMNS);
        const set = ITEM_COLUMNS.map(([n]) => `${n} = VALUES(${n})`).join(", ");
        return one(
          kind,
          `INSERT INTO items VALUES (${r.int(1, ITEM_IDS)}, ${vals.join(", ")}) ` +
            `ON DUPLICATE KEY UPDATE ${set}`,
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
      case "item-rekey": // IGNORE: a taken key leaves the row alone
        return one(
          kind,
          `UPDATE IGNORE items SET id = ${r.int(1, ITEM_IDS)} WHERE id = ${r.int(1, ITEM_IDS)}`,
        );
      case "item-delete":
        return one(
          kind,
          r.chance(0.8)
            ? `DELETE FROM items WHERE id = ${r.int(1, ITEM_IDS)}`
            : `DELETE FROM items WHERE id BETWEEN ${r.int(1, ITEM_IDS)} AND ${r.int(1, ITEM_IDS)}`,
        );
      case "doc-insert":
        return one(
          kind,
          // Columns named: DDL adds and drops columns of docs and multi.
          `INSERT INTO docs (id, n, title, body, raw) VALUES ${
            this.#docValues(r.int(1, DOC_IDS))
          } ON DUPLICATE KEY ` +
            "UPDATE n = VALUES(n), title = VALUES(title), body = VALUES(body)",
        );
      case "doc-touch":
        return one(
          kind,
          r.chance(0.7)
            ? `UPDATE docs SET n = n + 1 WHERE id = ${r.int(1, DOC_IDS)}`
            : `UPDATE docs SET title = ${lit(r.text(r.int(0, 30)))} WHERE id % ${r.int(2, 9)} = 0`,
        );
      case "doc-rekey":
        return one(
          kind,
          `UPDATE IGNORE docs SET id = ${r.int(1, DOC_IDS)}, n = n + 1 WHERE id = ${
            r.int(1, DOC_IDS)
          }`,
        );
      case "doc-delete":
        return one(kind, `DELETE FROM docs WHERE id = ${r.int(1, DOC_IDS)}`);
      case "pair-upsert":
        return one(
          kind,
          `INSERT INTO pairs VALUES (${lit(r.pick(PAIR_KEYS))}, ${r.int(0, 20)}, ` +
            `${lit(r.text(r.int(0, 50)))}) ON DUPLICATE KEY UPDATE v = VALUES(v)`,
        );
      case "pair-rekey":
        return one(
          kind,
          `UPDATE IGNORE pairs SET a = ${lit(r.pick(PAIR_KEYS))}, b = ${r.int(0, 20)} ` +
            `WHERE a = ${lit(r.pick(PAIR_KEYS))} AND b = ${r.int(0, 20)}`,
        );
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
              `INSERT INTO multi (k1, k2, k3, v) VALUES (${k}, ${r.int(0, 99)}) ` +
              "ON DUPLICATE KEY UPDATE v = v + 1",
            ],
            [1, `UPDATE IGNORE multi SET k1 = k1 + 10 WHERE k1 = ${r.int(1, 5)}`],
            [1, `DELETE FROM multi WHERE k1 > ${r.int(3, 15)}`],
          ]),
        );
      }
      case "bkey":
        return one(
          kind,
          r.chance(0.7)
            ? `INSERT INTO bkey VALUES (${r.pick(BIN_KEYS)}, ${r.int(0, 99)}) ` +
              "ON DUPLICATE KEY UPDATE v = VALUES(v)"
            : `DELETE FROM bkey WHERE k = ${r.pick(BIN_KEYS)}`,
        );
      case "bulk": {
        const from = r.int(1, 1000);
        return one(
          kind,
          r.weighted([
            [
              2,
              `INSERT INTO pairs SELECT 'bulk', seq, MD5(seq) FROM seq_${from}_to_${
                from + r.int(100, 600)
              } ON DUPLICATE KEY UPDATE v = 'again'`,
            ],
            [1, "UPDATE items SET u = COALESCE(u, 0) % 1000 + 1"],
            [1, "DELETE FROM pairs WHERE a = 'bulk'"],
          ]),
        );
      }
      case "truncate": {
        const t = r.pick(["pairs", "bkey", "multi"]);
        const stmts = [`TRUNCATE TABLE ${t}`];
        // TRUNCATE commits implicitly: the inserts after it are their own transaction.
        if (t === "pairs" && r.chance(0.5)) {
          stmts.push(
            `INSERT INTO pairs SELECT 'seed', seq, 'after truncate' FROM seq_1_to_${r.int(1, 50)}`,
          );
        }
        return { kind, stmts, end: stmts.length > 1 ? "commit" : "auto" };
      }
      case "ddl": {
        const t = r.pick(["docs", "multi"]);
        if (this.#extra > 0 && r.chance(0.5)) {
          return one(kind, `ALTER TABLE ${t} DROP COLUMN IF EXISTS x${r.int(1, this.#extra)}`);
        }
        this.#extra++;
        return one(
          kind,
          `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS x${this.#extra} INT DEFAULT ${r.int(0, 9)}`,
        );
      }
      default:
        return one(kind, `INSERT INTO nokey VALUES (${r.int(0, 99)})`);
    }
  }
}
