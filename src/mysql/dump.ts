/**
 * The first full dump without mysqldump, locks or RELOAD (design: Snapshots): MariaDB's
 * `START TRANSACTION WITH CONSISTENT SNAPSHOT` gives a snapshot and the binlog position it
 * matches (`binlog_snapshot_*`), and every table is read in key-ordered chunks inside it
 * through the online snapshots' chunk reader (bounded memory). MySQL has no such position:
 * there the session plans a resume with every table snapshotted online instead.
 */
import type { Position } from "../core/change.ts";
import type { Log } from "../core/log.ts";
import type { DumpBatches } from "../core/stream.ts";
import { type MysqlConn, MysqlError } from "./conn.ts";
import { readChunk } from "./chunks.ts";
import { sqlString } from "./schema.ts";
import type { TableSchema } from "./types.ts";
import { snapshotSpot } from "./visibility.ts";

/**
 * Rows per chunk of the first dump (each chunk is one SELECT held in memory, the next read
 * meanwhile). 1,000, not 5,000: rows held that long outlive the young generation, and the
 * old generation's collections cost more; measured 300k-row dumps, 1,000 took ~15% less
 * CPU per row (500: no better, 2,000: between).
 */
export const DUMP_CHUNK_ROWS = 1000;

/** Whether the server tells a consistent snapshot's binlog position (MariaDB does). */
export async function hasSnapshotPosition(conn: MysqlConn): Promise<boolean> {
  return (await conn.query("SHOW STATUS LIKE 'binlog_snapshot_file'")).rows.length > 0;
}

/**
 * Open a read-only consistent snapshot on `conn` (its session already in UTC) and return
 * the binlog position (with its GTID on MariaDB) that it matches.
 */
export async function startSnapshot(conn: MysqlConn, mariadb: boolean): Promise<Position> {
  await conn.query("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  await conn.query("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
  const spot = await snapshotSpot(conn);
  if (!spot) throw new Error("the server gave no binlog position for the snapshot");
  const { file, offset } = spot;
  const position: Position = { file, offset };
  if (mariadb) {
    const g = await conn.query(`SELECT BINLOG_GTID_POS(${sqlString(file)}, ${offset})`);
    if (g.rows[0]?.[0]) position.gtid = g.rows[0][0];
  }
  return position;
}

export interface DumpTarget {
  table: TableSchema;
  /** The table's name in etcd keys. */
  name: string;
}

/**
 * Every row of `tables` as seen by the snapshot open on `conn`, in chunks, `done` after each
 * table whose rows were all handed out. A table whose
 * definition changed after the snapshot began (MySQL error 1412) is left out: its change
 * comes after the snapshot's position, and the stream snapshots it again there.
 */
export async function dumpTables(
  conn: MysqlConn,
  tables: readonly DumpTarget[],
  out: DumpBatches,
  signal: AbortSignal,
  log: Log,
  done?: (table: string, rows: number) => Promise<void>,
): Promise<void> {
  for (const { table, name } of tables) {
    let rows = 0;
    // A configured key no unique index covers may repeat: pages of it could skip rows.
    const limit = table.pageable === false ? Infinity : DUMP_CHUNK_ROWS;
    if (limit === Infinity) {
      log.warn("table read whole: no unique index covers its configured key columns", {
        table: name,
      });
    }
    // The next chunk is read while this one goes to etcd.
    let next = readChunk(conn, table, null, limit);
    try {
      for (;;) {
        if (signal.aborted) throw new Error("dump aborted");
        const chunk = await next;
        const full = chunk.length === limit;
        if (full) {
          next = readChunk(conn, table, chunk[chunk.length - 1].after, limit);
          next.catch(() => {}); // awaited above, unless this table's rows fail to go out
        }
        for (const r of chunk) {
          const sent = out.put(name, r.key, r.columns, r.cells);
          if (sent) await sent;
        }
        rows += chunk.length;
        if (!full) break;
      }
    } catch (e) {
      if (!(e instanceof MysqlError && e.code === 1412)) throw e;
      log.info("table changed during the dump: snapshotted from the stream", { table: name });
      continue;
    }
    log.debug("table dumped", { table: name, rows });
    // Its rows handed out before it counts as done (a dump cut short resumes after it).
    await out.flush();
    if (!signal.aborted) await done?.(name, rows);
  }
}
