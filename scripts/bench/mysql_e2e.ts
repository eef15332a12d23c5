/**
 * sync as its own process, MariaDB → etcd (the mysql driver), for the CPU figures per
 * driver: the dump of the `n`-row table the decode benchmark left (bench.bench_t), then
 * `sustained` inserts streamed in transactions of 10. Every row's value is checked at the
 * end (once: reading a million keys from etcd takes minutes on this machine). CPU seconds of sync (and of mysqldump, its child) and etcd come from /proc.
 */
import { Etcd3 } from "etcd3";
import type { MariaServer } from "../../testing/mariadb.ts";
import type { EtcdServer } from "../../testing/etcd.ts";
import { startSync } from "../../testing/sync.ts";
import { ADJACENT_KEYS, type Phase, phase, until, verifyRows, watchEtcd } from "./sync_e2e.ts";
import { etcd3Rate } from "./etcd.ts";

export interface MysqlE2eResult {
  dump: Phase & { rows: number; adjacent4: number[] };
  sustained: Phase & { changes: number };
}

export async function benchMysqlE2e(
  db: MariaServer,
  etcd: EtcdServer,
  n: number,
  sustained: number,
  log: (s: string) => void,
): Promise<MysqlE2eResult> {
  watchEtcd(etcd);
  const grpc = new Etcd3({ hosts: etcd.endpoint });
  const adjacent4 = [await etcd3Rate(grpc, ADJACENT_KEYS, 4, "/adjacent1")];
  const sync = startSync([
    "--driver=mysql",
    `--db-url=${db.url}bench`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/my",
    "--tables=bench.bench_t",
    "--server-id=4711",
    "--source-id=mysql-bench",
  ]);
  try {
    log(`mysql: dump of ${n} rows`);
    await until("sync to start its dump", () => /dump starting/.test(sync.output()), 60_000, sync);
    const dump = await phase(sync, etcd, n, async () => {
      await until("the dump", () => /dump done/.test(sync.output()), 600_000, sync);
    });
    adjacent4.push(await etcd3Rate(grpc, ADJACENT_KEYS, 4, "/adjacent2"));
    await until("sync to stream", () => /msg=streaming/.test(sync.output()), 60_000, sync);

    log(`mysql: ${sustained} changes streamed in transactions of 10`);
    const last = `/my/bench_t/${n + sustained}`;
    const stream = await phase(sync, etcd, sustained, async () => {
      // Autocommit: each INSERT of 10 rows is one transaction; 1,000 per round trip.
      for (let b = 0; b < sustained; b += 10_000) {
        const stmts: string[] = [];
        for (let i = b; i < Math.min(sustained, b + 10_000); i += 10) {
          const from = n + i + 1, to = n + Math.min(sustained, i + 10);
          stmts.push(
            "INSERT INTO bench.bench_t SELECT seq, CONCAT('row ', seq), REPEAT('x', 100) " +
              `FROM seq_${from}_to_${to}`,
          );
        }
        await db.query(stmts.join(";"));
      }
      await until(
        "the streamed rows",
        async () => (await grpc.get(last).string()) !== null,
        600_000,
        sync,
      );
    });
    await verifyRows(grpc, "/my/bench_t/", 1, n + sustained);
    return { dump: { ...dump, rows: n, adjacent4 }, sustained: { ...stream, changes: sustained } };
  } finally {
    await sync.stop();
    await grpc.delete().prefix("/my/");
    grpc.close();
  }
}
