/**
 * The checker's PostgreSQL side: every row of the replicated tables, rendered by
 * PostgreSQL's own JSON functions (not by sync's renderer) plus the design's few
 * departures from them (base64 for bytea, `Z` for UTC, text for composite/range types).
 */
import type postgres from "postgres";
import { fullKey, keyTableName, rowKey } from "../../src/core/keys.ts";
import { jsonRaw } from "../../src/core/json.ts";

type Sql = ReturnType<typeof postgres>;

interface Col {
  name: string;
  type: string;
  typtype: string;
  elemtype: string | null;
  key: number;
}

function expr(c: Col): string {
  const q = `"${c.name.replaceAll('"', '""')}"`;
  if (c.type === "bytea") return `to_json(translate(encode(${q}, 'base64'), E'\\n', ''))`;
  if (c.type === "timestamptz") {
    return `to_json(regexp_replace(to_json(${q}) #>> '{}', '\\+00:00$', 'Z'))`;
  }
  if (c.type === "timetz") return `to_json(${q})`;
  if (c.typtype === "c" || c.typtype === "r" || c.typtype === "m") return `to_json(${q}::text)`;
  if (c.elemtype === "timestamptz") {
    return `(SELECT json_agg(regexp_replace(to_json(e) #>> '{}', '\\+00:00$', 'Z')) FROM unnest(${q}) e)`;
  }
  if (c.elemtype === "bytea") {
    return `(SELECT json_agg(translate(encode(e, 'base64'), E'\\n', '')) FROM unnest(${q}) e)`;
  }
  return `to_json(${q})`;
}

/** Expected etcd contents (key → compact JSON) for the selected tables. */
export async function expectedFromPg(
  sql: Sql,
  prefix: string,
  tables?: { schema: string; table: string }[],
): Promise<Map<string, string>> {
  await sql`SET TimeZone = 'UTC'`;
  await sql`SET DateStyle = 'ISO'`;
  const list = tables ?? (await sql<{ schema: string; table: string }[]>`
    SELECT n.nspname AS schema, c.relname AS table FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%'
      AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
    ORDER BY 1, 2`);
  const out = new Map<string, string>();
  for (const { schema, table } of list) {
    const cols = await sql<Col[]>`
      SELECT a.attname AS name, t.typname AS type, t.typtype AS typtype,
             et.typname AS elemtype,
             coalesce(array_position(string_to_array(i.indkey::text, ' ')::int2[], a.attnum), 0) AS key
      FROM pg_attribute a
      JOIN pg_type t ON t.oid = a.atttypid
      LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
      LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
      WHERE a.attrelid = ${`"${schema}"."${table}"`}::regclass AND a.attnum > 0
        AND NOT a.attisdropped
      ORDER BY a.attnum`;
    const keyCols = cols.filter((c) => c.key > 0).sort((a, b) => a.key - b.key);
    const obj = cols.map((c) => `'${c.name.replaceAll("'", "''")}', ${expr(c)}`).join(", ");
    const keys = keyCols.map((c, i) => `"${c.name.replaceAll('"', '""')}"::text AS k${i}`);
    const rows = await sql.unsafe(
      `SELECT json_build_object(${obj})::text AS v, ${keys.join(", ")} FROM "${schema}"."${table}"`,
    );
    for (const r of rows) {
      const parts = keyCols.map((_, i) => String(r[`k${i}`]));
      out.set(
        fullKey(prefix, keyTableName(schema, table, "public"), rowKey(parts)),
        jsonRaw(r.v as string),
      );
    }
  }
  return out;
}
