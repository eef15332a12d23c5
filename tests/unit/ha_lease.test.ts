/**
 * The `--ha` lease keep-alive (no servers): a scripted etcd whose keep-alives fail or answer
 * as each test says. What is asserted is the outcome: whether leadership ended, and why.
 */
import { assert, assertEquals } from "../../testing/assert.ts";
import { silentLog } from "../../src/core/log.ts";
import { keepLease } from "../../src/service/ha.ts";

/** Keep-alive answers in turn: a TTL in seconds, or an error; the last one repeats. */
function scripted(answers: (number | Error)[]) {
  const calls: number[] = [];
  return {
    calls,
    leaseKeepAlive(_id: string, timeoutMs?: number): Promise<number> {
      calls.push(timeoutMs ?? -1);
      const a = answers[Math.min(calls.length - 1, answers.length - 1)];
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
    },
  };
}

Deno.test("a keep-alive failing for less than the lease keeps leadership", async () => {
  const etcd = scripted([new Error("member frozen"), new Error("leader changed"), 1, 1, 1]);
  let stop = false;
  const lost = keepLease(etcd, "7", 1_000, Date.now(), () => stop, silentLog);
  // The 1 s lease is renewed at a third of it: five answers take well over one TTL.
  const deadline = Date.now() + 10_000;
  while (etcd.calls.length < 5) {
    assert(Date.now() < deadline, `waited 10 s for 5 keep-alives, saw ${etcd.calls.length}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  stop = true;
  assertEquals(await lost, undefined, "leadership ended although the lease was renewed");
  // Each try is bounded by what is left of the lease, not by the default request timeout.
  for (const ms of etcd.calls) assert(ms > 0 && ms <= 1_000, `keep-alive timeout ${ms} ms`);
});

Deno.test("a keep-alive failing past the lease ends leadership", async () => {
  const etcd = scripted([new Error("connection refused")]);
  const why = await keepLease(etcd, "7", 1_000, Date.now(), () => false, silentLog);
  assert(why !== undefined);
  assert(etcd.calls.length > 1, "a failed keep-alive was not tried again inside the lease");
});

Deno.test("a lease etcd says has expired ends leadership at once", async () => {
  const etcd = scripted([0]);
  const why = await keepLease(etcd, "7", 1_000, Date.now(), () => false, silentLog);
  assertEquals(why, "lease expired");
  assertEquals(etcd.calls.length, 1);
});
