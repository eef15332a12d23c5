/** The source drivers by `--driver` name. */
import { UsageError } from "../config/options.ts";
import type { SourceFactory, SourceOptions } from "../core/source.ts";
import { createPgSource } from "../pg/driver.ts";
import { createMysqlSource } from "../mysql/driver.ts";
import type { PgSourceOptions } from "../pg/options.ts";
import type { MysqlSourceOptions } from "../mysql/options.ts";

/** The factory for `driver`; `opts.driver` holds that driver's own options. */
export function createSource(driver: string, opts: SourceOptions): SourceFactory {
  switch (driver) {
    case "pgx":
      return createPgSource(opts as PgSourceOptions);
    case "mysql":
      return createMysqlSource(opts as MysqlSourceOptions);
    default:
      throw new UsageError(`unknown --driver ${driver} (expected pgx or mysql)`);
  }
}
