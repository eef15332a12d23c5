/**
 * `scripts/torture --driver pgx|mysql|both --duration 2m --seed N [--faults a,b,...]`:
 * randomized convergence runs. Prints one summary line per driver on stdout (progress on
 * stderr) and exits 1 when a run fails.
 */
import {
  cleanupAll,
  EXTRA_FAULTS,
  type Fault,
  FAULTS,
  faultsFor,
  torture,
} from "./torture_lib/run.ts";
import type { Driver } from "./torture_lib/targets.ts";

const KNOWN: readonly Fault[] = [...FAULTS, ...EXTRA_FAULTS];
const USAGE = "usage: scripts/torture --driver pgx|mysql|both --duration 2m --seed N " +
  `[--faults ${FAULTS.join(",")}] [--catchup 4m] [--fault-every 10s] [--op-timeout 30s] ` +
  `[--min-rate 1000] (more faults on request: ${EXTRA_FAULTS.join(",")})`;

function fail(msg: string): never {
  console.error(`torture: ${msg}\n${USAGE}`);
  Deno.exit(2);
}

/** `90s`, `2m`, `1h`, `1500ms`, or plain seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) fail(`bad duration ${s}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "s"]!;
  return Math.round(Number(m[1]) * unit);
}

function parseArgs(args: string[]) {
  const o: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-h" || a === "--help") {
      console.log(USAGE);
      Deno.exit(0);
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) fail(`unexpected argument ${a}`);
    const v = m[2] ?? args[++i];
    if (v === undefined) fail(`--${m[1]} needs a value`);
    o[m[1]] = v;
  }
  for (const k of Object.keys(o)) {
    const known = ["driver", "duration", "seed", "faults", "catchup", "fault-every"];
    if (![...known, "op-timeout", "min-rate"].includes(k)) {
      fail(`unknown option --${k}`);
    }
  }
  const driver = o.driver ?? "both";
  if (!["pgx", "mysql", "both"].includes(driver)) fail(`bad driver ${driver}`);
  const seed = o.seed === undefined ? Math.floor(Math.random() * 1e9) : Number(o.seed);
  if (!Number.isInteger(seed) || seed < 0) fail(`bad seed ${o.seed}`);
  const faults = (o.faults ?? FAULTS.join(","))
    .split(",").map((f) => f.trim()).filter(Boolean);
  for (const f of faults) if (!KNOWN.includes(f as Fault)) fail(`unknown fault ${f}`);
  const minRate = o["min-rate"] === undefined ? undefined : Number(o["min-rate"]);
  if (minRate !== undefined && !(minRate >= 0)) fail(`bad --min-rate ${o["min-rate"]}`);
  return {
    drivers: (driver === "both" ? ["pgx", "mysql"] : [driver]) as Driver[],
    durationMs: parseDuration(o.duration ?? "2m"),
    seed,
    faults: faults as Fault[],
    catchupMs: o.catchup ? parseDuration(o.catchup) : undefined,
    faultEveryMs: o["fault-every"] ? parseDuration(o["fault-every"]) : undefined,
    opTimeoutMs: o["op-timeout"] ? parseDuration(o["op-timeout"]) : undefined,
    minChangesPerMin: minRate,
  };
}

/**
 * postgres.js (the workload's and checker's client, not sync's) can throw from a timer when
 * the server goes away while a write is queued (`socket.write` on a closed connection). That
 * is a client race, not a torture result: log it and keep the run going.
 */
function survivePostgresJsRace(): void {
  globalThis.addEventListener("error", (ev) => {
    const stack = String((ev.error as Error)?.stack ?? "");
    if (/npm\/.*postgres\/[\d.]+\/src\/connection\.js/.test(stack)) {
      ev.preventDefault();
      console.error(`torture: ignored postgres.js client error: ${(ev.error as Error).message}`);
    }
  });
}

if (import.meta.main) {
  const opts = parseArgs(Deno.args);
  survivePostgresJsRace();
  // Ctrl-C / SIGTERM: stop every process this run started, by PID, then exit.
  let interrupted = false;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, async () => {
      if (interrupted) return;
      interrupted = true;
      console.error(`torture: ${sig}, stopping everything`);
      await cleanupAll();
      Deno.exit(130);
    });
  }
  let failed = false;
  for (const driver of opts.drivers) {
    const r = await torture({
      driver,
      seed: opts.seed,
      durationMs: opts.durationMs,
      faults: faultsFor(driver, opts.faults),
      catchupMs: opts.catchupMs,
      faultEveryMs: opts.faultEveryMs,
      opTimeoutMs: opts.opTimeoutMs,
      minChangesPerMin: opts.minChangesPerMin,
    });
    console.log(r.line);
    if (!r.pass) failed = true;
  }
  Deno.exit(failed ? 1 : 0);
}
