/** A throwaway etcd server (Debian's etcd-server) on free loopback ports. */
import { freePort, spawn, type Spawned, tempDir, waitFor } from "./process.ts";

export interface EtcdServer {
  readonly endpoint: string;
  readonly clientPort: number;
  readonly dataDir: string;
  readonly proc: Spawned;
  /** Stop (SIGKILL when `kill`) and keep the data dir. */
  stop(kill?: boolean): Promise<void>;
  /** Start again on the same ports and data. */
  restart(): Promise<void>;
  /** Stop and remove the data dir. */
  close(): Promise<void>;
}

export interface EtcdOptions {
  /** etcd's --quota-backend-bytes. */
  quotaBytes?: number;
  /** etcd's --max-request-bytes. */
  maxRequestBytes?: number;
}

export async function startEtcd(opts: EtcdOptions = {}): Promise<EtcdServer> {
  const dataDir = await tempDir("etcd");
  const clientPort = freePort();
  const peerPort = freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const args = [
    "--name=test",
    `--data-dir=${dataDir}/data`,
    `--listen-client-urls=${endpoint}`,
    `--advertise-client-urls=${endpoint}`,
    `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-cluster=test=http://127.0.0.1:${peerPort}`,
    "--log-level=warn",
    "--logger=zap",
  ];
  if (opts.quotaBytes) args.push(`--quota-backend-bytes=${opts.quotaBytes}`);
  if (opts.maxRequestBytes) args.push(`--max-request-bytes=${opts.maxRequestBytes}`);
  const boot = async () => {
    const proc = spawn("etcd", { args, env: { ETCD_UNSUPPORTED_ARCH: "" } });
    await waitFor(
      "etcd to serve",
      async () => {
        const r = await fetch(`${endpoint}/health`);
        await r.body?.cancel();
        return r.ok;
      },
      30_000,
      () => proc.output(),
    );
    return proc;
  };
  let proc = await boot();
  const server: EtcdServer = {
    endpoint,
    clientPort,
    dataDir,
    get proc() {
      return proc;
    },
    async stop(kill = false) {
      if (kill) {
        proc.signal("SIGKILL");
        await proc.exited;
      } else await proc.stop();
    },
    async restart() {
      proc = await boot();
    },
    async close() {
      await proc.stop();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
  return server;
}
