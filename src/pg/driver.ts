/**
 * The pgx driver: a PostgreSQL database as a source (design: Shape, Dump and resync).
 *
 * A replication connection creates the slot with an exported snapshot; the dump reads every
 * selected table inside that snapshot on `--dump-parallel` ordinary connections; streaming
 * then follows the slot with pgoutput and confirms only what etcd has committed.
 */
import type { PgSourceOptions } from "./options.ts";
import type { SourceFactory } from "../core/source.ts";
import { parsePgUrl } from "./url.ts";
import { pgConfigErrors } from "./connect.ts";
import { openSession } from "../core/errors.ts";
import { check, drop, inspect } from "./admin.ts";
import { PgSession } from "./session.ts";

export function createPgSource(opts: PgSourceOptions): SourceFactory {
  return {
    driver: "pgx",
    connect: async (signal) => {
      const url = parsePgUrl(opts.url);
      const s = new PgSession(opts, url);
      return await openSession(s, () => s.open(signal), pgConfigErrors(url));
    },
    check: () => check(opts),
    inspect: (state) => inspect(opts, state),
    drop: () => drop(opts),
  };
}
