/**
 * sync's etcd under torture: killed and restarted dozens of times in a run, so unlike the
 * test harness's etcd it
 * - listens on ports below the kernel's ephemeral range: while it is down, an outgoing
 *   connection (there are thousands) could otherwise take its port and the restart fail;
 * - snapshots often and compacts history, so a restart does not replay minutes of WAL and
 *   a 10-minute run stays far from the space quota (as a production etcd would be set up);
 * - waits long for a restart (a loaded machine); a server that exited or never came up is
 *   killed and started again, a few times.
 */
import { spawn, type Spawned, tempDir, waitFor } from "../../tests/harness/process.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface TortureEtcd {
  readonly endpoint: string;
  /** Stop (SIGKILL when `kill`), keeping the data. */
  stop(kill?: boolean): Promise<void>;
  /** Start again on the same ports and data; returns how long it took to serve (ms). */
  restart(): Promise<number>;
  /** Restart it when it does not answer (infrastructure that must stay up); true if it did. */
  ensureUp(): Promise<boolean>;
  close(): Promise<void>;
}

/** A free loopback port in [20000, 32000), below the usual ephemeral range 32768–60999. */
function lowPort(used: number[]): number {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (used.includes(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch { /* taken */ }
  }
}

export async function startTortureEtcd(name = "torture"): Promise<TortureEtcd> {
  const dir = await tempDir(`${name}-etcd`);
  const clientPort = lowPort([]);
  const peerPort = lowPort([clientPort]);
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const args = [
    `--name=${name}`,
    `--data-dir=${dir}/data`,
    `--listen-client-urls=${endpoint}`,
    `--advertise-client-urls=${endpoint}`,
    `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-cluster=${name}=http://127.0.0.1:${peerPort}`,
    "--snapshot-count=5000",
    "--auto-compaction-mode=periodic",
    "--auto-compaction-retention=1m",
    `--quota-backend-bytes=${8 * 2 ** 30}`,
    "--log-level=warn",
    "--logger=zap",
  ];
  let proc: Spawned | undefined;
  let exited = false;
  const healthy = () =>
    fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(5000) })
      .then(async (r) => (await r.body?.cancel(), r.ok), () => false);
  // One attempt: a server that exits or does not serve within `ms` is killed (a restart on
  // the loaded machine once sat for minutes refusing connections; a fresh start served).
  const attempt = async (ms: number) => {
    const p = spawn("etcd", { args, env: { ETCD_UNSUPPORTED_ARCH: "" } });
    proc = p;
    exited = false;
    p.exited.then(() => exited = true);
    try {
      await waitFor(
        "etcd to serve",
        async () => {
          if (exited) throw new Error(`etcd exited: ${p.output().split("\n").slice(-3)}`);
          return await healthy();
        },
        ms,
        () => p.output(),
      );
    } catch (e) {
      await p.stop(2_000);
      throw e;
    }
  };
  const boot = async () => {
    const t0 = Date.now();
    for (let i = 1;; i++) {
      try {
        await attempt(60_000);
        return Date.now() - t0;
      } catch (e) {
        if (i >= 4) throw e;
        console.error(`torture: ${name} etcd did not serve (try ${i}): starting it again`);
        await sleep(1000);
      }
    }
  };
  await boot();
  return {
    endpoint,
    async stop(kill = false) {
      if (!proc) return;
      if (kill) {
        proc.signal("SIGKILL");
        await proc.exited;
      } else await proc.stop();
    },
    restart: boot,
    async ensureUp() {
      // Dead, or three slow health checks in a row: a busy server is not restarted (that
      // would cost Patroni its leader key for nothing).
      if (!exited) {
        for (let i = 0; i < 3; i++) {
          if (await healthy()) return false;
          if (exited) break;
          await sleep(2000);
        }
      }
      await proc?.stop(2_000);
      await boot();
      return true;
    },
    async close() {
      await proc?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
