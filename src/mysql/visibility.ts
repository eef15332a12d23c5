/**
 * MariaDB writes a transaction to the binlog, and sends it to replicas, before its commit
 * is visible to other sessions (semi-synchronous replication's AFTER_SYNC waits there for
 * an acknowledgement). A snapshot chunk read in that moment would write a row older than
 * the one the stream already applied, and no later event would mend it. So a chunk is read
 * in a consistent snapshot whose binlog position (`binlog_snapshot_*`) is checked against
 * the position the stream had passed when the table's snapshot began, and read again until
 * the snapshot includes it. MySQL tells no such position: there the read is not guarded.
 */
import type { MysqlConn } from "./conn.ts";

/** A place in the binlog. */
export interface BinlogSpot {
  file: string;
  offset: number;
}

/**
 * Give up waiting for a logged transaction to become visible after this long (semi-sync
 * waits 10 s by default). The error ends the attempt, and the next one connects the stream
 * and the chunk reader afresh, to one server (positions compare only within one).
 */
const PATIENCE_MS = 60_000;

/** Binlog files sort by their numeric suffix (`bin.000009` < `bin.000010`). */
function fileNumber(file: string): number {
  return Number(file.slice(file.lastIndexOf(".") + 1));
}

/** Whether `a` comes before `b` in the binlog. */
export function spotBefore(a: BinlogSpot, b: BinlogSpot): boolean {
  const fa = fileNumber(a.file), fb = fileNumber(b.file);
  if (fa !== fb) return fa < fb;
  return a.offset < b.offset;
}

/** The binlog position of the consistent snapshot open on `conn` (undefined on MySQL). */
export async function snapshotSpot(conn: MysqlConn): Promise<BinlogSpot | undefined> {
  const s = await conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'");
  const v = new Map(s.rows.map(([k, val]) => [k!.toLowerCase(), val ?? ""]));
  const file = v.get("binlog_snapshot_file");
  const offset = Number(v.get("binlog_snapshot_position"));
  return file && offset ? { file, offset } : undefined;
}

/** Thrown when a transaction the stream passed stays invisible past `PATIENCE_MS`. */
export class InvisibleCommitError extends Error {
  override name = "InvisibleCommitError";
}

/**
 * `read()` inside a consistent snapshot that sees every transaction up to `target` (none:
 * read as is). The server is asked again, after a short wait, while it does not.
 */
export async function readVisible<T>(
  conn: MysqlConn,
  target: BinlogSpot | undefined,
  read: () => Promise<T>,
): Promise<T> {
  if (!target) return await read();
  const deadline = Date.now() + PATIENCE_MS;
  for (let attempt = 0;; attempt++) {
    await conn.query("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
    let done = false;
    let spot: BinlogSpot | undefined;
    try {
      spot = await snapshotSpot(conn);
      if (!spot || !spotBefore(spot, target)) {
        const rows = await read();
        done = true;
        return rows;
      }
    } finally {
      if (done) await conn.query("COMMIT");
      else await conn.query("ROLLBACK").catch(() => {});
    }
    if (Date.now() > deadline) {
      throw new InvisibleCommitError(
        `a transaction logged before ${target.file}:${target.offset} is still not visible ` +
          `(the snapshot sees up to ${spot!.file}:${spot!.offset})`,
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(500, 10 * 2 ** attempt)));
  }
}
