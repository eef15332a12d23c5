/**
 * The short CI stage of the randomized convergence runs: scripts/torture for 2 minutes per
 * driver, every fault kind the driver takes (Patroni failovers for pgx), fixed seeds (a failure reproduces with the
 * printed command). The run is its own process, so its servers and sync are stopped by its
 * own cleanup, and the test only reads its summary line and exit status.
 */
import { assert, assertEquals } from "./harness/assert.ts";
import { FAULTS, faultsFor } from "../scripts/torture_lib/run.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const opts = { sanitizeOps: false, sanitizeResources: false };

// Every fault kind the driver takes, in the torture's own order (the plan depends on it).
const RUNS = [
  { driver: "pgx", seed: 6103, faults: faultsFor("pgx", FAULTS) },
  { driver: "mysql", seed: 6102, faults: faultsFor("mysql", FAULTS) },
];

for (const r of RUNS) {
  Deno.test(`torture: ${r.driver} 2m, every fault, seed ${r.seed}`, opts, async () => {
    const args = [
      "run",
      "--allow-all",
      "scripts/torture.ts",
      `--driver=${r.driver}`,
      "--duration=2m",
      `--seed=${r.seed}`,
      `--faults=${r.faults.join(",")}`,
      // Generous: a loaded 2-core machine may need long after the last fault.
      "--catchup=5m",
    ];
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Only a hung run is stopped: SIGTERM lets it stop its servers by PID.
    const guard = setTimeout(() => child.kill("SIGTERM"), 15 * 60_000);
    const out = await child.output();
    clearTimeout(guard);
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    const line = stdout.split("\n").find((l) => l.startsWith("torture ")) ?? "";
    console.log(line || "(no summary line)");
    const why = `scripts/torture --driver ${r.driver} --duration 2m --seed ${r.seed}\n` +
      `${line}\n--- progress:\n${stderr.split("\n").slice(-60).join("\n")}`;
    assert(/ result=PASS$/.test(line), why);
    assertEquals(out.code, 0, why);
    // Every enabled kind was injected at least once (the plan deals them like cards).
    for (const f of r.faults) assert(new RegExp(`[=,]${f}:\\d+`).test(line), `no ${f}: ${why}`);
  });
}
