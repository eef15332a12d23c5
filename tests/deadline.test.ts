/**
 * Every wait has a deadline (issue 12): a test that hangs fails after its deadline naming
 * its last step, with the servers it started stopped, and `deno test` reaches its summary
 * line; the torture's workload treats an op on a frozen database as an error and goes on.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "../testing/assert.ts";
import { DeadlineError, step, test, withDeadline } from "../testing/deadline.ts";
import { type EtcdServer, startEtcd } from "../testing/etcd.ts";
import { torture } from "../scripts/torture_lib/run.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const opts = { sanitizeOps: false, sanitizeResources: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  "a test stuck on a frozen server fails at its deadline, its server stopped",
  opts,
  async () => {
    let etcd: EtcdServer | undefined;
    try {
      const t0 = Date.now();
      const e = await assertRejects(
        () =>
          withDeadline("frozen", 20_000, async () => {
            etcd = await startEtcd(); // started by the body: the deadline stops it
            etcd.proc.signal("SIGSTOP");
            step("reading from a frozen etcd");
            // No timeout of its own: only the deadline ends this wait.
            await fetch(`${etcd.endpoint}/v3/kv/range`, {
              method: "POST",
              body: JSON.stringify({ key: btoa("k") }),
            });
          }),
        DeadlineError,
      );
      const took = Date.now() - t0;
      assertMatch(e.message, /did not finish within 20 s; last step: reading from a frozen etcd/);
      assertMatch(e.message, /stopped 1 process\(es\)/);
      assert(took < 60_000, `the deadline took ${took} ms to end the test`);
      const gone = await Promise.race([etcd!.proc.exited.then(() => true), sleep(1000)]);
      assert(gone === true, "the frozen etcd was stopped");
    } finally {
      await etcd?.close(); // its files (the process is gone)
    }
  },
);

test("deno test prints its summary line when a test hangs", opts, async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", "tests/fixtures/deadline/hang.ts"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const out = await child;
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 1, text);
  assertMatch(text, /last step: waiting for a sleeper that never ends/);
  assertMatch(text, /the sleeper was stopped at the deadline \.\.\. ok/);
  assertMatch(text, /FAILED \| 1 passed \| 1 failed/);
});

test("torture: a frozen database times the workload's op out; the run finishes", {
  ...opts,
  deadlineMs: 6 * 60_000,
}, async () => {
  const lines: string[] = [];
  const r = await torture({
    driver: "mysql",
    seed: 12,
    durationMs: 30_000,
    faults: ["db-freeze"],
    // One freeze, about 10 s in, for longer than an op may take (2 s).
    faultEveryMs: 12_000,
    opTimeoutMs: 2_000,
    catchupMs: 120_000,
    minChangesPerMin: 0,
    log: (l) => {
      lines.push(l);
      step(l);
    },
  });
  const why = `${r.line}\n${lines.join("\n")}`;
  assert(r.timeouts >= 1, `no op timed out: ${why}`);
  assert(r.errors >= r.timeouts, why);
  assertMatch(r.line, /faults=db-freeze:\d+ /, why);
  assertMatch(r.line, / workload_errors=\d+ timeouts=[1-9]\d* result=PASS$/, why);
  assertMatch(lines.join("\n"), /op timed out after 2000 ms/, why);
});

// A test file that starts servers or processes must register through the deadline: a plain
// Deno.test there could hang the suite again.
test("every integration test is registered with a deadline", async () => {
  const starts =
    /testing\/(etcd|postgres|mariadb|patroni|sync|process|embedded_pg)\.ts|Deno\.Command/;
  const plain: string[] = [];
  for await (const e of Deno.readDir(`${ROOT}tests`)) {
    if (!e.name.endsWith(".test.ts")) continue;
    const text = await Deno.readTextFile(`${ROOT}tests/${e.name}`);
    if (starts.test(text) && /^\s*Deno\.test\(/m.test(text)) plain.push(e.name);
  }
  assertEquals(plain.sort(), [], "use test() from testing/deadline.ts");
});
