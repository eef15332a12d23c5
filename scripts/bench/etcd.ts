/**
 * etcd write throughput: etcd's own ceiling (the `etcd3` gRPC client, max-size
 * transactions, serial and 8 in parallel) against sync's sink (gateway transport) writing
 * the same keys, as a dump (parallel) and as a stream (one transaction in flight).
 * Prints absolute figures and ratios from the same run on the same server.
 */
import { Etcd3 } from "etcd3";
import { startEtcd } from "../../tests/harness/etcd.ts";
import { EtcdClient } from "../../src/etcd/client.ts";
import { EtcdSink } from "../../src/etcd/sink.ts";
import type { ChangeBatch, PutChange } from "../../src/core/change.ts";
import { jsonNumber, jsonString } from "../../src/core/json.ts";

const N = Number(Deno.env.get("BENCH_KEYS") ?? 100_000);
const OPS = 128;
const value = (i: number) => `{"id":${i},"name":"row ${i}","payload":"${"x".repeat(100)}"}`;

export interface Row {
  name: string;
  keysPerSec: number;
}

async function timed(f: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

export async function benchEtcd(): Promise<Row[]> {
  const etcd = await startEtcd();
  const rows: Row[] = [];
  try {
    const grpc = new Etcd3({ hosts: etcd.endpoint });
    const enc = new TextEncoder();
    // A plain transaction of puts, as the sink sends (no compares).
    const txnBatch = async (prefix: string, from: number) => {
      const success = [];
      for (let i = from; i < Math.min(N, from + OPS); i++) {
        success.push({
          request_put: { key: enc.encode(`${prefix}${i}`), value: enc.encode(value(i)) },
        });
      }
      // deno-lint-ignore no-explicit-any
      await grpc.kv.txn({ success } as any);
    };
    let s = await timed(async () => {
      for (let i = 0; i < N; i += OPS) await txnBatch("/ceil1/", i);
    });
    rows.push({ name: "etcd3 gRPC, serial txns of 128", keysPerSec: N / s });
    s = await timed(async () => {
      let next = 0;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (next < N) {
          const i = next;
          next += OPS;
          await txnBatch("/ceil8/", i);
        }
      }));
    });
    rows.push({ name: "etcd3 gRPC, 8 parallel txns of 128", keysPerSec: N / s });
    grpc.close();

    const client = new EtcdClient({ endpoints: [etcd.endpoint] });
    const change = (i: number): PutChange => ({
      op: "put",
      table: "t",
      key: String(i),
      columns: ["id", "name", "payload"],
      cells: [jsonNumber(String(i)), jsonString(`row ${i}`), jsonString("x".repeat(100))],
    });
    const dumpSink = new EtcdSink(client, { prefix: "/dump", stateKey: "/dump-state/s" });
    s = await timed(async () => {
      let next = 0;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (next < N) {
          const i = next;
          next += 500;
          const changes = [];
          for (let j = i; j < Math.min(N, i + 500); j++) changes.push(change(j));
          await dumpSink.writeDump({ changes });
        }
      }));
    });
    rows.push({ name: "sync sink (gateway), dump, 8 writers", keysPerSec: N / s });
    const streamSink = new EtcdSink(client, { prefix: "/stream", stateKey: "/stream-state/s" });
    s = await timed(async () => {
      for (let i = 0; i < N; i += 5000) {
        const batches: ChangeBatch[] = [];
        for (let j = i; j < Math.min(N, i + 5000); j += 10) {
          const changes = [];
          for (let k = j; k < Math.min(N, j + 10); k++) changes.push(change(k));
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
    rows.push({ name: "sync sink (gateway), stream, 1 in flight", keysPerSec: N / s });
    client.close();
  } finally {
    await etcd.close();
  }
  return rows;
}

if (import.meta.main) {
  const rows = await benchEtcd();
  const base = rows[0].keysPerSec;
  console.log(`| benchmark (${N} keys, ~${value(1).length} B values) | keys/s | vs etcd3 serial |`);
  console.log("|---|---:|---:|");
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${Math.round(r.keysPerSec)} | ${(r.keysPerSec / base).toFixed(2)} |`,
    );
  }
}
