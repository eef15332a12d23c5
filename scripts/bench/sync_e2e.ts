/**
 * sync as its own process (testing/sync.ts), PostgreSQL → etcd:
 * - dump: rows/s of the `n`-row table, and the process's peak RSS (VmHWM) while dumping;
 * - streaming: changes/s sustained from commit to etcd (transactions of 10 rows), latency
 *   from the commit being sent to the key arriving on an etcd watch at 1,000 tx/s (the
 *   commit's own round trip reported beside it), and peak RSS while streaming one `n`-row
 *   transaction.
 * CPU seconds of sync and etcd are read from /proc for each phase: on 2 cores they say which
 * process the throughput waits for.
 */
import postgres from "postgres";
import { Etcd3 } from "etcd3";
import type { PgServer } from "../../testing/postgres.ts";
import type { EtcdServer } from "../../testing/etcd.ts";
import { startSync } from "../../testing/sync.ts";
import type { Spawned } from "../../testing/process.ts";
import { childCpuSeconds, cpuSeconds, memoryOf, PAYLOAD, rowValue, scaled } from "./lib.ts";
import { etcd3Rate } from "./etcd.ts";
import { type Latency, latencyRun } from "./latency.ts";
import { sleep, until, watchEtcd } from "./waits.ts";

export { type Latency, latencyRun, sleep, until, watchEtcd };

/**
 * Keys of the etcd3 baseline measured on the phase's own etcd right before and after it: the
 * machine is shared, and its speed drifts over the minutes between section 1 and a phase.
 */
export const ADJACENT_KEYS = scaled(100_000);

export interface Phase {
  /** Mean RSS of sync over the first and the last tenth of the phase, and its highest. */
  rssFirstTenthMB: number;
  rssLastTenthMB: number;
  rssMaxMB: number;
  seconds: number;
  perSec: number;
  /** CPU seconds per wall second (1.0 = one core busy). */
  syncCpu: number;
  etcdCpu: number;
  /** CPU seconds over the phase: sync's own, its ended children's (mysqldump), etcd's. */
  syncCpuSeconds: number;
  childCpuSeconds: number;
  etcdCpuSeconds: number;
}

export interface DumpResult extends Phase {
  rows: number;
  /** etcd3's keys/s with 4 in flight (the dump's count) on this etcd just before and after. */
  adjacent4: number[];
  peakMB: number;
  idleMB: number;
}

/**
 * Every row from..to under `prefix` holds exactly `rowValue(i)`, and nothing else is there
 * (read in pages: a million keys are not held at once).
 */
export async function verifyRows(grpc: Etcd3, prefix: string, from: number, to: number) {
  const seen = new Uint8Array(to + 1);
  let start = prefix;
  let count = 0;
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  for (;;) {
    const r = await grpc.getAll().inRange({ start, end }).sort("Key", "Ascend").limit(10_000)
      .exec();
    for (const kv of r.kvs) {
      const key = kv.key.toString();
      const i = Number(key.slice(prefix.length));
      if (!(i >= from && i <= to) || seen[i]) throw new Error(`unexpected key ${key}`);
      const v = kv.value.toString();
      if (v !== rowValue(i)) throw new Error(`${key} holds ${v}, not ${rowValue(i)}`);
      seen[i] = 1;
      count++;
    }
    if (!r.more || !r.kvs.length) break;
    start = r.kvs[r.kvs.length - 1].key.toString() + "\0";
  }
  if (count !== to - from + 1) throw new Error(`${count} of ${to - from + 1} rows under ${prefix}`);
}

export interface StreamResult {
  sustained: Phase & { changes: number; sourceSeconds: number };
  latency: Latency;
  /** Baseline: etcd3 puts at the same rate, from the put being sent to its watch event. */
  etcdLatency?: Latency;
  /** The same through the JSON gateway sync uses (one-put transactions, `fetch`). */
  gatewayLatency?: Latency;
  bigTxn: Phase & { rows: number; peakBeforeMB: number; peakMB: number };
  idleMB: number;
  /** etcd3's serial keys/s on this etcd just before the sustained phase and after the big one. */
  adjacentSerial: number[];
}

