/** Catalogue look-ups the driver needs: tables, their keys and columns, and type details. */
import type { PgConn } from "./conn.ts";
import { literal } from "./conn.ts";
import { BUILTIN_TYPES, type PgType, typeQuery, valueRenderer } from "./values.ts";
import type { TableFilter } from "../core/filter.ts";
import { keyTableName } from "../core/keys.ts";
import { configuredKey, type KeyConfig } from "../core/key_config.ts";
import { setting } from "../core/errors.ts";
import { parseLsn } from "./pgoutput.ts";
import type { SnapshotProgress } from "../core/snapshot_types.ts";

export interface TableInfo {
  oid: number;
  schema: string;
  name: string;
  /** Name used in keys (schema-qualified unless `public`). */
  keyName: string;
  columns: { name: string; typeOid: number; typmod: number }[];
  /** Names of the primary-key columns, in key order (empty: no primary key). */
  keyColumns: string[];
  /** Estimated rows (pg_class.reltuples; -1 or 0 when never analysed). */
  estimate: number;
  /** True when the key comes from `--keys` (the table has no primary key). */
  keyConfigured?: boolean;
  /**
   * The key is unique and never NULL, so keyset pagination reads every row: a primary key,
   * or a configured key that a unique index covers (see `COVERED_SQL`).
   */
  pageable: boolean;
  /** pg_class.relreplident: d(efault), n(othing), f(ull) or i(ndex). */
  replicaIdentity: string;
  /** REPLICA IDENTITY USING INDEX: the index and its columns (the old key a DELETE carries). */
  identityIndex?: { name: string; columns: string[] };
}

/**
 * Why the old keys of the table's DELETEs and UPDATEs cannot name its etcd keys (undefined
 * when they can): an identity index that leaves out a primary-key column.
 */
export function identityProblem(t: TableInfo): string | undefined {
  const idx = t.identityIndex;
  if (t.keyConfigured && t.replicaIdentity !== "f" && !idx) {
    const table = qualified(t);
    return `table ${table} has no primary key and REPLICA IDENTITY ${
      t.replicaIdentity === "n" ? "NOTHING" : "DEFAULT"
    }, so its deletes carry no ${setting("keys")} columns (${t.keyColumns.join(", ")}) and ` +
      "PostgreSQL " +
      `refuses them: run ALTER TABLE ${table} REPLICA IDENTITY FULL`;
  }
  if (!idx || !t.keyColumns.length) return undefined;
  const missing = t.keyColumns.filter((k) => !idx.columns.includes(k));
  if (!missing.length) return undefined;
  const table = qualified(t);
  const what = t.keyConfigured ? setting("keys") : "primary-key";
  return `table ${table} has REPLICA IDENTITY USING INDEX ${idx.name}, which leaves out ` +
    `${what} column${missing.length > 1 ? "s" : ""} ${missing.join(", ")}, so its deletes ` +
    `cannot be mapped to keys: run ALTER TABLE ${table} REPLICA IDENTITY ${
      t.keyConfigured ? "FULL" : "DEFAULT (or FULL)"
    }`;
}

/**
 * The tables the state records as held (their identity left out a key column): those still
 * so, with why, and those fixed meanwhile (or gone), which a snapshot reads again.
 */
export function heldAtResume(
  saved: SnapshotProgress | undefined,
  tables: TableInfo[],
): { held: Map<string, string>; fixed: string[] } {
  const held = new Map<string, string>();
  const fixed: string[] = [];
  for (const [name, s] of Object.entries(saved ?? {})) {
    if (s.state !== "held") continue;
    const t = tables.find((t) => t.keyName === name);
    const why = t && identityProblem(t);
    if (why) held.set(name, why);
    else fixed.push(name);
  }
  return { held, fixed };
}

/** Known types: the built-ins, plus whatever the catalogue was asked about. */
function unknownType(oid: number): PgType {
  return { oid, name: `unknown_${oid}`, typtype: "b", category: "U", elem: 0, base: 0, delim: "," };
}

export class Types {
  readonly #types = new Map<number, PgType>(BUILTIN_TYPES);

