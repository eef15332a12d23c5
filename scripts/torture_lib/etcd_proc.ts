/**
 * sync's etcd under torture: killed and restarted dozens of times in a run, so unlike the
 * test harness's etcd it
 * - listens on ports below the kernel's ephemeral range, reserved for this process (the
 *   harness's freePort): while it is down, neither an outgoing connection (there are
 *   thousands) nor another test's server can take its port and fail the restart;
 * - snapshots often and compacts history, so a restart does not replay minutes of WAL and
 *   a 10-minute run stays far from the space quota (as a production etcd would be set up);
 * - waits long for a restart (a loaded machine); a server that exited or never came up is
 *   killed and started again, a few times.
 */
import { freePort, spawn, type Spawned, tempDir, waitFor } from "../../testing/process.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface TortureEtcd {
  readonly endpoint: string;
  /** Stop (SIGKILL when `kill`), keeping the data; false when it was not running. */
  stop(kill?: boolean): Promise<boolean>;
  /** Start again on the same ports and data; returns how long it took to serve (ms). */
  restart(): Promise<number>;
  /** Restart it when it does not answer (infrastructure that must stay up); true if it did. */
  ensureUp(): Promise<boolean>;
  close(): Promise<void>;
}

export async function startTortureEtcd(name = "torture"): Promise<TortureEtcd> {
  const dir = await tempDir(`${name}-etcd`);
  const clientPort = freePort();
  const peerPort = freePort();
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
  // Set while a fault or the clean-up stops it: any other exit is reported as it happens.
  let stopping = false;
  const halt = async (f: () => Promise<void>) => {
    stopping = true;
    try {
      await f();
    } finally {
      stopping = false;
    }
  };
  const healthy = () =>
    fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(5000) })
      .then(async (r) => (await r.body?.cancel(), r.ok), () => false);
  // One attempt: a server that exits or does not serve within `ms` is killed (a restart on
  // the loaded machine once sat for minutes refusing connections; a fresh start served).
  const attempt = async (ms: number) => {
    const p = spawn("etcd", { args, env: { ETCD_UNSUPPORTED_ARCH: "" } });
    proc = p;
    exited = false;
    p.exited.then((st) => {
      if (proc !== p) return; // an earlier attempt's late exit
      exited = true;
      if (stopping) return;
      const tail = p.output().split("\n").slice(-3).join(" | ");
      console.error(`torture: ${name} etcd exited by itself (${st.signal ?? st.code}): ${tail}`);
    });
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
      await halt(() => p.stop(2_000));
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
      if (!proc || exited) return false;
      const p = proc;
      await halt(async () => {
        if (kill) {
          p.signal("SIGKILL");
          await p.exited;
        } else await p.stop();
      });
      return true;
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
      await halt(async () => await proc?.stop(2_000));
      await boot();
      return true;
    },
    async close() {
      stopping = true;
      await proc?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
