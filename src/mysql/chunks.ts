/**
 * Chunk reads for online snapshots and the first dump (design: Snapshots): a table's rows
 * in key order after a cursor, compared by the server itself (its collations, its types),
 * rendered by values.ts exactly as the binlog path renders the same row. Tables read at
 * once (`--snapshot-parallel`) each hold a connection of their own for the read: each
 * chunk's consistent snapshot, and its binlog position, belong to one session.
 */
import { ConnPool } from "../core/conn_pool.ts";
import {
  type ChunkSource,
  CursorKeys,
  type SnapshotRow,
  UnpageableTableError,
} from "../core/snapshot_types.ts";
import { type MysqlConn, MysqlConnectionError, MysqlError } from "./conn.ts";
import { qualifiedName } from "./schema.ts";
import type { MysqlColumn, TableSchema } from "./types.ts";
import { readTextRow, textRowPlan } from "./text_rows.ts";
import { isBinary, NUMERIC } from "./values.ts";
import { type BinlogSpot, readVisible } from "./visibility.ts";

export interface MysqlChunkContext {
  /** A new connection (TLS and credentials as the session's). */
  connect(): Promise<MysqlConn>;
  /** The table behind a key table name as the server has it now; undefined: not replicated. */
  describe(conn: MysqlConn, table: string): Promise<TableSchema | undefined>;
  /** Where the stream is (none: no stream runs, nothing to wait for). */
  streamAt?(): BinlogSpot | undefined;
}

/** Types whose values compare as numbers: their cursor parts go into SQL bare. */
const BARE = NUMERIC;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
/** The table changed between its description and the read: describe it again. */
const RESHAPED = new Set([1054, /* unknown column */ 1412 /* definition changed */]);
const enc = new TextEncoder();

const ident = (n: string) => "`" + n.replaceAll("`", "``") + "`";

