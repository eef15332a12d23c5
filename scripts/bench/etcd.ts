/**
 * etcd write throughput: the `etcd3` gRPC client writing max-size transactions of 128 puts,
 * serial, then 4, 8 and 32 in parallel (32: many requests in flight at once, as the clients
 * of `etcdctl check perf` keep them), and sync's sink (either transport) writing the same
 * keys and values in-process, as a dump and as a stream. The ceiling is the best of all of
 * these (report.ts), and every etcd figure of sync is reported against it.
 */
import process from "node:process";
import { Etcd3 } from "etcd3";
import { EtcdClient, type EtcdTransportKind } from "../../src/etcd/client.ts";
import { EtcdSink } from "../../src/etcd/sink.ts";
import type { ChangeBatch, PutChange } from "../../src/core/change.ts";
import { jsonNumber, jsonString } from "../../src/core/json.ts";
import { PAYLOAD, rowValue, timed } from "./lib.ts";

/** etcd's default --max-txn-ops, and sync's --etcd-max-txn-ops default. */
export const OPS = 128;

export interface Ceiling {
  /** 1 in flight: the yardstick for streaming (source order, the state key). */
  serial: number;
  /** 4 in flight: what sync's dump keeps in flight. */
  parallel4: number;
  parallel8: number;
  /** 32 in flight: a load-test client's concurrency. */
  parallel32: number;
}

/** keys/s of `n` puts in transactions of 128 through etcd3 (gRPC): 1 in flight, then 4, 8, 32. */
export async function etcdCeiling(endpoint: string, n: number, tag: string): Promise<Ceiling> {
  const grpc = new Etcd3({ hosts: endpoint });
  try {
    const [serial, parallel4, parallel8, parallel32] = [
      await etcd3Rate(grpc, n, 1, `/ceil1${tag}`),
      await etcd3Rate(grpc, n, 4, `/ceil4${tag}`),
      await etcd3Rate(grpc, n, 8, `/ceil8${tag}`),
      await etcd3Rate(grpc, n, 32, `/ceil32${tag}`),
    ];
    // Leave etcd as small as it was for what follows.
    for (const k of [1, 4, 8, 32]) await grpc.delete().prefix(`/ceil${k}${tag}`);
    return { serial, parallel4, parallel8, parallel32 };
  } finally {
    grpc.close();
  }
}

/**
 * keys/s of `n` puts through etcd3 in transactions of 128, `inFlight` at once, under
 * `prefix`. The keys stay: etcd 3.4's bbolt keeps the pages a large delete frees in a list
 * it scans on every commit, and writes right after deleting 100,000 keys ran 3× slower
 * (measured), so a delete between two measurements would slow the second.
 */
export async function etcd3Rate(
  grpc: Etcd3,
  n: number,
  inFlight: number,
  prefix: string,
): Promise<number> {
  const enc = new TextEncoder();
  // A plain transaction of puts, as the sink sends (no compares); keys as long as sync's.
  const txnBatch = async (from: number) => {
    const success = [];
    for (let i = from; i < Math.min(n, from + OPS); i++) {
      success.push({
        request_put: { key: enc.encode(`${prefix}/bench_t/${i}`), value: enc.encode(rowValue(i)) },
      });
    }
    // deno-lint-ignore no-explicit-any
    await grpc.kv.txn({ success } as any);
  };
  let next = 0;
  const seconds = await timed(async () => {
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (next < n) {
        const i = next;
        next += OPS;
        await txnBatch(i);
      }
    }));
  });
  return n / seconds;
}

export interface SinkRates {
  dump8: number;
  stream1: number;
  /** sync's CPU-seconds (user + system, this process) per 1,000,000 keys written. */
  dumpCpuPerM?: number;
  streamCpuPerM?: number;
}

/** CPU-seconds this process used (user + system). */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** keys/s of sync's sink alone (no source): dump batches on 8 writers, stream batches 1 at a time. */
export async function sinkRates(
  endpoint: string,
  n: number,
  transport: EtcdTransportKind = "grpc",
): Promise<SinkRates> {
  const client = new EtcdClient({ endpoints: [endpoint], transport });
  const change = (i: number): PutChange => ({
    op: "put",
    table: "bench_t",
    key: String(i),
    columns: ["id", "name", "payload"],
    cells: [jsonNumber(String(i)), jsonString(`row ${i}`), jsonString(PAYLOAD)],
  });
  try {
    const dumpSink = new EtcdSink(client, { prefix: "/sinkdump", stateKey: "/sinkdump-state/s" });
    const cpu0 = cpuSeconds();
    const sd = await timed(async () => {
      let next = 0;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (next < n) {
          const i = next;
          next += 500;
          const changes = [];
          for (let j = i; j < Math.min(n, i + 500); j++) changes.push(change(j));
          await dumpSink.writeDump({ changes });
        }
      }));
      await dumpSink.settleDump();
    });
    const cpu1 = cpuSeconds();
    const streamSink = new EtcdSink(client, {
      prefix: "/sinkstream",
      stateKey: "/sinkstream-state/s",
    });
    // As the pipeline feeds it: up to 5,000 queued changes, here source transactions of 10.
    const ss = await timed(async () => {
      for (let i = 0; i < n; i += 5000) {
        const batches: ChangeBatch[] = [];
        for (let j = i; j < Math.min(n, i + 5000); j += 10) {
          const changes = [];
          for (let k = j; k < Math.min(n, j + 10); k++) changes.push(change(k));
          batches.push({ changes, commit: { position: { lsn: String(j) } } });
        }
        await streamSink.apply(batches, (p) => ({
          driver: "bench",
          source: {},
          position: p,
          dumpRevision: 0,
          updatedAt: new Date().toISOString(),
        }));
      }
    });
    const cpu2 = cpuSeconds();
    const grpc = new Etcd3({ hosts: endpoint });
    await grpc.delete().prefix("/sinkdump");
    await grpc.delete().prefix("/sinkstream");
    grpc.close();
    return {
      dump8: n / sd,
      stream1: n / ss,
      dumpCpuPerM: ((cpu1 - cpu0) / n) * 1e6,
      streamCpuPerM: ((cpu2 - cpu1) / n) * 1e6,
    };
  } finally {
    client.close();
  }
}
