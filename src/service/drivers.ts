/** The source drivers by `--driver` name. */
import { UsageError } from "../config/options.ts";
import type { SourceFactory, SourceOptions } from "../core/source.ts";
import { createPgSource } from "../pg/driver.ts";
import { createMysqlSource } from "../mysql/driver.ts";

export function createSource(driver: string, opts: SourceOptions): SourceFactory {
  switch (driver) {
    case "pgx":
      return createPgSource(opts);
    case "mysql":
      return createMysqlSource(opts);
    default:
      throw new UsageError(`unknown --driver ${driver} (expected pgx or mysql)`);
  }
}