/** Measure wall time and the CPU sync and etcd used meanwhile. */
export async function phase(
  sync: Spawned,
  etcd: EtcdServer,
  work: number,
  f: () => Promise<void>,
): Promise<Phase> {
  const c0 = cpuSeconds(sync.pid), e0 = cpuSeconds(etcd.proc.pid), t0 = performance.now();
  const k0 = childCpuSeconds(sync.pid);
  // RSS over the phase: whether it grows with the work done or stays level.
  const rss: number[] = [];
  const sampler = setInterval(() => {
    try {
      rss.push(memoryOf(sync.pid).rssMB);
    } catch { /* exited */ }
  }, 250);
  try {
    await f();
  } finally {
    clearInterval(sampler);
  }
  const seconds = (performance.now() - t0) / 1000;
  const syncCpuSeconds = cpuSeconds(sync.pid) - c0, etcdCpuSeconds = cpuSeconds(etcd.proc.pid) - e0;
  const tenth = Math.max(1, Math.floor(rss.length / 10));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return {
    rssFirstTenthMB: mean(rss.slice(0, tenth)),
    rssLastTenthMB: mean(rss.slice(-tenth)),
    rssMaxMB: Math.max(...rss, 0),
    seconds,
    perSec: work / seconds,
    syncCpu: syncCpuSeconds / seconds,
    etcdCpu: etcdCpuSeconds / seconds,
    syncCpuSeconds,
    childCpuSeconds: childCpuSeconds(sync.pid) - k0,
    etcdCpuSeconds,
  };
}

/**
 * A client for the latency runs. The test server runs with synchronous_commit off, where the
 * WAL writer flushes (and the walsender sends) commits only every wal_writer_delay (200 ms):
 * a latency floor that is the server's setting, not sync's; these sessions turn it on.
 */
export function benchSql(pg: PgServer) {
  return postgres({
    host: "127.0.0.1",
    port: pg.port,
    user: "postgres",
    database: "postgres",
    max: 4,
    onnotice: () => {},
    connection: { synchronous_commit: "on" },
  });
}

export function syncArgs(pg: PgServer, etcd: EtcdServer, name: string, tables: string): string[] {
  return [
    "--driver=pgx",
    `--db-url=${pg.url}`,
    `--etcd-endpoints=${etcd.endpoint}`,
    `--etcd-prefix=/${name}`,
    `--tables=${tables.split(",").map((t) => `public.${t}`).join(",")}`,
    `--slot=bench_${name}`,
    `--publication=bench_${name}`,
    `--source-id=${name}`,
  ];
}

/** Dump `table` (n rows, already there) into etcd under /dump. */
export async function benchDump(
  pg: PgServer,
  etcd: EtcdServer,
  table: string,
  n: number,
): Promise<DumpResult> {
  watchEtcd(etcd);
  const grpc = new Etcd3({ hosts: etcd.endpoint });
  const adjacent4 = [await etcd3Rate(grpc, ADJACENT_KEYS, 4, "/adjacent1")];
  const sync = startSync(syncArgs(pg, etcd, "dump", table));
  try {
    await until("sync to start its dump", () => /dump starting/.test(sync.output()), 60_000, sync);
    const idleMB = memoryOf(sync.pid).rssMB;
    const p = await phase(sync, etcd, n, async () => {
      await until("the dump", () => /dump done/.test(sync.output()), 600_000, sync);
    });
    adjacent4.push(await etcd3Rate(grpc, ADJACENT_KEYS, 4, "/adjacent2"));
    const peakMB = memoryOf(sync.pid).peakMB;
    // Nothing lost: every row's value, not just how many keys.
    await verifyRows(grpc, `/dump/${table}/`, 1, n);
    return { ...p, rows: n, peakMB, idleMB, adjacent4 };
  } finally {
    await sync.stop();
    await grpc.delete().prefix(`/dump/`);
    grpc.close();
    await pg.sql`SELECT pg_drop_replication_slot('bench_dump')`.catch(() => {});
  }
}

