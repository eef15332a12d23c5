/**
 * Table definitions recorded in the state key (design: Position and state), and the
 * comparison every resume makes between them and the source's catalogue: a change made
 * while sync was away is invisible to the stream, so it must be noticed here.
 */

/** One replicated table as the state records it; the map key is its key table name. */
export interface TableDefinition {
  /** The source's own identity of the table (PostgreSQL: OID; MySQL: `schema.table`). */
  id: string;
  /** Columns in table order, each `name:type` as the driver spells types. */
  columns: string[];
  /** Key column names, in key order. */
  key: string[];
  /** PostgreSQL's replica identity (d, n, f, i); absent where the source has none. */
  identity?: string;
}

export type TableDefinitions = Record<string, TableDefinition>;

export function sameDefinition(a: TableDefinition, b: TableDefinition): boolean {
  return a.id === b.id && a.identity === b.identity && sameList(a.columns, b.columns) &&
    sameList(a.key, b.key);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Why the tables the source has now cannot continue from the saved ones by streaming
 * (undefined when they can). A table that changed or vanished needs a snapshot (its keys
 * are stale); a new table needs one only when it holds rows, since rows written after the
 * saved position arrive through the stream anyway (`hasRows` tells).
 */
export async function definitionDrift(
  saved: TableDefinitions,
  current: TableDefinitions,
  hasRows: (table: string) => Promise<boolean>,
): Promise<string | undefined> {
  return (await driftedTables(saved, current, hasRows))?.reason;
}

/** As `definitionDrift`, with the tables that need a snapshot (or lose their keys). */
export async function driftedTables(
  saved: TableDefinitions,
  current: TableDefinitions,
  hasRows: (table: string) => Promise<boolean>,
): Promise<{ reason: string; tables: string[] } | undefined> {
  const changed: string[] = [];
  const vanished: string[] = [];
  const added: string[] = [];
  for (const [name, def] of Object.entries(saved)) {
    const now = current[name];
    if (!now) vanished.push(name);
    else if (!sameDefinition(def, now)) changed.push(name);
  }
  for (const name of Object.keys(current)) {
    if (!saved[name] && await hasRows(name)) added.push(name);
  }
  const parts = [
    changed.length ? `changed: ${list(changed)}` : "",
    vanished.length ? `gone or renamed: ${list(vanished)}` : "",
    added.length ? `new with rows: ${list(added)}` : "",
  ].filter(Boolean);
  if (!parts.length) return undefined;
  return {
    reason: `tables changed while sync was stopped (${parts.join("; ")})`,
    tables: [...changed, ...vanished, ...added],
  };
}

function list(names: string[]): string {
  return names.length > 5 ? `${names.slice(0, 5).join(", ")}, ...` : names.join(", ");
}
