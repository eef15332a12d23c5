import { ConfigError, setting } from "./errors.ts";

/**
 * `--keys`: key columns for tables without a primary key (design: Keys), as entries
 * `schema.table=col` or `schema.table=col1+col2` (composite, in key order). For MySQL the
 * schema is the database.
 */

const KEYS = setting("keys");

export class KeyConfig {
  readonly #keys = new Map<string, string[]>();

  /** Throws an Error naming the bad entry (the CLI makes it a usage error). */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const m = /^([^.=\s]+)\.([^=\s]+)\s*=\s*([^=]+)$/.exec(entry.trim());
      const columns = m?.[3].split("+").map((c) => c.trim());
      if (!m || !columns || columns.some((c) => !c)) {
        throw new Error(
          `invalid value ${JSON.stringify(entry)} in ${KEYS}: expected schema.table=column ` +
            "(composite: schema.table=col1+col2)",
        );
      }
      const name = `${m[1]}.${m[2]}`;
      if (this.#keys.has(name)) throw new Error(`${KEYS} names ${name} twice`);
      if (new Set(columns).size !== columns.length) {
        throw new Error(`${KEYS} ${name} repeats a column`);
      }
      this.#keys.set(name, columns);
    }
  }

  /** The configured key columns of `schema.table`, in key order. */
  columnsFor(schema: string, table: string): string[] | undefined {
    return this.#keys.get(`${schema}.${table}`);
  }

  /** Every configured `schema.table`. */
  get tables(): string[] {
    return [...this.#keys.keys()];
  }
}

/**
 * The column positions of `t`'s key: its primary key, else the configured columns. Throws
 * (with `t`'s name and the columns it lacks) when a configured column does not exist.
 */
export function configuredKey(
  keys: KeyConfig,
  schema: string,
  table: string,
  columnNames: readonly string[],
): number[] | undefined {
  const cols = keys.columnsFor(schema, table);
  if (!cols) return undefined;
  const idx = cols.map((c) => columnNames.indexOf(c));
  const missing = cols.filter((_, i) => idx[i] < 0);
  if (missing.length) {
    throw new ConfigError(
      `${KEYS} ${schema}.${table}: the table has no column ${missing.join(", ")}`,
    );
  }
  return idx;
}
