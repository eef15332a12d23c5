/**
 * A two-node Patroni cluster (Debian's `patroni`, run as `postgres`) with the test etcd as
 * its DCS and a permanent logical slot for sync, on free loopback ports. Its configuration,
 * data dirs and sockets live in a folder of its own outside the checkout (server_dirs.ts).
 */
import { freePort, killByPidFile, run, spawn, type Spawned, waitFor } from "./process.ts";
import { pgBin } from "./postgres.ts";
import { SERVER_USER, serverDir } from "./server_dirs.ts";

export interface PatroniNode {
  name: string;
  pgPort: number;
  apiPort: number;
  proc: Spawned;
}

export interface PatroniCluster {
  nodes: PatroniNode[];
  /** The folder holding its configuration, data dirs and sockets. */
  dir: string;
  /** Multi-host URL over both nodes (sync follows the primary). */
  url: string;
  leader(): Promise<PatroniNode | undefined>;
  /** Kill a node's Patroni and its postmaster (SIGKILL), as in a crash. */
  crash(node: PatroniNode): Promise<void>;
  /** Bring a crashed node back as a fresh replica (its data dir wiped, re-cloned). */
  rejoin(node: PatroniNode): Promise<void>;
  close(): Promise<void>;
}

export interface PatroniOptions {
  /** Patroni's synchronous_mode: only the synchronous standby is promoted. */
  synchronous?: boolean;
  /** More PostgreSQL parameters (bootstrap DCS config). */
  parameters?: Record<string, string>;
  /** Patroni's DCS timings (s); the defaults fail over fast on an idle machine. */
  ttl?: number;
  loopWait?: number;
  retryTimeout?: number;
}

export async function startPatroni(
  etcdEndpoint: string,
  slot: string,
  opts: PatroniOptions = {},
): Promise<PatroniCluster> {
  const dir = await serverDir("patroni", SERVER_USER);
  const scope = `sync-test-${Date.now()}`;
  const host = etcdEndpoint.replace(/^https?:\/\//, "");
  const nodes: PatroniNode[] = [];
  const start = async (name: string) => {
    const pgPort = freePort();
    const apiPort = freePort();
    const yaml = `
scope: ${scope}
name: ${name}
restapi:
  listen: 127.0.0.1:${apiPort}
  connect_address: 127.0.0.1:${apiPort}
etcd3:
  hosts: ${host}
bootstrap:
  dcs:
    ttl: ${opts.ttl ?? 10}
    loop_wait: ${opts.loopWait ?? 1}
    retry_timeout: ${opts.retryTimeout ?? 5}
    maximum_lag_on_failover: 104857600
    synchronous_mode: ${opts.synchronous ? "true" : "false"}
    postgresql:
      use_pg_rewind: false
      parameters:
        wal_level: logical
        max_wal_senders: 10
        max_replication_slots: 10
        hot_standby: "on"
        hot_standby_feedback: "on"
        fsync: "off"
${
      Object.entries(opts.parameters ?? {}).map(([k, v]) => `        ${k}: "${v}"\n`).join("")
    }    slots:
      ${slot}:
        type: logical
        database: postgres
        plugin: pgoutput
  initdb:
    - encoding: UTF8
    - locale: C
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:${pgPort}
  connect_address: 127.0.0.1:${pgPort}
  data_dir: ${dir}/${name}
  bin_dir: ${pgBin()}
  pgpass: ${dir}/${name}.pgpass
  authentication:
    superuser:
      username: postgres
      password: postgres
    replication:
      username: postgres
      password: postgres
  parameters:
    unix_socket_directories: '${dir}'
tags:
  nofailover: false
`;
    await Deno.writeTextFile(`${dir}/${name}.yml`, yaml);
    await run("chown", { args: [SERVER_USER, `${dir}/${name}.yml`] }).catch(() => {});
    const node = { name, pgPort, apiPort, proc: patroni(name) };
    nodes.push(node);
    return node;
  };
  // Started in its own folder: Patroni's helper processes chdir to the caller's folder (the
  // checkout), which the server user may not be able to enter.
  const patroni = (name: string) =>
    spawn("patroni", { args: [`${dir}/${name}.yml`], user: SERVER_USER, cwd: dir });
  const respawn = (n: PatroniNode) => {
    n.proc = patroni(n.name);
  };
  const role = async (n: PatroniNode) => {
    try {
      const r = await fetch(`http://127.0.0.1:${n.apiPort}/patroni`, {
        signal: AbortSignal.timeout(2000),
      });
      const j = await r.json();
      return `${j.role}:${j.state}`;
    } catch {
      return "down";
    }
  };
  const a = await start("node1");
  await waitFor(
    "the first Patroni node to lead",
    async () => /master|primary/.test(await role(a)) && (await role(a)).endsWith(":running"),
    90_000,
    () => a.proc.output(),
  );
  const b = await start("node2");
  await waitFor(
    "the second node to replicate",
    async () => (await role(b)) === "replica:running",
    90_000,
    () => b.proc.output(),
  );
  // Postmasters left behind by a crashed Patroni (they hold its output pipes, so its exit
  // is only seen once they are gone too).
  const killPostmaster = (n: PatroniNode) =>
    killByPidFile(`${dir}/${n.name}/postmaster.pid`, `${dir}/${n.name}`);
  const cluster: PatroniCluster = {
    nodes,
    dir,
    url: `postgres://postgres:postgres@${
      nodes.map((n) => `127.0.0.1:${n.pgPort}`).join(",")
    }/postgres?sslmode=disable&connect_timeout=3`,
    async leader() {
      for (const n of nodes) if (/master|primary/.test(await role(n))) return n;
      return undefined;
    },
    async crash(n) {
      n.proc.signal("SIGKILL");
      await killPostmaster(n);
      // The postmaster held Patroni's output pipes: only now does the process count as gone.
      await n.proc.exited;
    },
    async rejoin(n) {
      await Deno.remove(`${dir}/${n.name}`, { recursive: true }).catch(() => {});
      respawn(n);
      await waitFor(
        `${n.name} to replicate again`,
        async () => (await role(n)) === "replica:running",
        300_000,
        () => n.proc.output(),
      );
    },
    async close() {
      for (const n of nodes) {
        n.proc.signal("SIGTERM");
        const t = setTimeout(() => {
          n.proc.signal("SIGKILL");
          killPostmaster(n);
        }, 15_000);
        await n.proc.exited;
        clearTimeout(t);
      }
      for (const n of nodes) await killPostmaster(n);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return cluster;
}
