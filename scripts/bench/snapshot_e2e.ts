/**
 * An online snapshot (issue 14) of an `n`-row table while another table streams 1,000
 * single-row transactions a second: the snapshot's own rate, and that stream's latency
 * (commit sent → key on an etcd watch) during the snapshot beside the same stream with no
 * snapshot running, in the same run.
 */
import { Etcd3 } from "etcd3";
import type { PgServer } from "../../testing/postgres.ts";
import type { EtcdServer } from "../../testing/etcd.ts";
import { startSync } from "../../testing/sync.ts";
import { cpuSeconds, PAYLOAD } from "./lib.ts";
import { benchSql, type Latency, latencyRun, syncArgs, until, watchEtcd } from "./sync_e2e.ts";

/** The chunk sizes `--only=chunks` compares (1,000 is sync's default). */
export const CHUNK_SIZES = [250, 500, 1000, 2000, 4000];

export interface SnapshotBenchResult {
  rows: number;
  /** `--snapshot-chunk-rows` (undefined: sync's default). */
  chunkRows?: number;
  /** From the ALTER to the engine's "snapshot done", as sync logs it. */
  seconds: number;
  rowsPerSec: number;
  /** sync's CPU seconds per wall second over the snapshot. */
  syncCpu: number;
  /** The other table's stream: alone, then while the snapshot runs. */
  quiet: Latency;
  during: Latency;
}

export async function benchSnapshot(
  pg: PgServer,
  etcd: EtcdServer,
  rows: number,
  latencySeconds: number,
  log: (s: string) => void,
  chunkRows?: number,
): Promise<SnapshotBenchResult> {
  watchEtcd(etcd);
  await pg.psql(`DROP TABLE IF EXISTS snap_t, snap_lat, snap_lat2;
    CREATE TABLE snap_t (id int PRIMARY KEY, name text, payload text);
    CREATE TABLE snap_lat (id int PRIMARY KEY, name text, payload text);
    CREATE TABLE snap_lat2 (id int PRIMARY KEY, name text, payload text);
    INSERT INTO snap_t SELECT g, 'row ' || g, '${PAYLOAD}' FROM generate_series(1, ${rows}) g;`);
  const grpc = new Etcd3({ hosts: etcd.endpoint });
  const sql = benchSql(pg);
  const args = syncArgs(pg, etcd, "snap", "snap_t,snap_lat,snap_lat2");
  if (chunkRows) args.push(`--snapshot-chunk-rows=${chunkRows}`);
  const sync = startSync(args);
  try {
    await until("sync to stream", () => /msg=streaming/.test(sync.output()), 600_000, sync);
    const insert = (table: string) => (i: number) =>
      sql`INSERT INTO ${sql(table)} VALUES (${i}, ${"row " + i}, ${PAYLOAD})`;
    log(`snapshot: the other table's latency alone, ${latencySeconds} s`);
    const quiet = await latencyRun(
      grpc,
      "/snap/snap_lat/",
      latencySeconds,
      insert("snap_lat"),
      sync,
    );
    // Every row changes without a change streamed: the snapshot writes all of them.
    log(`snapshot: ALTER TABLE of ${rows} rows, the other table streaming meanwhile`);
    const cpu0 = cpuSeconds(sync.pid);
    const t0 = performance.now();
    await sql.unsafe(`ALTER TABLE snap_t ADD COLUMN extra int DEFAULT 1;
      UPDATE snap_t SET name = name WHERE id = 1`);
    const during = await latencyRun(
      grpc,
      "/snap/snap_lat2/",
      latencySeconds,
      insert("snap_lat2"),
      sync,
    );
    const done = () => /msg="snapshot done" table=snap_t/.test(sync.output());
    await until("the snapshot to end", done, 1_800_000, sync);
    const seconds = (performance.now() - t0) / 1000;
    const logged = /msg="snapshot done" table=snap_t rows=\d+ seconds=([\d.]+)/.exec(sync.output());
    const engineSeconds = logged ? Number(logged[1]) : seconds;
    if (engineSeconds < latencySeconds) {
      log(`snapshot: ended before the latency window (${engineSeconds} s): use more rows`);
    }
    return {
      rows,
      chunkRows,
      seconds: engineSeconds,
      rowsPerSec: rows / engineSeconds,
      syncCpu: (cpuSeconds(sync.pid) - cpu0) / seconds,
      quiet,
      during,
    };
  } finally {
    await sync.stop();
    await sql.end({ timeout: 1 });
    grpc.close();
  }
}
