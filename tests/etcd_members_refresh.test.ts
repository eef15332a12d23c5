/**
 * The etcd client reads the member list again every `memberSyncMs` (src/etcd/client.ts,
 * issue 15), not only when it connects and after a failure: given one member's URL of a
 * real three-member cluster and writing every 100 ms, it uses every member from its first
 * request; a member added as a learner is left out until promoted and then used, and a
 * member removed is dropped, each within a few reads of the list and without one request
 * failing or being retried first.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals } from "../testing/assert.ts";
import { type ClusterMember, type EtcdCluster, startEtcdCluster } from "../testing/etcd_cluster.ts";
import { waitFor } from "../testing/process.ts";
import { step } from "../testing/steps.ts";
import { EtcdClient } from "../src/etcd/client.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, deadlineMs: 180_000 };
/** Short, so that a test sees several reads of the list in a few seconds. */
const SYNC_MS = 300;
/** A change of membership must show in the client's endpoints within this. */
const FOLLOW_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sorted = (l: readonly string[]) => [...l].sort();

/** A put every 100 ms until stopped; every failure and retry is recorded. */
function writer(client: EtcdClient, failures: string[]) {
  let stopped = false;
  let n = 0;
  const done = (async () => {
    while (!stopped) {
      try {
        await client.put(`/members/${n % 50}`, `w${n}`);
      } catch (e) {
        failures.push(`put ${n} failed: ${(e as Error).message}`);
      }
      n++;
      await sleep(100);
    }
  })();
  return {
    count: () => n,
    async stop() {
      stopped = true;
      await done;
      return n;
    },
  };
}

/** A member that neither leads, nor is the client's current endpoint, nor is `keep`. */
async function removable(
  cluster: EtcdCluster,
  client: EtcdClient,
  keep: ClusterMember,
): Promise<ClusterMember> {
  const leader = await cluster.leader();
  const m = cluster.members.find((m) =>
    m !== leader && m !== keep && m.endpoint !== client.endpoint
  );
  if (!m) throw new Error("no member that is neither the leader, the seed nor in use");
  return m;
}

test("etcd client: the member list is read again every memberSyncMs", opts, async () => {
  const cluster = await startEtcdCluster();
  const seed = cluster.members[0];
  /** Every list `onEndpoints` reported, and when (before or after the promotion). */
  const lists: string[][] = [];
  const failures: string[] = [];
  const client = new EtcdClient({
    endpoints: [seed.endpoint],
    memberSyncMs: SYNC_MS,
    timeoutMs: 10_000,
    onEndpoints: (l) => lists.push([...l]),
    onRetry: (reason, at, message) => failures.push(`retry (${reason}) at ${at}: ${message}`),
  });
  const w = writer(client, failures);
  const detail = () =>
    `endpoints now: ${client.endpoints.join(", ")}\nlists: ${JSON.stringify(lists)}\n` +
    `failures: ${failures.join("\n")}`;
  try {
    await waitFor("the first put", () => w.count() > 0, 10_000, detail);
    // The list is read before the first request goes out: every member from then on.
    const all = cluster.members.map((m) => m.endpoint);
    assertEquals(sorted(client.endpoints), sorted(all), detail());
    assertEquals(lists.length, 1, detail());

    const learner = await cluster.addLearner();
    // Its client URL is in the list once it started: many reads of the list, not used.
    const learning = Date.now();
    while (Date.now() - learning < 10 * SYNC_MS) {
      assert(!client.endpoints.includes(learner.endpoint), `learner in use\n${detail()}`);
      await sleep(SYNC_MS / 3);
    }
    const beforePromotion = lists.length;
    await cluster.promote(learner);
    const promoted = Date.now();
    await waitFor(
      `the promoted member ${learner.name} among the client's endpoints`,
      () => client.endpoints.includes(learner.endpoint),
      FOLLOW_MS,
      detail,
    );
    step(`${learner.name} used ${Date.now() - promoted} ms after its promotion`);
    console.log(`promoted member used ${Date.now() - promoted} ms after its promotion`);
    for (const l of lists.slice(0, beforePromotion)) {
      assert(!l.includes(learner.endpoint), `a learner among the endpoints\n${detail()}`);
    }
    assertEquals(sorted(client.endpoints), sorted([...all, learner.endpoint]), detail());
    assertEquals(failures, [], "a request failed or was retried while a member was added");

    const gone = await removable(cluster, client, seed);
    await cluster.remove(gone);
    const removed = Date.now();
    await waitFor(
      `the removed member ${gone.name} to leave the client's endpoints`,
      () => !client.endpoints.includes(gone.endpoint),
      FOLLOW_MS,
      detail,
    );
    console.log(`removed member dropped ${Date.now() - removed} ms after its removal`);
    assertEquals(
      sorted(client.endpoints),
      sorted(cluster.members.map((m) => m.endpoint)),
      detail(),
    );
    const n = await w.stop();
    assert(n > 20, `only ${n} puts`);
    assertEquals(failures, [], "a request failed or was retried");
  } finally {
    await w.stop();
    client.close();
    await cluster.close();
  }
});
