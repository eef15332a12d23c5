/**
 * The checker's PostgreSQL side: every row of the replicated tables, rendered by
 * PostgreSQL's own JSON functions (not by sync's renderer) plus the design's few
 * departures from them: base64 for bytea, `Z` for UTC, numbers for `oid`, and the text form
 * for composite/range/multirange types (also as array elements). Domains count as their
 * base type. Keys come from checker.ts, not from src/, and values are compared there
 * structurally.
 */
import type postgres from "postgres";
import { expectedKey } from "./checker.ts";

type Sql = ReturnType<typeof postgres>;

interface Col {
  name: string;
  /** Type name, after following domains to their base type. */
  type: string;
  typtype: string;
  /** Array element type (after domains), or null. */
  elemtype: string | null;
  elemtyptype: string | null;
  key: number;
}

/** `+00:00` (UTC) → `Z` inside a to_json() text of timestamptz values. */
const UTC_Z = `'\\+00:00("|( BC)")', 'Z\\1', 'g'`;

function expr(c: Col): string {
  const q = `"${c.name.replaceAll('"', '""')}"`;
  const b64 = (v: string) => `translate(encode(${v}, 'base64'), E'\\n', '')`;
  if (c.type === "bytea") return `to_json(${b64(q)})`;
  if (c.type === "timestamptz") return `regexp_replace(to_json(${q})::text, ${UTC_Z})::json`;
  if (c.type === "oid") return `to_json(${q}::int8)`;
  if (c.typtype === "c" || c.typtype === "r" || c.typtype === "m") return `to_json(${q}::text)`;
  if (c.elemtype === "timestamptz") return `regexp_replace(to_json(${q})::text, ${UTC_Z})::json`;
  if (c.elemtype === "oid") return `to_json(${q}::int8[])`;
  if (c.elemtyptype === "c" || c.elemtyptype === "r" || c.elemtyptype === "m") {
    return `to_json(${q}::text[])`;
  }
  if (c.elemtype === "bytea") {
    // No array map in SQL: rebuild one or two dimensions by subscript.
    const one = (v: string) =>
      `coalesce((SELECT json_agg(${
        b64("e")
      } ORDER BY n) FROM unnest(${v}) WITH ORDINALITY AS x(e, n)), '[]')`;
    return `CASE WHEN ${q} IS NULL THEN NULL WHEN array_ndims(${q}) = 2 THEN
      (SELECT json_agg(${one(`${q}[i:i]`)} ORDER BY i) FROM generate_subscripts(${q}, 1) AS i)
      ELSE ${one(q)} END`;
  }
  return `to_json(${q})`;
}

/**
 * Expected etcd contents (key → JSON, for `firstDifference`) for the selected tables. The
 * settings the rendering depends on are set in the one transaction that reads, whatever the
 * server's defaults.
 */
export async function expectedFromPg(
  sql: Sql,
  prefix: string,
  tables?: { schema: string; table: string }[],
  /** `--keys`: key columns of tables without a primary key, by `schema.table`. */
  keys: Record<string, string[]> = {},
): Promise<Map<string, string>> {
  // One connection for the settings and the reads.
  return await sql.begin(async (tx) => {
    await tx`SET LOCAL TimeZone = 'UTC'`;
    await tx`SET LOCAL DateStyle = 'ISO'`;
    await tx`SET LOCAL IntervalStyle = 'postgres'`;
    await tx`SET LOCAL bytea_output = 'hex'`;
    return await read(tx as unknown as Sql, prefix, tables, keys);
  }) as Map<string, string>;
}

async function read(
  sql: Sql,
  prefix: string,
  tables: { schema: string; table: string }[] | undefined,
  configured: Record<string, string[]>,
): Promise<Map<string, string>> {
  const list = tables ?? (await sql<{ schema: string; table: string; pk: boolean }[]>`
    SELECT n.nspname AS schema, c.relname AS table,
      EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS pk
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%'
    ORDER BY 1, 2`).filter((t) => t.pk || configured[`${t.schema}.${t.table}`]);
  const out = new Map<string, string>();
  for (const { schema, table } of list) {
    const cols = await sql<Col[]>`
      WITH RECURSIVE base(oid, top) AS (
        SELECT oid, oid FROM pg_type
        UNION ALL
        SELECT t.typbasetype, b.top FROM base b JOIN pg_type t ON t.oid = b.oid
        WHERE t.typtype = 'd'
      ), resolved AS (
        SELECT b.top, t.* FROM base b JOIN pg_type t ON t.oid = b.oid WHERE t.typtype <> 'd'
      )
      SELECT a.attname AS name, t.typname AS type, t.typtype AS typtype,
             et.typname AS elemtype, et.typtype AS elemtyptype,
             coalesce(array_position(string_to_array(i.indkey::text, ' ')::int2[], a.attnum), 0) AS key
      FROM pg_attribute a
      JOIN resolved t ON t.top = a.atttypid
      LEFT JOIN resolved et ON et.top = t.typelem AND t.typcategory = 'A'
      LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
      WHERE a.attrelid = ${`"${schema}"."${table}"`}::regclass AND a.attnum > 0
        AND NOT a.attisdropped
      ORDER BY a.attnum`;
    const conf = configured[`${schema}.${table}`];
    const pkCols = cols.filter((c) => c.key > 0).sort((a, b) => a.key - b.key);
    const keyCols = pkCols.length || !conf
      ? pkCols
      : conf.map((k) => cols.find((c) => c.name === k)!);
    // Concatenated rather than json_build_object(), which takes at most 50 columns.
    const obj = cols.map((c, i) =>
      `'${i ? "," : ""}' || to_json('${c.name.replaceAll("'", "''")}'::text)::text || ':' ||` +
      ` coalesce((${expr(c)})::text, 'null')`
    ).join(" || ");
    // A key part is the type's output text (as `format` prints it; `::text` trims bpchar).
    const keys = keyCols.map((c, i) => `format('%s', "${c.name.replaceAll('"', '""')}") AS k${i}`);
    const rows = await sql.unsafe(
      `SELECT '{' || ${obj || "''"} || '}' AS v${keys.length ? ", " : ""}${keys.join(", ")}
       FROM "${schema}"."${table}"`,
    );
    for (const r of rows) {
      const parts = keyCols.map((_, i) => String(r[`k${i}`]));
      // Compared structurally by the checker (json/jsonb print with spaces).
      out.set(expectedKey(prefix, schema, table, "public", parts), r.v as string);
    }
  }
  return out;
}
