/**
 * Commit-to-watch latency at a fixed rate: each write stamped before it is sent, and again
 * when it is acknowledged and when its key arrives on an etcd watch.
 */
import type { Etcd3 } from "etcd3";
import type { Spawned } from "../../testing/process.ts";
import { percentile } from "./lib.ts";
import { sleep, until } from "./waits.ts";

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

export interface Latency extends Percentiles {
  txPerSec: number;
  samples: number;
  /** The write's own round trip: from being sent to being acknowledged. */
  roundTrip: Percentiles;
}

/**
 * Issue one `send(i)` (i from 1) per millisecond on average for `seconds`, and measure from
 * the moment before `send(i)` is called (the write not yet sent) to key(i) arriving on the
 * watch, and separately to `send`'s promise resolving (the write acknowledged).
 */
export async function latencyRun(
  grpc: Etcd3,
  prefix: string,
  seconds: number,
  send: (i: number) => Promise<unknown>,
  p: Spawned,
): Promise<Latency> {
  const stamps: Stamps = { sent: new Map(), acked: new Map(), arrived: new Map() };
  const arrived = stamps.arrived;
  const watcher = await grpc.watch().prefix(prefix).create();
  watcher.on("put", (kv) => void arrived.set(kv.key.toString(), performance.now()));
  // etcd3 re-establishes a broken watch itself; an unheard "error" would end the process.
  watcher.on("error", () => {});
  try {
    return await measureLatency(prefix, seconds, send, p, stamps);
  } finally {
    await watcher.cancel();
  }
}

/** Per key: when its write was sent, acknowledged, and seen on the watch. */
interface Stamps {
  sent: Map<string, number>;
  acked: Map<string, number>;
  arrived: Map<string, number>;
}

async function measureLatency(
  prefix: string,
  seconds: number,
  send: (i: number) => Promise<unknown>,
  p: Spawned,
  { sent: sentAt, acked, arrived }: Stamps,
): Promise<Latency> {
  const total = seconds * 1000;
  const t0 = performance.now();
  let sent = 0;
  const inflight: Promise<unknown>[] = [];
  let failed = 0;
  let lastError: unknown;
  // At most 64 writes outstanding: when the server stalls, the rate drops (and is reported)
  // instead of piling up thousands of requests, which tipped etcd into "too many requests".
  let outstanding = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(performance.now() - t0));
    for (; sent < due && outstanding < 64; sent++) {
      const key = `${prefix}${sent + 1}`;
      // Stamped before the write is sent: its watch event cannot come earlier.
      sentAt.set(key, performance.now());
      outstanding++;
      inflight.push(
        send(sent + 1).then(
          () => void acked.set(key, performance.now()),
          (e) => {
            failed++;
            lastError = e;
          },
        ).finally(() => outstanding--),
      );
    }
    await sleep(1);
  }
  await Promise.all(inflight);
  // A write that failed is left out; more than 1% failing fails the measurement.
  if (failed > total / 100) throw new Error(`${failed} of ${total} writes failed: ${lastError}`);
  const txPerSec = total / ((performance.now() - t0) / 1000);
  await until(
    "every latency row in etcd",
    () => [...acked.keys()].every((k) => arrived.has(k)),
    60_000,
    p,
  );
  // The first second warms up connections and JIT; it is left out.
  const keys = [...acked.keys()].filter((k) => Number(k.slice(prefix.length)) > 1000);
  const lat = keys.map((k) => arrived.get(k)! - sentAt.get(k)!);
  const bad = lat.findIndex((x) => x < 0);
  if (bad >= 0) {
    throw new Error(`latency sample ${keys[bad]} is negative (${lat[bad]} ms): a bug in the bench`);
  }
  return {
    ...percentiles(lat),
    txPerSec,
    samples: lat.length,
    roundTrip: percentiles(keys.map((k) => acked.get(k)! - sentAt.get(k)!)),
  };
}

function percentiles(xs: number[]): Percentiles {
  const sorted = [...xs].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
  };
}
