/** The publication the slot decodes with, kept in step with the table selection. */
import type { Log } from "../core/log.ts";
import { ident, literal, type PgConn } from "./conn.ts";
import { qualified, type TableInfo } from "./catalog.ts";

/**
 * The tables a `FOR TABLE` publication lists: those with a key. PostgreSQL refuses UPDATE
 * and DELETE on a published table without a replica identity, so keyless ones stay out.
 */
function published(tables: TableInfo[]): string[] {
  return tables.filter((t) => t.keyColumns.length).map(qualified);
}

export interface PublicationWanted {
  name: string;
  /** FOR ALL TABLES (no --tables or --exclude); otherwise FOR TABLE the selected ones. */
  all: boolean;
  log: Log;
  tables: () => Promise<TableInfo[]>;
}

/**
 * Create the publication when missing, or set its table list to the selection. True when
 * it changed: tables it did not publish before have rows the slot never decoded. A resume
 * that has the saved table definitions treats that as drift, table by table (tables that
 * left lose their keys, tables that joined with rows are snapshotted); without them it dumps.
 */
export async function ensurePublication(meta: PgConn, w: PublicationWanted): Promise<boolean> {
  const pub = w.name;
  const r = await meta.query(
    `SELECT puballtables FROM pg_publication WHERE pubname = ${literal(pub)}`,
  );
  if (!r.rows.length) {
    if (w.all) await meta.query(`CREATE PUBLICATION ${ident(pub)} FOR ALL TABLES`);
    else {
      const names = published(await w.tables());
      await meta.query(
        names.length
          ? `CREATE PUBLICATION ${ident(pub)} FOR TABLE ${names.join(", ")}`
          : `CREATE PUBLICATION ${ident(pub)}`,
      );
    }
    w.log.info("publication created", { publication: pub });
    return true;
  }
  if (w.all || r.rows[0][0] === "t") return false;
  const list = await w.tables();
  const have = await meta.query(
    `SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = ${literal(pub)}`,
  );
  const want = new Set(published(list));
  const got = new Set(have.rows.map(([s, t]) => qualified({ schema: s!, name: t! })));
  if (want.size === got.size && [...want].every((x) => got.has(x))) return false;
  await meta.query(
    want.size
      ? `ALTER PUBLICATION ${ident(pub)} SET TABLE ${[...want].join(", ")}`
      : `DROP PUBLICATION ${ident(pub)}; CREATE PUBLICATION ${ident(pub)}`,
  );
  w.log.info("publication tables updated", { publication: pub, tables: want.size });
  return true;
}
