/** Public API of sync. */
export * from "./src/core/change.ts";
export * from "./src/core/keys.ts";
export * from "./src/core/json.ts";
export * from "./src/core/source.ts";
export * from "./src/core/filter.ts";
export * from "./src/core/key_config.ts";
export * from "./src/core/log.ts";
export { EtcdClient, EtcdError, EtcdUnavailableError } from "./src/etcd/client.ts";
export { EtcdSink, FencedError, OversizeError } from "./src/etcd/sink.ts";
export { createPgSource } from "./src/pg/driver.ts";
export { createMysqlSource } from "./src/mysql/driver.ts";
export {
  decodePgOutput,
  formatLsn,
  parseLsn,
  PgOutputError,
  type PgOutputMessage,
} from "./src/pg/pgoutput.ts";
export { valueRenderer } from "./src/pg/values.ts";
export { BinlogDecoder, BinlogError, type BinlogEvent } from "./src/mysql/binlog.ts";
export { decodeRowsEvent } from "./src/mysql/rows.ts";
export { runService } from "./src/service/run.ts";
export { SnapshotEngine, type SnapshotSettings } from "./src/core/snapshot.ts";
export type {
  ChunkSource,
  SnapshotProgress,
  SnapshotRow,
  SnapshotStore,
  TableSnapshot,
} from "./src/core/snapshot_types.ts";
