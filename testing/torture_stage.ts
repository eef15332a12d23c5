/**
 * The short CI stage of the randomized convergence runs: scripts/torture for 2 minutes per
 * driver, every fault kind the driver takes (Patroni failovers for pgx), fixed seeds (a
 * failure reproduces with the printed command). One test file per driver
 * (tests/torture_pgx.test.ts, tests/torture_mysql.test.ts), so the suite runs them side by
 * side instead of one after the other at its end. The run is its own process, so its servers
 * and sync are stopped by its own clean-up (SIGTERM, also at the test's deadline), and the
 * test reads its summary line and exit status.
 */
import { assert, assertEquals } from "./assert.ts";
import { step, test } from "./deadline.ts";
import { track } from "./process.ts";
import { FAULTS, faultsFor } from "../scripts/torture_lib/run.ts";

const ROOT = new URL("../", import.meta.url).pathname;
// 2 minutes of faults, up to 5 of catch-up, the servers' start and stop on a loaded machine.
const opts = { sanitizeOps: false, sanitizeResources: false, deadlineMs: 14 * 60_000 };

/** Lines of `s` as they arrive, each passed to `each`; resolves to all of them. */
async function lines(s: ReadableStream<Uint8Array>, each: (l: string) => void) {
  const all: string[] = [];
  let buf = "";
  for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
    const parts = (buf + chunk).split("\n");
    buf = parts.pop()!;
    for (const l of parts) {
      each(l);
      all.push(l);
    }
  }
  if (buf) all.push(buf);
  return all;
}

/** The 2-minute run of `driver` with every fault kind it takes, in the torture's own order. */
export function tortureTest(driver: "pgx" | "mysql", seed: number): void {
  const r = { driver, seed, faults: faultsFor(driver, FAULTS) };
  test(`torture: ${r.driver} 2m, every fault, seed ${r.seed}`, opts, async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "scripts/torture.ts",
        `--driver=${r.driver}`,
        "--duration=2m",
        `--seed=${r.seed}`,
        `--faults=${r.faults.join(",")}`,
        // Generous: a loaded 2-core machine may need long after the last fault.
        "--catchup=5m",
      ],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // At the deadline it gets SIGTERM and a minute to stop its servers by PID.
    track(child, { graceMs: 60_000 });
    // Its progress lines are the test's steps: a hung run fails naming where it was.
    const [out, err, st] = await Promise.all([
      lines(child.stdout, () => {}),
      lines(child.stderr, (l) => step(`torture: ${l}`)),
      child.status,
    ]);
    const line = out.find((l) => l.startsWith("torture ")) ?? "";
    console.log(line || "(no summary line)");
    const why = `scripts/torture --driver ${r.driver} --duration 2m --seed ${r.seed}\n` +
      `${line}\n--- progress:\n${err.slice(-60).join("\n")}`;
    assert(/ result=PASS$/.test(line), why);
    assertEquals(st.code, 0, why);
    // Every enabled kind took effect at least once (the plan deals them like cards; one
    // that found nothing to act on is not counted).
    const took = / faults=(\S+)/.exec(line)?.[1] ?? "";
    for (const f of r.faults) assert(new RegExp(`(^|,)${f}:\\d+`).test(took), `no ${f}: ${why}`);
  });
}
