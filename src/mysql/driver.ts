/**
 * The mysql driver: a MySQL or MariaDB server as a source (design: Shape, Dump and resync).
 *
 * The first dump reads every table in chunks inside one consistent snapshot whose binlog
 * position MariaDB tells (MySQL: every table is snapshotted online instead); streaming then
 * reads the binlog from there over the replication protocol.
 */
import type { MysqlSourceOptions } from "./options.ts";
import type { SourceFactory } from "../core/source.ts";
import { parseMysqlUrl } from "./url.ts";
import { mysqlConfigErrors, serverIdClash } from "./connect.ts";
import { openSession } from "../core/errors.ts";
import { check, inspect } from "./admin.ts";
import { MysqlSession } from "./session.ts";

export function createMysqlSource(opts: MysqlSourceOptions): SourceFactory {
  return {
    driver: "mysql",
    connect: async (signal) => {
      const url = parseMysqlUrl(opts.url);
      const s = new MysqlSession(opts, url);
      return await openSession(s, async () => {
        await s.open(signal);
        const clash = serverIdClash(Number(s.identity.serverId), opts.driver.serverId);
        if (clash) throw clash;
      }, mysqlConfigErrors(url));
    },
    check: () => check(opts),
    inspect: (state) => inspect(opts, state),
  };
}
