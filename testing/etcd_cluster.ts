/**
 * A throwaway etcd cluster (Debian's etcd-server): three members on loopback ports, each
 * with its own data dir, stopped by PID like every other server. Members can be killed,
 * stopped, frozen (SIGSTOP), restarted, removed, and replaced by new members at new URLs
 * (as a learner first, then promoted). Membership is changed through etcd's JSON gateway.
 */
import { freePort, spawn, type Spawned, waitFor } from "./process.ts";
import { serverDir } from "./server_dirs.ts";
import { step } from "./steps.ts";

export interface ClusterMember {
  readonly name: string;
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerUrl: string;
  /** Running (possibly frozen), not stopped or removed. */
  readonly running: boolean;
  readonly frozen: boolean;
  readonly proc: Spawned | undefined;
  /** Where it logs every client request, when added with `logRequests`. */
  readonly requestLog?: string;
  /** SIGTERM, or SIGKILL when `kill`; keeps the data dir. */
  stop(kill?: boolean): Promise<void>;
  /** Start again on the same ports and data; waits until it serves. */
  restart(): Promise<void>;
  freeze(): void;
  thaw(): void;
}

export interface EtcdCluster {
  /** The current members, removed ones left out. */
  readonly members: ClusterMember[];
  /** The client URLs the cluster started with. */
  readonly seeds: string[];
  /** The member that leads now, asked of the running members. */
  leader(): Promise<ClusterMember>;
  /** A running member that is not frozen (for the test's own reads). */
  live(except?: ClusterMember): ClusterMember;
  /**
   * Add a new member at new URLs as a learner, start it, wait until it serves. `logRequests`:
   * it logs every client request it gets (etcd's debug level) to its `requestLog` file (the
   * process's output keeps only its last lines).
   */
  addLearner(o?: { logRequests?: boolean }): Promise<ClusterMember>;
  promote(m: ClusterMember): Promise<void>;
  /** Remove `m` from the cluster and stop its process. */
  remove(m: ClusterMember): Promise<void>;
  /** etcd's member ID of `m` (decimal). */
  idOf(m: ClusterMember): Promise<string>;
  close(): Promise<void>;
}

