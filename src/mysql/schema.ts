/** Table schemas from information_schema (columns, types, charsets, primary keys). */
import { configuredKey, type KeyConfig } from "../core/key_config.ts";
import type { MysqlColumn, TableSchema } from "./types.ts";

/** What runs a query: the driver's own connection. */
export interface Queryable {
  query(sql: string): Promise<{ columns: string[]; rows: (string | null)[][] }>;
}

export const SYSTEM_SCHEMAS = ["mysql", "information_schema", "performance_schema", "sys"];

/** A string literal for SQL (backslash and quote escaped). */
export function sqlString(s: string): string {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

/** `db`.`table` quoted. */
export function qualifiedName(schema: string, table: string): string {
  return `\`${schema.replaceAll("`", "``")}\`.\`${table.replaceAll("`", "``")}\``;
}

/** ENUM/SET members from a COLUMN_TYPE such as `enum('a','b''c')`. */
export function parseMembers(columnType: string): string[] {
  const open = columnType.indexOf("(");
  if (open < 0) return [];
  const out: string[] = [];
  let i = open + 1;
  while (i < columnType.length && columnType[i] === "'") {
    let s = "";
    i++;
    for (; i < columnType.length; i++) {
      const c = columnType[i];
      if (c === "'" && columnType[i + 1] === "'") {
        s += "'";
        i++;
      } else if (c === "\\" && i + 1 < columnType.length) {
        s += columnType[++i];
      } else if (c === "'") break;
      else s += c;
    }
    out.push(s);
    i++; // closing quote
    if (columnType[i] === ",") i++;
  }
  return out;
}

/** Tables without a primary key get the key columns `--keys` gives them (in place). */
export function applyKeyConfig(
  schemas: Map<string, TableSchema>,
  keys: KeyConfig,
): Map<string, TableSchema> {
  for (const t of schemas.values()) {
    if (t.keyColumns.length) continue;
    const idx = configuredKey(keys, t.schema, t.table, t.columns.map((c) => c.name));
    if (!idx) continue;
    t.keyColumns = idx;
    t.pageable = (t.uniqueKeys ?? []).some((u) => u.every((c) => idx.includes(c)));
  }
  return schemas;
}

/**
 * The unique, NOT NULL, expression-free indexes of the tables without a primary key (a
 * unique index admits many NULLs; an expression part has no COLUMN_NAME).
 */
async function loadUniqueKeys(
  q: Queryable,
  out: Map<string, TableSchema>,
  inList: string,
  tableCond: string,
): Promise<void> {
  if (![...out.values()].some((t) => !t.keyColumns.length)) return;
  const r = await q.query(
    `SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME, NULLABLE
     FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA IN (${inList})${tableCond} AND NON_UNIQUE = 0
     ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
  );
  const indexes = new Map<string, { t: TableSchema; cols: number[]; ok: boolean }>();
  for (const [schema, table, index, column, nullable] of r.rows) {
    const t = out.get(`${schema}.${table}`);
    if (!t || t.keyColumns.length) continue;
    const id = `${schema}.${table}.${index}`;
    let u = indexes.get(id);
    if (!u) indexes.set(id, u = { t, cols: [], ok: true });
    const at = column === null ? -1 : t.columns.findIndex((c) => c.name === column);
    if (at < 0 || nullable === "YES") u.ok = false;
    u.cols.push(at);
  }
  for (const { t, cols, ok } of indexes.values()) {
    if (ok) (t.uniqueKeys ??= []).push(cols);
  }
}

/**
 * Schemas of the tables in `schemas` (all tables of them), keyed `schema.table`.
 * MariaDB stores JSON as LONGTEXT with a json_valid() check; `mariadb` says to look for it.
 */
export async function loadSchemas(
  q: Queryable,
  schemas: string[],
  mariadb: boolean,
  onlyTable?: string,
): Promise<Map<string, TableSchema>> {
  const out = new Map<string, TableSchema>();
  if (!schemas.length) return out;
  const inList = schemas.map(sqlString).join(",");
  const tableCond = onlyTable ? ` AND TABLE_NAME = ${sqlString(onlyTable)}` : "";
  const cols = await q.query(
    `SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, LOWER(c.DATA_TYPE),
            LOWER(c.COLUMN_TYPE), c.CHARACTER_SET_NAME, c.DATETIME_PRECISION
     FROM information_schema.COLUMNS c JOIN information_schema.TABLES t
       ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
     WHERE c.TABLE_SCHEMA IN (${inList})${tableCond.replaceAll("TABLE_NAME", "c.TABLE_NAME")}
       AND t.TABLE_TYPE = 'BASE TABLE'
     ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION`,
  );
  for (const [schema, table, name, dataType, columnType, charset, fsp] of cols.rows) {
    const id = `${schema}.${table}`;
    let t = out.get(id);
    if (!t) out.set(id, t = { schema: schema!, table: table!, columns: [], keyColumns: [] });
    const col: MysqlColumn = {
      name: name!,
      dataType: dataType!,
      columnType: columnType!,
      charset: charset,
      fsp: Number(fsp ?? 0) || 0,
      unsigned: /\bunsigned\b/.test(columnType!),
      json: dataType === "json",
      members: dataType === "enum" || dataType === "set" ? parseMembers(columnType!) : [],
    };
    t.columns.push(col);
  }
  const keys = await q.query(
    `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
     WHERE TABLE_SCHEMA IN (${inList})${tableCond} AND CONSTRAINT_NAME = 'PRIMARY'
     ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
  );
  for (const [schema, table, name] of keys.rows) {
    const t = out.get(`${schema}.${table}`);
    if (!t) continue;
    t.keyColumns.push(t.columns.findIndex((c) => c.name === name));
  }
  await loadUniqueKeys(q, out, inList, tableCond);
  if (mariadb) {
    const checks = await q.query(
      `SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
       WHERE CONSTRAINT_SCHEMA IN (${inList})${tableCond} AND CHECK_CLAUSE LIKE 'json_valid(%'`,
    );
    for (const [schema, table, clause] of checks.rows) {
      const t = out.get(`${schema}.${table}`);
      const m = /^json_valid\(`((?:[^`]|``)+)`\)$/.exec(clause ?? "");
      if (!t || !m) continue;
      const col = t.columns.find((c) => c.name === m[1].replaceAll("``", "`"));
      if (col) col.json = true;
    }
  }
  return out;
}
