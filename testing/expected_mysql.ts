/**
 * The checker's MySQL side: every row of the replicated tables, read with SQL and rendered
 * by the test's own rules (design: Values), independent of sync's renderer; keys come from
 * checker.ts, not from src/, and values are compared there structurally. Nothing read
 * depends on the session's time zone (TIMESTAMPs are read as UNIX_TIMESTAMP and written in
 * UTC here), so no session setting has to reach the pooled connection that runs the query.
 */
import { expectedKey } from "./checker.ts";

export type Query = (sql: string) => Promise<Record<string, unknown>[]>;

interface Col {
  name: string;
  dataType: string;
  columnType: string;
  charset: string | null;
  /** Fractional-second digits of a temporal column. */
  fsp: number;
  key: number;
  json: boolean;
}

const q = (n: string) => "`" + n.replaceAll("`", "``") + "`";
const BINARY = new Set([
  "binary",
  "varbinary",
  "tinyblob",
  "blob",
  "mediumblob",
  "longblob",
  "geometry",
  "point",
  "linestring",
  "polygon",
  "multipoint",
  "multilinestring",
  "multipolygon",
  "geometrycollection",
]);
const NUMERIC = new Set([
  "tinyint",
  "smallint",
  "mediumint",
  "int",
  "bigint",
  "decimal",
  "float",
  "double",
  "year",
]);

/**
 * SQL giving the column as text (hex for binary; for TIMESTAMP its text, which is only read
 * for zero dates, then `|`, then the seconds since the epoch); rendered by `text`/`fragment`.
 */
function textExpr(c: Col): string {
  const n = q(c.name);
  if (BINARY.has(c.dataType)) return `HEX(${n})`;
  if (c.dataType === "bit") return `CAST(${n} + 0 AS CHAR)`;
  if (c.dataType === "timestamp") {
    return `CONCAT(CAST(${n} AS CHAR), '|', CAST(UNIX_TIMESTAMP(${n}) AS CHAR))`;
  }
  return `CONVERT(CAST(${n} AS CHAR) USING utf8mb4)`;
}

/**
 * The column's text as the server prints it in UTC (TIMESTAMP: from its epoch seconds, with
 * the column's fractional digits; a zero date stays as printed).
 */
function text(c: Col, v: string): string {
  if (c.dataType !== "timestamp") return v;
  const [printed, epoch] = v.split("|");
  if (/^0+(\.0*)?$/.test(epoch)) return printed; // zero date (1970-01-01 00:00:00 is out of range)
  const [secs, frac = ""] = epoch.split(".");
  const day = new Date(Number(secs) * 1000).toISOString().slice(0, 19).replace("T", " ");
  return c.fsp ? `${day}.${frac.padEnd(c.fsp, "0").slice(0, c.fsp)}` : day;
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function fragment(c: Col, v: string | null): string {
  if (v === null) return "null";
  if (BINARY.has(c.dataType)) {
    return JSON.stringify((hexBytes(v) as Uint8Array & { toBase64(): string }).toBase64());
  }
  if (c.dataType === "bit") return BigInt(v) > 2n ** 53n ? JSON.stringify(v) : v;
  if (c.dataType === "year" && v === "0000") return "0";
  if (NUMERIC.has(c.dataType)) {
    return /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/.test(v) ? v : JSON.stringify(v);
  }
  if (c.json) return v; // compared structurally by the checker
  if (c.dataType === "set") return JSON.stringify(v === "" ? [] : v.split(","));
  if (c.dataType === "datetime") {
    return JSON.stringify(v.startsWith("0000-00-00") ? v : v.replace(" ", "T"));
  }
  if (c.dataType === "timestamp") {
    return JSON.stringify(v.startsWith("0000-00-00") ? v : v.replace(" ", "T") + "Z");
  }
  return JSON.stringify(v);
}

/** Binary key parts are percent-encoded from their bytes, text parts from UTF-8. */
function keyValue(c: Col, v: string): string | Uint8Array {
  return BINARY.has(c.dataType) ? hexBytes(v) : v;
}

/**
 * Expected etcd contents (key → JSON, for `firstDifference`) for every keyed table of
 * `databases`; keys are qualified unless the table is in `defaultDb`.
 */
export async function expectedFromMysql(
  query: Query,
  prefix: string,
  databases: string[],
  defaultDb: string,
  /** `--keys`: key columns of tables without a primary key, by `db.table`. */
  configured: Record<string, string[]> = {},
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const db of databases) {
    const cols = await query(
      `SELECT c.TABLE_NAME AS t, c.COLUMN_NAME AS name, LOWER(c.DATA_TYPE) AS dataType,
              LOWER(c.COLUMN_TYPE) AS columnType, c.CHARACTER_SET_NAME AS charset,
              COALESCE(c.DATETIME_PRECISION, 0) AS fsp,
              COALESCE(k.ORDINAL_POSITION, 0) AS k,
              EXISTS(SELECT 1 FROM information_schema.CHECK_CONSTRAINTS x
                WHERE x.CONSTRAINT_SCHEMA = c.TABLE_SCHEMA AND x.TABLE_NAME = c.TABLE_NAME
                  AND x.CHECK_CLAUSE = CONCAT('json_valid(\`', c.COLUMN_NAME, '\`)')) AS j
       FROM information_schema.COLUMNS c
       JOIN information_schema.TABLES tb ON tb.TABLE_SCHEMA = c.TABLE_SCHEMA
         AND tb.TABLE_NAME = c.TABLE_NAME AND tb.TABLE_TYPE = 'BASE TABLE'
       LEFT JOIN information_schema.KEY_COLUMN_USAGE k ON k.TABLE_SCHEMA = c.TABLE_SCHEMA
         AND k.TABLE_NAME = c.TABLE_NAME AND k.COLUMN_NAME = c.COLUMN_NAME
         AND k.CONSTRAINT_NAME = 'PRIMARY'
       WHERE c.TABLE_SCHEMA = '${db}' ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION`,
    );
    const tables = new Map<string, Col[]>();
    for (const r of cols) {
      const t = String(r.t);
      if (!tables.has(t)) tables.set(t, []);
      tables.get(t)!.push({
        name: String(r.name),
        dataType: String(r.dataType),
        columnType: String(r.columnType),
        charset: r.charset === null ? null : String(r.charset),
        fsp: Number(r.fsp),
        key: Number(r.k),
        json: String(r.dataType) === "json" || Number(r.j) === 1,
      });
    }
    for (const [table, list] of tables) {
      const pk = list.filter((c) => c.key > 0).sort((a, b) => a.key - b.key);
      const conf = configured[`${db}.${table}`];
      const keys = pk.length || !conf ? pk : conf.map((k) => list.find((c) => c.name === k)!);
      if (!keys.length) continue;
      const sel = list.map((c, i) => `${textExpr(c)} AS c${i}`).join(", ");
      const rows = await query(`SELECT ${sel} FROM ${q(db)}.${q(table)}`);
      for (const r of rows) {
        const vals = list.map((c, i) => (r[`c${i}`] === null ? null : text(c, String(r[`c${i}`]))));
        const json = "{" +
          list.map((c, i) => `${JSON.stringify(c.name)}:${fragment(c, vals[i])}`).join(",") +
          "}";
        const parts = keys.map((k) => keyValue(k, vals[list.indexOf(k)]!));
        out.set(expectedKey(prefix, db, table, defaultDb, parts), json);
      }
    }
  }
  return out;
}