/** One gateway call with a deadline. */
async function gateway(
  endpoint: string,
  path: string,
  body: unknown,
  timeoutMs = 5_000,
): Promise<Record<string, unknown>> {
  const r = await fetch(`${endpoint}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`${path} at ${endpoint}: ${JSON.stringify(json)}`);
  return json;
}

interface MemberSpec {
  name: string;
  clientPort: number;
  peerPort: number;
  dir: string;
}

const url = (port: number) => `http://127.0.0.1:${port}`;

export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  let n = 0;
  const spec = async (): Promise<MemberSpec> => ({
    name: `m${++n}`,
    clientPort: freePort(),
    peerPort: freePort(),
    dir: await serverDir("etcd-cluster"),
  });
  const members: ClusterMember[] = [];
  const specs: MemberSpec[] = [];
  for (let i = 0; i < size; i++) specs.push(await spec());
  const initial = specs.map((s) => `${s.name}=${url(s.peerPort)}`).join(",");

  const member = (
    s: MemberSpec,
    cluster: string,
    state: "new" | "existing",
    logLevel = "warn",
  ) => {
    const endpoint = url(s.clientPort);
    const args = [
      `--name=${s.name}`,
      `--data-dir=${s.dir}/data`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${url(s.peerPort)}`,
      `--initial-advertise-peer-urls=${url(s.peerPort)}`,
      `--initial-cluster=${cluster}`,
      `--initial-cluster-state=${state}`,
      "--initial-cluster-token=sync-test",
      `--log-level=${logLevel}`,
      ...(logLevel === "debug" ? [`--log-outputs=${s.dir}/requests.log`] : []),
      "--logger=zap",
    ];
    let proc: Spawned | undefined;
    let frozen = false;
    const serving = () =>
      waitFor(
        `etcd member ${s.name} to serve`,
        async () => {
          const r = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(2_000) });
          return r.ok && (await r.json()).health === "true";
        },
        60_000,
        () => proc?.output() ?? "",
      );
    const m: ClusterMember & { boot(): void; serving(): Promise<void> } = {
      name: s.name,
      endpoint,
      clientPort: s.clientPort,
      peerUrl: url(s.peerPort),
      get running() {
        return proc !== undefined;
      },
      get frozen() {
        return frozen;
      },
      get proc() {
        return proc;
      },
      requestLog: logLevel === "debug" ? `${s.dir}/requests.log` : undefined,
      boot() {
        proc = spawn("etcd", { args, env: { ETCD_UNSUPPORTED_ARCH: "" } });
      },
      serving,
      async stop(kill = false) {
        const p = proc;
        if (!p) return;
        step(`${kill ? "killing" : "stopping"} etcd member ${s.name}`);
        frozen = false;
        if (kill) {
          p.signal("SIGCONT");
          p.signal("SIGKILL");
          await p.exited;
        } else await p.stop();
        proc = undefined;
      },
      async restart() {
        step(`restarting etcd member ${s.name}`);
        m.boot();
        await serving();
      },
      freeze() {
        step(`freezing etcd member ${s.name} (SIGSTOP)`);
        proc?.signal("SIGSTOP");
        frozen = true;
      },
      thaw() {
        step(`thawing etcd member ${s.name} (SIGCONT)`);
        proc?.signal("SIGCONT");
        frozen = false;
      },
    };
    return m;
  };

  const first = specs.map((s) => member(s, initial, "new"));
  for (const m of first) m.boot();
  await Promise.all(first.map((m) => m.serving()));
  members.push(...first);

  const live = (except?: ClusterMember) => {
    const m = members.find((m) => m.running && !m.frozen && m !== except);
    if (!m) throw new Error("no running etcd member");
    return m;
  };
  const list = async () => {
    const r = await gateway(live().endpoint, "/v3/cluster/member/list", {});
    return r.members as { ID: string; name: string; peerURLs: string[] }[];
  };
  const idOf = async (m: ClusterMember) => {
    const found = (await list()).find((x) => x.peerURLs.includes(m.peerUrl));
    if (!found) throw new Error(`etcd member ${m.name} is not in the member list`);
    return found.ID;
  };

  return {
    members,
    seeds: first.map((m) => m.endpoint),
    live,
    idOf,
    async leader() {
      for (const m of members) {
        if (!m.running || m.frozen) continue;
        const r = await gateway(m.endpoint, "/v3/maintenance/status", {}).catch(() => null);
        const header = r?.header as { member_id?: string } | undefined;
        if (r && header?.member_id === r.leader) return m;
      }
      throw new Error("no etcd member says it leads");
    },
    async addLearner(o = {}) {
      const s = await spec();
      specs.push(s);
      step(`adding etcd member ${s.name} as a learner`);
      // etcd refuses a new member until every member has been connected for a while
      // ("unhealthy cluster", after a restart): asked again until it agrees.
      await waitFor(`etcd to add member ${s.name}`, async () => {
        await gateway(live().endpoint, "/v3/cluster/member/add", {
          peerURLs: [url(s.peerPort)],
          isLearner: true,
        });
        return true;
      }, 30_000);
      const all = (await list())
        .map((x) => `${x.name || s.name}=${x.peerURLs[0]}`).join(",");
      const m = member(s, all, "existing", o.logRequests ? "debug" : "warn");
      m.boot();
      await m.serving();
      members.push(m);
      return m;
    },
    async promote(m) {
      step(`promoting etcd member ${m.name}`);
      const id = await idOf(m);
      // A learner is promoted once it has caught up with the leader: etcd says when not yet.
      await waitFor(`etcd member ${m.name} to be promoted`, async () => {
        await gateway(live().endpoint, "/v3/cluster/member/promote", { ID: id });
        return true;
      }, 30_000);
    },
    async remove(m) {
      step(`removing etcd member ${m.name}`);
      const id = await idOf(m);
      await gateway(live(m).endpoint, "/v3/cluster/member/remove", { ID: id });
      await m.stop();
      members.splice(members.indexOf(m), 1);
    },
    async close() {
      await Promise.all(members.map((m) => m.stop()));
      for (const s of specs) await Deno.remove(s.dir, { recursive: true }).catch(() => {});
    },
  };
}

/** One write in etcd's history (a watch from revision 1). */
export interface HistoryEvent {
  type: "PUT" | "DELETE";
  key: string;
  value: string;
  modRevision: number;
  createRevision: number;
}

/**
 * Every write etcd applied, in revision order, up to its current revision: a watch on the
 * whole key space from revision 1 over the JSON gateway (the test clusters never compact).
 */
export async function etcdHistory(endpoint: string): Promise<HistoryEvent[]> {
  const head = await gateway(endpoint, "/v3/kv/range", { key: btoa("\0"), count_only: true });
  const until = Number((head.header as { revision: string }).revision);
  const stop = AbortSignal.timeout(60_000);
  const r = await fetch(`${endpoint}/v3/watch`, {
    method: "POST",
    body: JSON.stringify({
      create_request: { key: btoa("\0"), range_end: btoa("\0"), start_revision: "1" },
    }),
    signal: stop,
  });
  const out: HistoryEvent[] = [];
  const text = new TextDecoder();
  let buf = "";
  const reader = r.body!.getReader();
  try {
    while (out.length === 0 || out[out.length - 1].modRevision < until) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`etcd's watch ended before revision ${until}`);
      buf += text.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { result?: { events?: RawEvent[] } };
        for (const e of msg.result?.events ?? []) out.push(event(e));
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return out;
}

interface RawEvent {
  type?: string;
  kv: { key: string; value?: string; mod_revision: string; create_revision?: string };
}

const utf8 = new TextDecoder();
const unb64 = (s: string | undefined) =>
  s ? utf8.decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0))) : "";

function event(e: RawEvent): HistoryEvent {
  return {
    type: e.type === "DELETE" ? "DELETE" : "PUT",
    key: unb64(e.kv.key),
    value: unb64(e.kv.value),
    modRevision: Number(e.kv.mod_revision),
    createRevision: Number(e.kv.create_revision ?? 0),
  };
}

/** The etcd client ports sync's process has open TCP connections to (from /proc). */
export async function connectedPorts(pid: number): Promise<Set<number>> {
  const inodes = new Set<string>();
  for await (const e of Deno.readDir(`/proc/${pid}/fd`)) {
    const link = await Deno.readLink(`/proc/${pid}/fd/${e.name}`).catch(() => "");
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1]);
  }
  const ports = new Set<number>();
  for (const table of ["tcp", "tcp6"]) {
    const text = await Deno.readTextFile(`/proc/${pid}/net/${table}`).catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // remote address, state 01 (ESTABLISHED), inode
      if (f.length > 9 && f[3] === "01" && inodes.has(f[9])) {
        ports.add(parseInt(f[2].split(":")[1], 16));
      }
    }
  }
  return ports;
}
