/**
 * `--ha` on a three-member etcd cluster (issue 15): two sync processes with every member's
 * URL, one leading, while a workload streams. First test (`--ha-ttl=5s`): the member the
 * leader talks to is frozen (SIGSTOP) past the request timeout, then the leading process
 * itself is frozen past its lease so the other takes over, and thawed (its transactions in
 * flight must not land). Second test (the default `--ha-ttl`): etcd's leader is killed
 * (SIGKILL) while streaming and restarted, then every member is restarted in turn.
 *
 * In both, the proof that exactly one leader wrote at a time is read from etcd's own
 * history (testing/ha_history.ts); no position is confirmed that etcd does not hold
 * (sampled every 150 ms, testing/position_sampler.ts); and etcd equals the database at the
 * end (the independent checker).
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals } from "../testing/assert.ts";
import {
  type ClusterMember,
  connectedPorts,
  type EtcdCluster,
  etcdHistory,
  startEtcdCluster,
} from "../testing/etcd_cluster.ts";
import { type PgServer, startPostgres } from "../testing/postgres.ts";
import { launchSync, type SyncRun } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { waitFor } from "../testing/process.ts";
import { step } from "../testing/steps.ts";
import { judgeHistory } from "../testing/ha_history.ts";
import { type PositionSampler, samplePositions } from "../testing/position_sampler.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, deadlineMs: 240_000 };
const PREFIX = "/h";
const STATE_KEY = "/h-state/pgx-postgres";
/** The issue's target with one member down or frozen; a takeover adds the lease's TTL. */
const REACH_MS = 10_000;
const TTL_S = 5;
/** `--ha-ttl`'s default. */
const DEFAULT_TTL_S = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Setup {
  cluster: EtcdCluster;
  pg: PgServer;
  syncs: Record<"a" | "b", SyncRun>;
  stop?: () => Promise<number>;
  positions?: PositionSampler;
}

