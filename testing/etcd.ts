/** A throwaway etcd server (Debian's etcd-server) on free loopback ports. */
import { freePort, spawn, type Spawned, waitFor } from "./process.ts";
import { serverDir } from "./server_dirs.ts";

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
  /** etcd's --snapshot-count (entries kept in memory until a snapshot; default 100,000). */
  snapshotCount?: number;
  /** Serve clients over https (the peer URL stays plain: one member, loopback). */
  tls?: EtcdTls;
  /** More etcd flags (`--auto-compaction-mode=revision`, ...). */
  args?: string[];
}

export interface EtcdTls {
  /** PEM files: the CA clients are checked against, and the server's certificate and key. */
  caFile: string;
  certFile: string;
  keyFile: string;
  /**
   * `--client-cert-auth`: clients must present a certificate signed by `caFile`; this one
   * (PEM text) is the harness's own, for the health check.
   */
  client?: { cert: string; key: string };
}

export async function startEtcd(opts: EtcdOptions = {}): Promise<EtcdServer> {
  const dataDir = await serverDir("etcd");
  const clientPort = freePort();
  const peerPort = freePort();
  const endpoint = `${opts.tls ? "https" : "http"}://127.0.0.1:${clientPort}`;
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
  if (opts.snapshotCount) args.push(`--snapshot-count=${opts.snapshotCount}`);
  if (opts.args) args.push(...opts.args);
  let http: Deno.HttpClient | undefined;
  if (opts.tls) {
    const t = opts.tls;
    args.push(`--cert-file=${t.certFile}`, `--key-file=${t.keyFile}`);
    args.push(`--trusted-ca-file=${t.caFile}`);
    if (t.client) args.push("--client-cert-auth");
    http = Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(t.caFile)],
      ...(t.client ?? {}),
    });
  }
  const boot = async () => {
    const proc = spawn("etcd", { args, env: { ETCD_UNSUPPORTED_ARCH: "" } });
    await waitFor(
      "etcd to serve",
      async () => {
        const r = await fetch(`${endpoint}/health`, http ? { client: http } : {});
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
      http?.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
  return server;
}