function hexOf(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** The column as the text protocol should send it: hex for bytes, BIT as its number. */
function selected(c: MysqlColumn): string {
  if (isBinary(c)) return `HEX(${ident(c.name)})`;
  if (c.dataType === "bit") return `CAST(${ident(c.name)} AS UNSIGNED)`;
  return ident(c.name);
}

/**
 * A cursor part as an SQL literal of its column, safe under any sql_mode and character
 * set: numbers bare (a BIGINT compared with a string goes through a double), bytes as hex,
 * ENUM and SET as their number (their order), text in hex with an introducer.
 */
function literal(c: MysqlColumn, v: string): string {
  if (isBinary(c)) {
    if (!/^([0-9a-f]{2})*$/i.test(v)) throw new Error(`bad cursor part for ${c.name}`);
    return `X'${v}'`;
  }
  if (BARE.has(c.dataType) && NUMBER.test(v)) return v;
  if (c.dataType === "enum") return String(c.members.indexOf(v) + 1);
  if (c.dataType === "set") {
    let n = 0n;
    for (const m of v ? v.split(",") : []) n |= 1n << BigInt(c.members.indexOf(m));
    return n.toString();
  }
  return `_utf8mb4 X'${hexOf(enc.encode(v))}'`;
}

/**
 * `(k1, k2) > (v1, v2)` spelled as ranges the optimizer reads from the key (MariaDB scans
 * the whole index for a row comparison): `k1 > v1 OR (k1 = v1 AND k2 > v2)`.
 */
function after(keys: string[], values: string[], last: ">" | "<="): string {
  const first = last === ">" ? ">" : "<";
  const ors: string[] = [];
  for (let i = 0; i < keys.length; i++) {
    const eq = keys.slice(0, i).map((k, j) => `${k} = ${values[j]}`);
    const op = i === keys.length - 1 ? last : first;
    ors.push([...eq, `${keys[i]} ${op} ${values[i]}`].join(" AND "));
  }
  return ors.length === 1 ? ors[0] : `(${ors.map((o) => `(${o})`).join(" OR ")})`;
}

/**
 * Up to `limit` rows of `t` after the cursor `from` (up to `until`, inclusive), in key
 * order; `limit` Infinity: all of them (no LIMIT). Cursor parts are the key values as
 * text: hex for binary columns, a FLOAT's exact double (its printed form rounds, and would
 * compare below the stored value).
 */
export async function readChunk(
  conn: MysqlConn,
  t: TableSchema,
  from: readonly string[] | null,
  limit: number,
  until?: readonly string[],
): Promise<SnapshotRow[]> {
  const columns = t.columns.map((c) => c.name);
  const keyCols = t.keyColumns.map((i) => t.columns[i]);
  const keys = keyCols.map((c) => ident(c.name));
  const lits = (v: readonly string[]) => keyCols.map((c, i) => literal(c, v[i]));
  const where: string[] = [];
  if (from) where.push(after(keys, lits(from), ">"));
  if (until) where.push(after(keys, lits(until), "<="));
  // FLOAT key parts: the exact value as a double, in extra columns after the row's.
  const floats = keyCols.map((c) => c.dataType === "float");
  const extra = keyCols.filter((_, i) => floats[i]).map((c) => `(${ident(c.name)} + 0e0)`);
  const sql = `SELECT ${[...t.columns.map(selected), ...extra].join(", ")} FROM ${
    qualifiedName(t.schema, t.table)
  }${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY ${keys.join(", ")}${
    limit === Infinity ? "" : ` LIMIT ${limit}`
  }`;
  const plan = textRowPlan(t, columns);
  const rows: SnapshotRow[] = [];
  const r = await conn.query(sql, (p) => rows.push(readTextRow(plan, p)));
  if (r.columns.length !== plan.width) {
    throw new MysqlConnectionError(
      `chunk of ${t.table}: ${r.columns.length} columns where ${plan.width} were selected`,
    );
  }
  return rows;
}

/** Sessions read in UTC: the binlog path renders TIMESTAMPs in UTC. */
export async function chunkSession(conn: MysqlConn): Promise<MysqlConn> {
  await conn.query("SET time_zone = '+00:00'");
  return conn;
}

export class MysqlChunks implements ChunkSource {
  readonly #c: MysqlChunkContext;
  readonly #pool: ConnPool<MysqlConn>;
  /** Per table, the stream's place when its snapshot began: chunks must see all before. */
  readonly #visibleFrom = new Map<string, BinlogSpot | undefined>();
  readonly #keys = new CursorKeys();

  constructor(c: MysqlChunkContext) {
    this.#c = c;
    this.#pool = new ConnPool(async () => await chunkSession(await c.connect()));
  }

  read(
    table: string,
    from: readonly string[] | null,
    limit: number,
    until?: readonly string[],
  ): Promise<SnapshotRow[] | null> {
    return this.#pool.use((conn) => this.#read(conn, table, from, limit, until));
  }

  async #read(
    conn: MysqlConn,
    table: string,
    from: readonly string[] | null,
    limit: number,
    until?: readonly string[],
  ): Promise<SnapshotRow[] | null> {
    if (from === null || !this.#visibleFrom.has(table)) {
      this.#visibleFrom.set(table, this.#c.streamAt?.());
    }
    const target = this.#visibleFrom.get(table);
    for (let attempt = 1;; attempt++) {
      const t = await this.#c.describe(conn, table);
      if (!t?.keyColumns.length) return null;
      if (limit !== Infinity && t.pageable === false) throw new UnpageableTableError(table);
      const key = t.keyColumns.map((i) => `${t.columns[i].name}:${t.columns[i].columnType}`);
      this.#keys.check(table, key.join(","), from);
      try {
        return await readVisible(conn, target, () => readChunk(conn, t, from, limit, until));
      } catch (e) {
        if (!(e instanceof MysqlError)) throw e;
        if (e.code === 1146 /* no such table */) return null;
        if (!RESHAPED.has(e.code) || attempt >= 3) throw e;
      }
    }
  }

  close(): void {
    this.#pool.close();
  }
}
