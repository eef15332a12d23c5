/** The mysql driver's own options (beside the ones every driver gets). */
import type { SourceOptions } from "../core/source.ts";

export interface MysqlOptions {
  /** The server id sync registers with as a replica. */
  serverId: number;
}

export type MysqlSourceOptions = SourceOptions<MysqlOptions>;
