/**
 * Chunk reads for online snapshots (design: Snapshots): a table's rows in key order after
 * a cursor, compared by PostgreSQL itself (its collations, its types), rendered as the
 * stream renders them. Tables read at once (`--snapshot-parallel`) each hold a connection
 * of their own for the read: one connection interleaves their transactions and replies.
 */
import type { PgSourceOptions } from "./options.ts";
import { splitKeyTableName } from "../core/keys.ts";
import { ConnPool } from "../core/conn_pool.ts";
import {
  type ChunkSource,
  CursorKeys,
  type SnapshotRow,
  UnpageableTableError,
} from "../core/snapshot_types.ts";
import { qualified, tableByOid, type TableInfo, type Types } from "./catalog.ts";
import { ident, type PgConn } from "./conn.ts";
import { PgError } from "./protocol.ts";
import { decodeDataRow, rowPlan } from "./row_change.ts";
import { missesCommitted, type RecentXids } from "./visibility.ts";

export interface PgChunkContext {
  connect(): Promise<PgConn>;
  version: number;
  opts: PgSourceOptions;
  types: Types;
  /** Transactions the stream has seen commit: a read must see them all. */
  committed?: RecentXids;
  /** The key columns a read found: the table's etcd keys take them from its snapshot on. */
  keyRead?(table: string, key: readonly string[]): void;
}

/** How long a read waits for transactions the stream passed to become visible. */
const VISIBLE_WITHIN_MS = 60_000;

/** A text value as a literal whatever `standard_conforming_strings` says. */
function escaped(v: string): string {
  return `E'${v.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

/** `(a, b)` and a row of literals: PostgreSQL resolves the literals to the columns' types. */
function tuple(items: readonly string[]): string {
  return items.length === 1 ? items[0] : `(${items.join(", ")})`;
}

export class PgChunks implements ChunkSource {
  readonly #c: PgChunkContext;
  readonly #pool: ConnPool<PgConn>;
  readonly #keys = new CursorKeys();

  constructor(c: PgChunkContext) {
    this.#c = c;
    this.#pool = new ConnPool(() => c.connect());
  }

  read(
    table: string,
    after: readonly string[] | null,
    limit: number,
    until?: readonly string[],
  ): Promise<SnapshotRow[] | null> {
    return this.#pool.use((conn) => this.#read(conn, table, after, limit, until));
  }

  async #read(
    conn: PgConn,
    table: string,
    after: readonly string[] | null,
    limit: number,
    until?: readonly string[],
  ): Promise<SnapshotRow[] | null> {
    const t = await this.#describe(conn, table);
    if (!t) return null;
    if (limit !== Infinity && !t.pageable) throw new UnpageableTableError(table);
    const types = new Map(t.columns.map((c) => [c.name, c.typeOid]));
    this.#keys.check(table, t.keyColumns.map((k) => `${k}:${types.get(k)}`).join(","), after);
    this.#c.keyRead?.(table, t.keyColumns);
    const columns = t.columns.map((c) => c.name);
    const plan = rowPlan(
      t.columns.map((c) => this.#c.types.renderer(c.typeOid)),
      t.keyColumns.map((k) => columns.indexOf(k)),
    );
    const key = tuple(t.keyColumns.map(ident));
    const where: string[] = [];
    if (after) where.push(`${key} > ${tuple(after.map(escaped))}`);
    if (until) where.push(`${key} <= ${tuple(until.map(escaped))}`);
    const sql = `SELECT ${columns.map(ident).join(", ")} FROM ${qualified(t)}` +
      (where.length ? ` WHERE ${where.join(" AND ")}` : "") +
      ` ORDER BY ${t.keyColumns.map(ident).join(", ")}` +
      (limit === Infinity ? "" : ` LIMIT ${limit}`);
    const out: SnapshotRow[] = [];
    await this.#visibleSnapshot(conn);
    try {
      await conn.queryEach(sql, (body) => {
        const cells = new Array<string>(columns.length);
        const parts = new Array<string>(t.keyColumns.length);
        out.push({ key: decodeDataRow(body, plan, cells, parts), after: parts, columns, cells });
      });
    } catch (e) {
      // Dropped or renamed since it was described (42P01: undefined table): gone.
      if (e instanceof PgError && e.code === "42P01") return null;
      throw e;
    } finally {
      await conn.query("COMMIT");
    }
    return out;
  }

  /** Open a read-only snapshot that sees every transaction the stream has passed. */
  async #visibleSnapshot(conn: PgConn): Promise<void> {
    const deadline = Date.now() + VISIBLE_WITHIN_MS;
    for (;;) {
      await conn.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const snap = (await conn.query("SELECT txid_current_snapshot()::text")).rows[0][0]!;
      if (!this.#c.committed || !missesCommitted(snap, this.#c.committed)) return;
      await conn.query("ROLLBACK");
      if (Date.now() > deadline) {
        throw new Error("a transaction the stream passed is still not visible after 60 s");
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The table as the catalogue has it now; undefined when it is gone or not replicated. */
  async #describe(conn: PgConn, table: string): Promise<TableInfo | undefined> {
    const [schema, name] = splitKeyTableName(table, "public");
    if (!this.#c.opts.filter.matches(schema, name)) return undefined;
    const r = await conn.query(
      `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'r' AND n.nspname = ${escaped(schema)} AND c.relname = ${escaped(name)}`,
    );
    if (!r.rows.length) return undefined;
    const t = await tableByOid(conn, this.#c.version, Number(r.rows[0][0]), this.#c.opts.keys);
    if (!t?.keyColumns.length) return undefined;
    await this.#c.types.load(conn, t.columns.map((c) => c.typeOid));
    return t;
  }

  close(): void {
    this.#pool.close();
  }
}
