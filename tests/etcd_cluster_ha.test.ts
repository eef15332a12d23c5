/**
 * `--ha` on a three-member etcd cluster (issue 15): two sync processes with every member's
 * URL, one leading, while a workload streams: the member the leader talks to is frozen
 * (SIGSTOP) past the request timeout, then the leading process itself is frozen past its
 * lease so the other takes over, and thawed (its transactions in flight must not land).
 *
 * The proof that exactly one leader wrote at a time is read from etcd's own history (a
 * watch from revision 1): the election's keys give each leadership term (the candidate key
 * with the lowest create revision leads, etcd's election recipe); every state the sink
 * wrote names the leader key its transaction was fenced by, and must name the leader of the
 * term its revision falls in; every data write must fall in a term; the saved position
 * never goes back. And etcd equals the database at the end (the independent checker).
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals } from "../testing/assert.ts";
import {
  type ClusterMember,
  connectedPorts,
  type EtcdCluster,
  etcdHistory,
  type HistoryEvent,
  startEtcdCluster,
} from "../testing/etcd_cluster.ts";
import { type PgServer, startPostgres } from "../testing/postgres.ts";
import { launchSync, type SyncRun } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { waitFor } from "../testing/process.ts";
import { step } from "../testing/steps.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, deadlineMs: 240_000 };
const PREFIX = "/h";
const STATE_KEY = "/h-state/pgx-postgres";
const ELECTION = `${STATE_KEY}/leader/`;
/** The issue's target with one member down or frozen; a takeover adds the lease's TTL. */
const REACH_MS = 10_000;
const TTL_S = 5;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Setup {
  cluster: EtcdCluster;
  pg: PgServer;
  syncs: Record<"a" | "b", SyncRun>;
  stop?: () => Promise<number>;
}

async function setup(): Promise<Setup> {
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
      `--ha-ttl=${TTL_S}s`,
      `--ha-id=${id}`,
    ]);
  return { cluster, pg, syncs: { a: run("a"), b: run("b") } };
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

const lsn = (text: string): bigint => {
  const [hi, lo] = text.split("/");
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
};

/** What etcd's history says about who wrote: one line per term, and any violation. */
function judgeHistory(events: HistoryEvent[]): { terms: string[]; problems: string[] } {
  const candidates = new Map<string, { created: number; id: string }>();
  const leaderNow = () => {
    let best: [string, { created: number; id: string }] | undefined;
    for (const c of candidates) if (!best || c[1].created < best[1].created) best = c;
    return best;
  };
  const terms: string[] = [];
  const problems: string[] = [];
  const writes = new Map<string, number>();
  let lastLsn = -1n;
  let i = 0;
  while (i < events.length) {
    // One transaction's events share a revision: judged against the term before it.
    const rev = events[i].modRevision;
    const leader = leaderNow();
    const txn: HistoryEvent[] = [];
    while (i < events.length && events[i].modRevision === rev) txn.push(events[i++]);
    for (const e of txn) {
      if (e.key.startsWith(ELECTION)) continue;
      if (e.key === STATE_KEY && e.type === "PUT") {
        const state = JSON.parse(e.value) as { leader?: string; position?: { lsn?: string } };
        if (state.leader !== leader?.[0]) {
          problems.push(
            `rev ${rev}: a state fenced by ${state.leader} while ${leader?.[0]} led`,
          );
        }
        const at = state.position?.lsn ? lsn(state.position.lsn) : -1n;
        if (at < lastLsn) problems.push(`rev ${rev}: the saved position went back`);
        lastLsn = at > lastLsn ? at : lastLsn;
        if (leader) writes.set(leader[1].id, (writes.get(leader[1].id) ?? 0) + 1);
      } else if (e.key.startsWith(`${PREFIX}/`) && !leader) {
        problems.push(`rev ${rev}: ${e.type} ${e.key} while no process led`);
      }
    }
    for (const e of txn) {
      if (!e.key.startsWith(ELECTION)) continue;
      const before = leaderNow()?.[0];
      if (e.type === "PUT" && !candidates.has(e.key)) {
        candidates.set(e.key, { created: e.createRevision, id: e.value });
      } else if (e.type === "DELETE") candidates.delete(e.key);
      const after = leaderNow();
      const who = candidates.get(e.key)?.id ?? e.key.slice(ELECTION.length);
      const now = after ? `${after[1].id} leads` : "no leader";
      if (after?.[0] !== before) terms.push(`rev ${rev}: ${e.type} ${who}: ${now}`);
    }
  }
  terms.push(`states written per leader: ${JSON.stringify(Object.fromEntries(writes))}`);
  return { terms, problems };
}

test(
  "etcd cluster --ha: one leader writes through a frozen member and a takeover",
  opts,
  async () => {
    const s = await setup();
    try {
      const first = await leading(s, 90_000);
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

      const n = await s.stop!();
      step(`workload stopped after ${n} transactions`);
      await assertConverges(
        s.cluster.live().endpoint,
        `${PREFIX}/`,
        () => expectedFromPg(s.pg.sql, PREFIX),
        60_000,
      );
      const { terms, problems } = judgeHistory(await etcdHistory(s.cluster.live().endpoint));
      console.log(terms.join("\n"));
      for (const id of ["a", "b"] as const) {
        const lines = s.syncs[id].output().split("\n").filter((l) =>
          /leadership|no longer/.test(l)
        );
        console.log(`sync ${id}: ${lines.join("\n  ") || "kept or never lost leadership"}`);
      }
      assertEquals(problems, [], problems.slice(0, 20).join("\n"));
      assert(terms.length >= 3, `two leadership terms at least:\n${terms.join("\n")}`);
      console.log(
        `figure: worst ${worst} ms with the member in use frozen; ${takeover} ms to a change ` +
          `in etcd after the leading process froze (lease ${TTL_S} s)`,
      );
    } finally {
      await s.stop?.().catch(() => {});
      await Promise.all([s.syncs.a.stop(), s.syncs.b.stop()]);
      await s.pg.close();
      await s.cluster.close();
    }
  },
);
