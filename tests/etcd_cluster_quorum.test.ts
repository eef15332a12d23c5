/**
 * etcd's passing answers, made real (issue 15): while sync streams with every member's URL,
 * two of the three members are frozen (SIGSTOP), so the one sync talks to loses its quorum
 * and answers as etcd does then: `no leader` (sync sends etcd's require-leader metadata),
 * `request timed out` for a proposal that was waiting, or `leader changed`. Then they are
 * thawed. sync retries with backoff; `sync_etcd_retries_total{reason}` must have counted
 * each retry under the reason of the answer etcd gave (the debug log names each retry with
 * etcd's own words, so the two are compared one by one), at least one of them being such an
 * answer; no position is confirmed that etcd does not hold (sampled all along); and at the
 * end etcd equals the database.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals } from "../testing/assert.ts";
import { type ClusterMember, connectedPorts, startEtcdCluster } from "../testing/etcd_cluster.ts";
import { type PgServer, startPostgres } from "../testing/postgres.ts";
import { launchSync, streaming } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { freePort, waitFor } from "../testing/process.ts";
import { step } from "../testing/steps.ts";
import { type PositionSampler, samplePositions } from "../testing/position_sampler.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, deadlineMs: 150_000 };
const PREFIX = "/q";
const STATE_KEY = "/q-state/pgx-postgres";
/** Past etcd's own request timeout (7 s with default flags): a waiting proposal times out. */
const FROZEN_MS = 12_000;
/** The issue's target once a quorum is back. */
const REACH_MS = 10_000;
/** The answers a member without quorum gives, by the reason sync counts them under. */
const QUORUM_LOST = ["no_leader", "timed_out", "leader_changed"];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** etcd's own words (api/v3rpc/rpctypes/error.go) and the reason to count them under. */
function reasonOf(message: string): string | undefined {
  if (/etcdserver: no leader/.test(message)) return "no_leader";
  if (/etcdserver: leader changed/.test(message)) return "leader_changed";
  if (/etcdserver: request timed out/.test(message)) return "timed_out";
  if (/etcdserver: too many requests/.test(message)) return "too_many_requests";
  return undefined;
}

interface Logged {
  /** Every retry the debug log names, by the reason sync gave. */
  counts: Record<string, number>;
  /** Those that were etcd's own answer, by reason. */
  answered: Record<string, number>;
  /** etcd's answers logged under another reason than theirs. */
  wrong: string[];
}

/** The retries sync's debug log names ("etcd retry", with the reason and etcd's words). */
function loggedRetries(output: string): Logged {
  const out: Logged = { counts: {}, answered: {}, wrong: [] };
  const line = /msg="etcd retry" reason=(\w+) endpoint=\S+ message=("(?:[^"\\]|\\.)*"|\S+)/g;
  for (const [, reason, raw] of output.matchAll(line)) {
    out.counts[reason] = (out.counts[reason] ?? 0) + 1;
    const message = raw.startsWith('"') ? JSON.parse(raw) as string : raw;
    const expected = reasonOf(message);
    if (expected) out.answered[expected] = (out.answered[expected] ?? 0) + 1;
    if (expected && expected !== reason) out.wrong.push(`${reason}: ${message}`);
  }
  return out;
}

/** `sync_etcd_retries_total` by reason, from sync's /metrics. */
async function metricRetries(port: number): Promise<Record<string, number>> {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) });
  assertEquals(r.status, 200);
  const text = await r.text();
  const out: Record<string, number> = {};
  for (
    const [, reason, n] of text.matchAll(/^sync_etcd_retries_total\{reason="(\w+)"\} (\d+)$/gm)
  ) {
    if (+n > 0) out[reason] = +n;
  }
  return out;
}

/**
 * `sync_etcd_retries_total` counted every retry the debug log names, under the reason of
 * etcd's answer, and at least one answer a member without quorum gives was etcd's own;
 * returns the reasons etcd answered with.
 */
async function assertCounted(port: number, output: () => string): Promise<string[]> {
  const before = loggedRetries(output());
  const metric = await metricRetries(port);
  const after = loggedRetries(output());
  console.log(`retries: metric ${JSON.stringify(metric)}, log ${JSON.stringify(after.counts)}`);
  assertEquals(after.wrong, [], `retries counted under the wrong reason: ${after.wrong}`);
  for (const r of new Set([...Object.keys(metric), ...Object.keys(after.counts)])) {
    const n = metric[r] ?? 0;
    assert(
      (before.counts[r] ?? 0) <= n && n <= (after.counts[r] ?? 0),
      `sync_etcd_retries_total{reason="${r}"} is ${n}, the log names ${after.counts[r] ?? 0}`,
    );
  }
  // etcd itself answered so (not only sync's own term check giving up a request).
  const seen = QUORUM_LOST.filter((r) => (after.answered[r] ?? 0) > 0);
  assert(
    seen.length > 0,
    `etcd gave none of ${QUORUM_LOST}: ${JSON.stringify(after.answered)}, ${
      JSON.stringify(metric)
    }`,
  );
  return seen;
}