  /**
   * Make sure every type in `oids` (and the types they refer to) is known. Loads may run at
   * once (the stream, chunk reads): a type becomes known only with all it refers to (an
   * array's element, a domain's base), so no renderer is built from half of them.
   */
  async load(conn: PgConn, oids: Iterable<number>): Promise<void> {
    const found = new Map<number, PgType>();
    const known = (o: number) => this.#types.has(o) || found.has(o);
    let want = [...new Set(oids)].filter((o) => !known(o));
    while (want.length) {
      const r = await conn.query(typeQuery(want));
      const next: number[] = [];
      for (const [oid, name, typtype, category, elem, base, delim] of r.rows) {
        const t: PgType = {
          oid: Number(oid),
          name: name!,
          typtype: typtype!,
          category: category!,
          elem: Number(elem),
          base: Number(base),
          delim: delim ?? ",",
        };
        found.set(t.oid, t);
        for (const ref of [t.elem, t.base]) if (ref && !known(ref)) next.push(ref);
      }
      // Types the catalogue does not know render as text; never ask twice.
      for (const o of want) if (!known(o)) found.set(o, unknownType(o));
      want = [...new Set(next)];
    }
    for (const [oid, t] of found) this.#types.set(oid, t);
  }

  renderer(oid: number): (text: string) => string {
    return valueRenderer(oid, (o) => this.#types.get(o));
  }
}

function columnsSql(version: number, relid: string): string {
  const notGenerated = version >= 120000 ? "AND a.attgenerated = ''" : "";
  return `SELECT a.attname, a.atttypid, a.atttypmod FROM pg_attribute a
    WHERE a.attrelid = ${relid} AND a.attnum > 0 AND NOT a.attisdropped ${notGenerated}
    ORDER BY a.attnum`;
}

const KEY_SQL = (relid: string) =>
  `SELECT a.attname FROM pg_index i
    JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) ON true
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = ${relid} AND i.indisprimary ORDER BY k.ord`;

/** The columns of the index REPLICA IDENTITY USING INDEX names (none unless relreplident 'i'). */
const IDENTITY_SQL = (relid: string) =>
  `SELECT ic.relname, a.attname FROM pg_class c
    JOIN pg_index i ON i.indrelid = c.oid AND i.indisreplident
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN LATERAL unnest(i.indkey) k(attnum) ON true
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE c.oid = ${relid} AND c.relreplident = 'i'`;

/**
 * Whether a unique index makes the configured key columns `cols` unique: valid, not partial,
 * no expressions, every key column of it among `cols` and NOT NULL (a unique index admits
 * many NULLs, and a NULL never compares greater than a cursor, NULLS NOT DISTINCT or not).
 */
const COVERED_SQL = (relid: string, version: number, cols: string[]) =>
  `SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = ${relid} AND i.indisunique
    AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
    AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE k.ord <= ${version >= 110000 ? "i.indnkeyatts" : "i.indnatts"}
        AND (NOT a.attnotnull OR a.attname <> ALL (ARRAY[${
    cols.map(literal).join(", ")
  }]::text[]))))`;

/** Ordinary tables (and leaf partitions) selected by the filter, with keys and columns. */
export async function listTables(
  conn: PgConn,
  version: number,
  filter: TableFilter,
  keys: KeyConfig,
): Promise<TableInfo[]> {
  const r = await conn.query(
    `SELECT c.oid, n.nspname, c.relname, c.reltuples::bigint, c.relreplident FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
       AND c.relpersistence = 'p'
     ORDER BY n.nspname, c.relname`,
  );
  const out: TableInfo[] = [];
  for (const [oid, schema, name, estimate, identity] of r.rows) {
    if (!filter.matches(schema!, name!)) continue;
    out.push(
      await describe(conn, version, keys, {
        oid: Number(oid),
        schema: schema!,
        name: name!,
        estimate: Number(estimate),
        replicaIdentity: identity!,
      }),
    );
  }
  return out;
}

/** One table by OID (a pgoutput Relation's id). */
export async function tableByOid(
  conn: PgConn,
  version: number,
  oid: number,
  keys: KeyConfig,
): Promise<TableInfo | undefined> {
  const r = await conn.query(
    `SELECT n.nspname, c.relname, c.reltuples::bigint, c.relreplident FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ${oid}`,
  );
  if (!r.rows.length) return undefined;
  const [schema, name, estimate, identity] = r.rows[0];
  return describe(conn, version, keys, {
    oid,
    schema: schema!,
    name: name!,
    estimate: Number(estimate),
    replicaIdentity: identity!,
  });
}

async function describe(
  conn: PgConn,
  version: number,
  keyConfig: KeyConfig,
  t: { oid: number; schema: string; name: string; estimate: number; replicaIdentity: string },
): Promise<TableInfo> {
  const { oid, schema, name } = t;
  const cols = await conn.query(columnsSql(version, String(oid)));
  const keys = await conn.query(KEY_SQL(String(oid)));
  const identity = await conn.query(IDENTITY_SQL(String(oid)));
  const columns = cols.rows.map(([n, t, m]) => ({
    name: n!,
    typeOid: Number(t),
    typmod: Number(m),
  }));
  let keyColumns = keys.rows.map(([n]) => n!);
  // A configured key serves only a table without a primary key (the primary key wins).
  const configured = keyColumns.length ? undefined : configuredKey(
    keyConfig,
    schema,
    name,
    columns.map((c) => c.name),
  );
  if (configured) keyColumns = configured.map((i) => columns[i].name);
  const pageable = !configured ||
    (await conn.query(COVERED_SQL(String(oid), version, keyColumns))).rows[0][0] === "t";
  return {
    oid,
    schema,
    name,
    keyName: keyTableName(schema, name, "public"),
    columns,
    keyColumns,
    ...(configured ? { keyConfigured: true } : {}),
    pageable,
    replicaIdentity: t.replicaIdentity,
    estimate: t.estimate,
    ...(identity.rows.length
      ? { identityIndex: { name: identity.rows[0][0]!, columns: identity.rows.map((r) => r[1]!) } }
      : {}),
  };
}

/**
 * Which of the tables `oids` exist now, by key table name, and the server's WAL insert
 * position read after the catalogue (past the commit of any DROP or RENAME it shows).
 */
export async function catalogNow(
  conn: PgConn,
  oids: number[],
): Promise<{ lsn: bigint; present: Map<number, string> }> {
  const r = await conn.query(
    `SELECT c.oid, n.nspname, c.relname, pg_current_wal_insert_lsn()::text FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = ANY('{${oids.join(",")}}'::oid[])
     UNION ALL SELECT NULL, NULL, NULL, pg_current_wal_insert_lsn()::text`,
  );
  let lsn = 0n;
  const present = new Map<number, string>();
  for (const [oid, schema, name, at] of r.rows) {
    const l = parseLsn(at!);
    if (l > lsn) lsn = l;
    if (oid !== null) present.set(Number(oid), keyTableName(schema!, name!, "public"));
  }
  return { lsn, present };
}

/**
 * Name and columns as one string, the same whether built from the catalogue or from a
 * pgoutput Relation message: a change means the table was renamed or altered.
 */
export function relationSignature(
  schema: string,
  name: string,
  columns: readonly { name: string; typeOid: number; typmod: number }[],
): string {
  return `${schema}.${name}(` +
    columns.map((c) => `${c.name}:${c.typeOid}:${c.typmod}`).join(",") + ")";
}

/** `schema.table` quoted for SQL. */
export function qualified(t: { schema: string; name: string }): string {
  return `"${t.schema.replaceAll('"', '""')}"."${t.name.replaceAll('"', '""')}"`;
}

export { literal };

/** FOR ALL TABLES includes keyless tables, and PostgreSQL then refuses their UPDATE and DELETE. */
export const KEYLESS_ALL = {
  hint: "the publication (FOR ALL TABLES) makes PostgreSQL refuse their UPDATE and " +
    `DELETE: give each a primary key, or REPLICA IDENTITY FULL and ${setting("keys")}, ` +
    `or ${setting("exclude")} them`,
};

/** The tables to snapshot at a resume: those that drifted (unless held), and held ones fixed. */
export function withFixed(
  drift: { reason: string; tables: string[] } | undefined,
  fixed: string[],
  held: ReadonlyMap<string, string>,
) {
  // A table still held is snapshotted once its identity is fixed, not before.
  const tables = (drift?.tables ?? []).filter((t) => !held.has(t));
  const why = `replica identity carries the key again: ${fixed.join(", ")}`;
  if (!fixed.length) return tables.length ? { reason: drift!.reason, tables } : undefined;
  return {
    reason: drift && tables.length ? `${drift.reason}; ${why}` : why,
    tables: [...new Set([...tables, ...fixed])],
  };
}