/** Stream into etcd under /stream: sustained rate, latency at 1,000 tx/s, one big transaction. */
export async function benchStream(
  pg: PgServer,
  etcd: EtcdServer,
  sustainedChanges: number,
  bigRows: number,
  latencySeconds: number,
  log: (s: string) => void,
): Promise<StreamResult> {
  watchEtcd(etcd);
  await pg.psql(`DROP TABLE IF EXISTS stream_t, lat_t;
    CREATE TABLE stream_t (id int PRIMARY KEY, name text, payload text);
    CREATE TABLE lat_t (id int PRIMARY KEY, name text, payload text);`);
  const grpc = new Etcd3({ hosts: etcd.endpoint });
  const sql = benchSql(pg);
  const sync = startSync(syncArgs(pg, etcd, "stream", "stream_t,lat_t"));
  const visible = (key: string) => async () => (await grpc.get(key).string()) !== null;
  try {
    await until("sync to stream", () => /msg=streaming/.test(sync.output()), 60_000, sync);
    await sleep(500);
    const idleMB = memoryOf(sync.pid).rssMB;

    // Latency: one single-row INSERT (its own transaction) per millisecond on average,
    // each timed from sending it (before its commit) to its key's PUT on a watch; the
    // baseline is etcd alone at the same rate, timed from sending the put.
    log(`streaming: latency at 1,000 tx/s for ${latencySeconds} s, etcd alone then sync`);
    const baselineFailed = (what: string) => (e: Error) => {
      log(`${what} baseline failed: ${e.message}`);
      return undefined;
    };
    const etcdLatency = await latencyRun(
      grpc,
      "/latbase/",
      Math.min(latencySeconds, 5),
      async (i) => {
        // "etcdserver: too many requests" when etcd falls behind: retried, counted in.
        for (let attempt = 1;; attempt++) {
          try {
            return await grpc.put(`/latbase/${i}`).value(rowValue(i)).exec();
          } catch (e) {
            if (attempt === 5) throw e;
            await sleep(10);
          }
        }
      },
      sync,
    ).catch(baselineFailed("etcd gRPC"));
    const b64 = (t: string) => btoa(t);
    const gatewayLatency = await latencyRun(
      grpc,
      "/latgw/",
      Math.min(latencySeconds, 5),
      async (i) => {
        const body = JSON.stringify({
          success: [{ request_put: { key: b64(`/latgw/${i}`), value: b64(rowValue(i)) } }],
        });
        // An overloaded etcd answers 503 (too many requests): retried, as sync's client does,
        // and the retry counts in the latency.
        for (let attempt = 1;; attempt++) {
          let status: number | string;
          try {
            const r = await fetch(`${etcd.endpoint}/v3/kv/txn`, { method: "POST", body });
            await r.arrayBuffer();
            if (r.ok) return;
            status = `HTTP ${r.status}`;
          } catch (e) {
            status = (e as Error).message;
          }
          if (attempt === 5) throw new Error(`gateway txn: ${status}`);
          await sleep(10);
        }
      },
      sync,
    ).catch(baselineFailed("etcd gateway"));
    await grpc.delete().prefix("/latbase/");
    await grpc.delete().prefix("/latgw/");
    const latency = await latencyRun(
      grpc,
      "/stream/lat_t/",
      latencySeconds,
      (i) => sql`INSERT INTO lat_t VALUES (${i}, ${"row " + i}, ${PAYLOAD})`,
      sync,
    );

    log(`streaming: ${sustainedChanges} changes in transactions of 10`);
    const adjacentSerial = [await etcd3Rate(grpc, ADJACENT_KEYS, 1, "/adjacent1")];
    let sourceSeconds = 0;
    const sustained = await phase(sync, etcd, sustainedChanges, async () => {
      const s0 = performance.now();
      await pg.psql(`DO $$ BEGIN
        FOR b IN 0..${sustainedChanges / 10 - 1} LOOP
          INSERT INTO stream_t SELECT g, 'row ' || g, repeat('x', 100)
            FROM generate_series(b * 10 + 1, b * 10 + 10) g;
          COMMIT;
        END LOOP;
      END $$;`);
      sourceSeconds = (performance.now() - s0) / 1000;
      await until(
        "the sustained stream",
        visible(`/stream/stream_t/${sustainedChanges}`),
        600_000,
        sync,
      );
    });

    log(`streaming: one transaction of ${bigRows} rows`);
    const peakBeforeMB = memoryOf(sync.pid).peakMB;
    const from = sustainedChanges + 1, to = sustainedChanges + bigRows;
    const big = await phase(sync, etcd, bigRows, async () => {
      await pg.sql.unsafe(`INSERT INTO stream_t SELECT g, 'row ' || g, repeat('x', 100)
        FROM generate_series(${from}, ${to}) g`);
      await until("the big transaction", visible(`/stream/stream_t/${to}`), 600_000, sync);
    });
    const peakMB = memoryOf(sync.pid).peakMB;
    adjacentSerial.push(await etcd3Rate(grpc, ADJACENT_KEYS, 1, "/adjacent2"));
    await verifyRows(grpc, "/stream/stream_t/", 1, to);
    return {
      sustained: { ...sustained, changes: sustainedChanges, sourceSeconds },
      latency,
      etcdLatency,
      gatewayLatency,
      bigTxn: { ...big, rows: bigRows, peakBeforeMB, peakMB },
      idleMB,
      adjacentSerial,
    };
  } finally {
    await sync.stop();
    await sql.end({ timeout: 1 });
    await grpc.delete().prefix("/stream/");
    grpc.close();
    await pg.sql`SELECT pg_drop_replication_slot('bench_stream')`.catch(() => {});
  }
}
