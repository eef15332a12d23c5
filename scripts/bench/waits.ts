/** Waits with a deadline for the benchmarks: each names what it waited for when it fails. */
import type { EtcdServer } from "../../testing/etcd.ts";
import type { Spawned } from "../../testing/process.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Set while a benchmark runs: true once its etcd has exited (so waits end at once). */
let etcdGone = () => false;

export function watchEtcd(etcd: EtcdServer) {
  let gone = false;
  etcd.proc.exited.then(() => (gone = true));
  etcdGone = () => gone;
}

export async function until(
  what: string,
  f: () => boolean | Promise<boolean>,
  ms: number,
  p: Spawned,
) {
  const end = performance.now() + ms;
  let exited = false;
  p.exited.then(() => (exited = true));
  while (!(await f())) {
    if (etcdGone()) throw new Error(`etcd exited while waiting for ${what}`);
    if (exited) throw new Error(`sync exited while waiting for ${what}\n${p.output()}`);
    if (performance.now() > end) throw new Error(`timed out: ${what}\n${p.output()}`);
    await sleep(20);
  }
}