/** Commit marker row `n` and wait until `m` holds it (a linearizable read: with quorum). */
async function reaches(pg: PgServer, m: ClusterMember, n: number, what: string, out: () => string) {
  const id = 2_000_000 + n;
  const t0 = Date.now();
  await pg.sql`INSERT INTO t (id, v) VALUES (${id}, ${what})`;
  await waitFor(
    `row ${id} to reach etcd within ${REACH_MS / 1000} s (${what})`,
    async () => {
      const r = await fetch(`${m.endpoint}/v3/kv/range`, {
        method: "POST",
        body: JSON.stringify({ key: btoa(`${PREFIX}/t/${id}`) }),
        signal: AbortSignal.timeout(2_000),
      });
      return ((await r.json()) as { kvs?: unknown[] }).kvs !== undefined;
    },
    REACH_MS,
    () => out().split("\n").slice(-20).join("\n"),
  );
  const ms = Date.now() - t0;
  step(`row ${id} reached etcd in ${ms} ms (${what})`);
  return ms;
}

test("etcd cluster: a member without quorum, its answers retried and counted", opts, async () => {
  const [cluster, pg] = await Promise.all([startEtcdCluster(), startPostgres()]);
  await pg.sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
  await pg.sql`INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g`;
  const port = freePort();
  // Default flags, but the debug level: it logs each retry with etcd's answer.
  const sync = launchSync([
    "--driver=pgx",
    `--db-url=${pg.url}`,
    `--etcd-endpoints=${cluster.seeds.join(",")}`,
    `--etcd-prefix=${PREFIX}`,
    `--http-addr=127.0.0.1:${port}`,
    "--log-level=debug",
  ]);
  const out = () => sync.output();
  let stopped = false;
  let writes: Promise<number> = Promise.resolve(0);
  let positions: PositionSampler | undefined;
  try {
    await streaming(sync);
    positions = samplePositions({
      sql: pg.sql,
      stateKey: STATE_KEY,
      endpoints: () => cluster.members.filter((m) => m.running && !m.frozen).map((m) => m.endpoint),
    });
    // A transaction every 25 ms, before, during and after the quorum is lost.
    writes = (async () => {
      let i = 0;
      for (; !stopped; i++) {
        await pg.sql.begin(async (tx) => {
          await tx`INSERT INTO t (id, v) VALUES (${1_000_000 + i}, ${`i${i}`})`;
          await tx`UPDATE t SET v = ${`w${i}`} WHERE id = ${1 + (i % 100)}`;
        });
        await sleep(25);
      }
      return i;
    })();
    await reaches(pg, cluster.members[0], 1, "all members up", out);

    const used = await memberInUse(sync.pid, cluster.members);
    const others = cluster.members.filter((m) => m !== used);
    for (const m of others) m.freeze();
    step(`${used.name} alone: no quorum for ${FROZEN_MS / 1000} s`);
    await sleep(FROZEN_MS);
    for (const m of others) m.thaw();
    const ms = await reaches(pg, used, 2, "quorum back", out);

    stopped = true;
    step(`workload stopped after ${await writes} transactions`);
    await positions.check();
    await assertConverges(
      used.endpoint,
      `${PREFIX}/`,
      () => expectedFromPg(pg.sql, PREFIX),
      60_000,
    );
    await positions.check();
    const { samples, skipped } = await positions.stop();
    const seen = await assertCounted(port, out);
    console.log(
      `figure: reasons counted without quorum ${seen.join(", ")}; ${ms} ms for a change after ` +
        `the thaw; positions held in ${samples} samples (${skipped} without an answer)`,
    );
  } finally {
    stopped = true;
    await writes.catch(() => {});
    await positions?.stop().catch(() => {});
    await sync.stop();
    await pg.close();
    await cluster.close();
  }
});

/** The member process `pid` holds its one etcd connection to. */
async function memberInUse(pid: number, members: ClusterMember[]): Promise<ClusterMember> {
  let found: ClusterMember | undefined;
  await waitFor("sync to hold a connection to one etcd member", async () => {
    const ports = await connectedPorts(pid);
    const using = members.filter((m) => ports.has(m.clientPort));
    found = using.length === 1 ? using[0] : undefined;
    return found !== undefined;
  }, 10_000);
  return found!;
}
