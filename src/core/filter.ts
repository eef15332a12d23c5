/**
 * `--tables` / `--exclude`: glob patterns on `schema.table` (`*` any run, `?` one char).
 */

function globToRegExp(glob: string): RegExp {
  let re = "^";
  for (const ch of glob) {
    if (ch === "*") re += ".*";
    else if (ch === "?") re += ".";
    else re += ch.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(re + "$");
}

export class TableFilter {
  readonly #include: RegExp[];
  readonly #exclude: RegExp[];

  constructor(include: readonly string[], exclude: readonly string[]) {
    this.#include = include.map(globToRegExp);
    this.#exclude = exclude.map(globToRegExp);
  }

  /** True when `schema.table` is selected: matched by an include (or none given) and no exclude. */
  matches(schema: string, table: string): boolean {
    const name = `${schema}.${table}`;
    if (this.#include.length > 0 && !this.#include.some((r) => r.test(name))) return false;
    return !this.#exclude.some((r) => r.test(name));
  }

  /** True when at least one include pattern is set. */
  get hasIncludes(): boolean {
    return this.#include.length > 0;
  }

  /** True when no include and no exclude pattern is set (every table). */
  get all(): boolean {
    return this.#include.length === 0 && this.#exclude.length === 0;
  }
}