/** Two `--ha` processes, `ttl` their `--ha-ttl` (seconds), or the default when undefined. */
async function setup(ttl?: number): Promise<Setup> {
  const [cluster, pg] = await Promise.all([startEtcdCluster(), startPostgres()]);
  await pg.sql`CREATE TABLE t (id int PRIMARY KEY, v text, n int NOT NULL DEFAULT 0)`;
  await pg.sql`INSERT INTO t SELECT g, 'v' || g, 0 FROM generate_series(1, 1000) g`;
  const run = (id: string) =>
    launchSync([
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${cluster.seeds.join(",")}`,
      `--etcd-prefix=${PREFIX}`,
      "--ha",
      ...(ttl === undefined ? [] : [`--ha-ttl=${ttl}s`]),
      `--ha-id=${id}`,
    ]);
  return { cluster, pg, syncs: { a: run("a"), b: run("b") } };
}

/** Sample the confirmed position against etcd's state from now to the end (once streaming). */
function watchPositions(s: Setup): void {
  s.positions = samplePositions({
    sql: s.pg.sql,
    stateKey: STATE_KEY,
    endpoints: () => s.cluster.members.filter((m) => m.running && !m.frozen).map((m) => m.endpoint),
  });
}

async function teardown(s: Setup): Promise<void> {
  await s.stop?.().catch(() => {});
  await s.positions?.stop().catch(() => {});
  await Promise.all([s.syncs.a.stop(), s.syncs.b.stop()]);
  await s.pg.close();
  await s.cluster.close();
}

/**
 * The end of both tests: the workload stopped, etcd equals the database, no position was
 * confirmed that etcd did not hold, and etcd's history shows one leader writing at a time.
 * Returns the leadership terms it read.
 */
async function oneLeaderWrote(s: Setup): Promise<string[]> {
  const n = await s.stop!();
  step(`workload stopped after ${n} transactions`);
  await s.positions!.check();
  await assertConverges(
    s.cluster.live().endpoint,
    `${PREFIX}/`,
    () => expectedFromPg(s.pg.sql, PREFIX),
    60_000,
  );
  await s.positions!.check();
  const { samples, skipped } = await s.positions!.stop();
  console.log(`positions held in ${samples} samples (${skipped} with etcd not answering)`);
  const history = await etcdHistory(s.cluster.live().endpoint);
  const { terms, problems } = judgeHistory(history, PREFIX, STATE_KEY);
  console.log(terms.join("\n"));
  for (const id of ["a", "b"] as const) {
    const lines = s.syncs[id].output().split("\n").filter((l) => /leadership|no longer/.test(l));
    console.log(`sync ${id}: ${lines.join("\n  ") || "kept or never lost leadership"}`);
  }
  assertEquals(problems, [], problems.slice(0, 20).join("\n"));
  return terms;
}

/** Transactions every 25 ms: updates to 100 hot rows (a stale write shows), inserts. */
function workload(s: Setup): void {
  let stopped = false;
  let n = 0;
  const done = (async () => {
    while (!stopped) {
      const i = n++;
      await s.pg.sql.begin(async (tx) => {
        await tx`UPDATE t SET n = n + 1, v = ${`w${i}`} WHERE id = ${1 + (i % 100)}`;
        await tx`INSERT INTO t (id, v) VALUES (${1_000_000 + i}, ${`i${i}`})`;
      });
      await sleep(25);
    }
  })();
  done.catch(() => {});
  s.stop = async () => {
    stopped = true;
    await done;
    return n;
  };
}

/** The process that leads now: its last election line says so. */
async function leading(s: Setup, timeoutMs = 60_000): Promise<"a" | "b"> {
  let who: "a" | "b" | undefined;
  const last = (p: SyncRun) => {
    const out = p.output();
    const won = out.lastIndexOf("msg=leader ");
    const lost = Math.max(out.lastIndexOf("leadership lost"), out.lastIndexOf("no longer the"));
    return won > lost ? out.length : -1;
  };
  await waitFor(
    "one sync process to lead and stream",
    () => {
      const [a, b] = [last(s.syncs.a), last(s.syncs.b)];
      who = a > 0 && b > 0 ? undefined : a > 0 ? "a" : b > 0 ? "b" : undefined;
      return who !== undefined && /msg=streaming/.test(s.syncs[who].output());
    },
    timeoutMs,
    () => `a:\n${s.syncs.a.output()}\nb:\n${s.syncs.b.output()}`,
  );
  return who!;
}

let markers = 0;

/** Commit a row and wait until etcd holds it; returns how long it took. */
async function reaches(s: Setup, what: string, within = REACH_MS): Promise<number> {
  const id = 2_000_000 + ++markers;
  const t0 = Date.now();
  await s.pg.sql`INSERT INTO t (id, v) VALUES (${id}, ${what})`;
  await waitFor(
    `row ${id} to reach etcd within ${within / 1000} s (${what})`,
    async () => {
      const r = await fetch(`${s.cluster.live().endpoint}/v3/kv/range`, {
        method: "POST",
        body: JSON.stringify({ key: btoa(`${PREFIX}/t/${id}`), serializable: true }),
        signal: AbortSignal.timeout(2_000),
      });
      return ((await r.json()) as { kvs?: unknown[] }).kvs !== undefined;
    },
    within,
    () => `a:\n${s.syncs.a.output().slice(-3000)}\nb:\n${s.syncs.b.output().slice(-3000)}`,
  );
  const ms = Date.now() - t0;
  step(`row ${id} reached etcd in ${ms} ms (${what})`);
  return ms;
}

/** The member process `pid` sends its requests to (the one it holds a connection to). */
async function memberInUse(s: Setup, pid: number): Promise<ClusterMember> {
  let found: ClusterMember | undefined;
  await waitFor("the leader to hold a connection to one etcd member", async () => {
    const ports = await connectedPorts(pid);
    const using = s.cluster.members.filter((m) => ports.has(m.clientPort));
    found = using.length === 1 ? using[0] : undefined;
    return found !== undefined;
  }, 10_000);
  return found!;
}

test(
  "etcd cluster --ha: one leader writes through a frozen member and a takeover",
  opts,
  async () => {
    const s = await setup(TTL_S);
    try {
      const first = await leading(s, 90_000);
      watchPositions(s);
      workload(s);
      await reaches(s, `${first} leads, all members up`);

      // The member the leader talks to frozen past --etcd-timeout (30 s).
      const used = await memberInUse(s, s.syncs[first].pid);
      const t0 = Date.now();
      used.freeze();
      let worst = 0;
      while (Date.now() - t0 < 32_000) {
        // A leader whose keep-alive hung may lose the lease: then the other takes over.
        worst = Math.max(worst, await reaches(s, `${used.name} frozen`, REACH_MS + TTL_S * 1000));
        await sleep(3_000);
      }
      used.thaw();
      await reaches(s, `${used.name} thawed`);

      // The leading process frozen past its lease: the other takes over; thawed, the old
      // one's transactions in flight are refused and it becomes a standby.
      const old = await leading(s);
      const other = old === "a" ? "b" : "a";
      step(`freezing the leading sync ${old} (SIGSTOP)`);
      s.syncs[old].kill("SIGSTOP");
      const t1 = Date.now();
      await reaches(s, `sync ${old} frozen`, 60_000);
      const takeover = Date.now() - t1;
      s.syncs[old].kill("SIGCONT");
      step(`thawed sync ${old} (SIGCONT)`);
      assertEquals(await leading(s), other);
      await waitFor(
        `sync ${old} to step down`,
        () => /leadership lost|no longer the leader/.test(s.syncs[old].output()),
        30_000,
        () => s.syncs[old].output(),
      );
      await reaches(s, `sync ${other} leads, ${old} thawed`);
      await sleep(2_000);

      const terms = await oneLeaderWrote(s);
      assert(terms.length >= 3, `two leadership terms at least:\n${terms.join("\n")}`);
      console.log(
        `figure: worst ${worst} ms with the member in use frozen; ${takeover} ms to a change ` +
          `in etcd after the leading process froze (lease ${TTL_S} s)`,
      );
    } finally {
      await teardown(s);
    }
  },
);

test(
  "etcd cluster --ha: one leader writes through a killed etcd leader and a rolling restart",
  opts,
  async () => {
    // The default --ha-ttl: etcd extends every lease when a new etcd leader is elected, so
    // neither fault needs a short lease to be waited out.
    const s = await setup();
    try {
      const first = await leading(s, 90_000);
      watchPositions(s);
      workload(s);
      await reaches(s, `${first} leads, all members up`);
      // A change may wait for a takeover if a fault cost the leader its lease.
      const within = REACH_MS + DEFAULT_TTL_S * 1000;
      let worst = 0;
      const reach = async (what: string) => {
        worst = Math.max(worst, await reaches(s, what, within));
      };

      const leader = await s.cluster.leader();
      await leader.stop(true);
      await reach(`etcd leader ${leader.name} just killed`);
      await sleep(2_000);
      await reach(`etcd leader ${leader.name} down`);
      await leader.restart();
      await reach(`${leader.name} back`);

      for (const m of [...s.cluster.members]) {
        await m.stop();
        await reach(`${m.name} stopped`);
        await m.restart();
        await reach(`${m.name} restarted`);
      }
      await sleep(2_000);

      const terms = await oneLeaderWrote(s);
      const states = /states written per leader: (.*)$/.exec(terms[terms.length - 1])?.[1];
      assert(states && states !== "{}", `no state written by a leader: ${terms.join("\n")}`);
      // The last line sums the states up; the others are one term each.
      const leaders = terms.filter((t) => t.startsWith("rev ")).length;
      console.log(
        `figure: worst ${worst} ms for a change with the etcd leader killed or a member ` +
          `restarting (lease ${DEFAULT_TTL_S} s, ${leaders - 1} leadership changes)`,
      );
    } finally {
      await teardown(s);
    }
  },
);
