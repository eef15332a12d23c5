/**
 * The `ddl` fault: schema changes while the workload runs, each of which makes sync read
 * a table again (design: Snapshots): a column added with a default (every row changes, none
 * is streamed), that column dropped, a new table created with rows, a table renamed.
 */
import type { Target } from "./targets.ts";

interface DdlState {
  round: number;
  /** Columns added to `pairs`, not dropped yet. */
  added: string[];
  /** Tables this fault created, by current name. */
  created: string[];
}

const states = new WeakMap<Target, DdlState>();

/** The statements of one schema change, picked by the seeded draw `a`. */
export function ddlStatements(target: Target, a: number): { what: string; stmts: string[] } {
  let s = states.get(target);
  if (!s) states.set(target, s = { round: 0, added: [], created: [] });
  const n = ++s.round;
  const pg = target.driver === "pgx";
  const pick = Math.floor(a * 4);
  if (pick === 0 || (pick === 1 && !s.added.length)) {
    const col = `extra${n}`;
    s.added.push(col);
    return {
      what: `add column pairs.${col}`,
      stmts: [
        `ALTER TABLE pairs ADD COLUMN ${col} ${pg ? "int" : "INT"} DEFAULT ${n}`,
        // PostgreSQL shows a table's new shape with its next changed row.
        `UPDATE pairs SET v = v WHERE b = ${n % 7}`,
      ],
    };
  }
  if (pick === 1) {
    const col = s.added.shift()!;
    return {
      what: `drop column pairs.${col}`,
      stmts: [`ALTER TABLE pairs DROP COLUMN ${col}`, `UPDATE pairs SET v = v WHERE b = ${n % 7}`],
    };
  }
  if (pick === 2 || !s.created.length) {
    const t = `ddl${n}`;
    s.created.push(t);
    return {
      what: `create table ${t}`,
      stmts: [
        `CREATE TABLE ${t} (id int PRIMARY KEY, v ${pg ? "text" : "VARCHAR(40)"})`,
        insertRows(t, n),
      ],
    };
  }
  const from = s.created.shift()!;
  const to = `${from}r${n}`;
  s.created.push(to);
  return {
    what: `rename table ${from} to ${to}`,
    stmts: [
      pg ? `ALTER TABLE ${from} RENAME TO ${to}` : `RENAME TABLE ${from} TO ${to}`,
      `UPDATE ${to} SET v = 'renamed' WHERE id = 1`,
    ],
  };
}

function insertRows(table: string, n: number): string {
  const rows = Array.from({ length: 50 }, (_, i) => `(${i + 1}, 'round ${n} row ${i + 1}')`);
  return `INSERT INTO ${table} (id, v) VALUES ${rows.join(", ")}`;
}
