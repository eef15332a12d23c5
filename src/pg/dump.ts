/** Tables' rows read inside the dump's snapshot, rendered as the stream renders them. */
import type { BatchOutput } from "../core/source.ts";
import { DumpBatches } from "../core/stream.ts";
import { qualified, type TableInfo } from "./catalog.ts";
import { ident, type PgConn } from "./conn.ts";
import { decodeDataRow, rowPlan } from "./row_change.ts";

/** Read `t` whole on `conn` (a snapshot transaction); returns the rows read. */
export async function dumpTable(
  conn: PgConn,
  t: TableInfo,
  renderer: (typeOid: number) => (text: string) => string,
  out: BatchOutput,
  signal: AbortSignal,
): Promise<number> {
  const columns = t.columns.map((c) => c.name);
  const plan = rowPlan(
    t.columns.map((c) => renderer(c.typeOid)),
    t.keyColumns.map((k) => columns.indexOf(k)),
  );
  const batches = new DumpBatches(out, signal);
  let rows = 0;
  // Not async: a row that sends no batch costs the reader no await.
  await conn.queryEach(
    `SELECT ${columns.map(ident).join(", ")} FROM ${qualified(t)}`,
    (body) => {
      const cells = new Array<string>(columns.length);
      const key = decodeDataRow(body, plan, cells);
      rows++;
      return batches.put(t.keyName, key, columns, cells);
    },
  );
  await batches.flush();
  return rows;
}

/**
 * `tables` read on `conns` at once (each connection in the same snapshot), largest first;
 * `done` after each table whose rows were all handed out.
 */
export async function dumpTables(
  conns: PgConn[],
  tables: TableInfo[],
  renderer: (typeOid: number) => (text: string) => string,
  out: BatchOutput,
  signal: AbortSignal,
  done: (table: string, rows: number) => Promise<void>,
): Promise<void> {
  const queue = [...tables].sort((a, b) => b.estimate - a.estimate);
  const work = async (conn: PgConn) => {
    for (let t = queue.shift(); t && !signal.aborted; t = queue.shift()) {
      const rows = await dumpTable(conn, t, renderer, out, signal);
      if (!signal.aborted) await done(t.keyName, rows);
    }
  };
  await Promise.all(conns.map(work));
}
