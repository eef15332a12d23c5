/**
 * One torture run for one driver: source database, etcd and sync (through the fault
 * proxy), the seeded workload and seeded faults for `durationMs`, then every fault healed,
 * sync given time to catch up, and the independent checker's verdict.
 *
 * Every wait has a deadline: a workload op that does not finish within `opTimeoutMs` is an
 * error of the workload (its connection is dropped) and the run goes on; a fault or a
 * check that hangs ends the run as ERROR.
 */
import { startTortureEtcd } from "./etcd_proc.ts";
import { firstDifference, readEtcd } from "../../testing/checker.ts";
import { Rng } from "./prng.ts";
import { FaultProxy } from "./proxy.ts";
import { SyncProc } from "./sync_proc.ts";
import { type Driver, startMysqlTarget, startPgTarget, type Target } from "./targets.ts";
import { startPatroniTarget } from "./targets_patroni.ts";
import { type Fault, type FaultContext, inject } from "./faults.ts";
import { PgWorkload } from "./workload_pg.ts";
import { MysqlWorkload } from "./workload_mysql.ts";
import type { Workload } from "./workload.ts";

export { EXTRA_FAULTS, type Fault, FAULTS, faultsFor } from "./faults.ts";

export interface TortureOptions {
  driver: Driver;
  seed: number;
  durationMs: number;
  faults: Fault[];
  /** How long sync may take to catch up once the workload stopped. */
  catchupMs?: number;
  /** Mean pause between faults. */
  faultEveryMs?: number;
  /** A workload op still running after this long counts as an error (default 30 s). */
  opTimeoutMs?: number;
  /** Fewer committed row changes per minute than this fails the run (default 1000). */
  minChangesPerMin?: number;
  /** Progress lines (stderr). */
  log?: (line: string) => void;
}

export interface TortureResult {
  line: string;
  pass: boolean;
  changes: number;
  /** Faults that took effect, by kind. */
  faults: Record<string, number>;
  /** Faults that found nothing to act on, by kind. */
  idle: Record<string, number>;
  /** Workload ops that failed, and how many of them timed out. */
  errors: number;
  timeouts: number;
  /** Kept on failure: sync's full log. */
  logPath: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `p`, or a rejection naming `what` once `ms` passed. */
async function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still running after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Everything a run started, stopped by PID on the way out (also on Ctrl-C). */
const cleanups = new Set<() => Promise<void>>();
export async function cleanupAll(): Promise<void> {
  for (const c of [...cleanups].reverse()) await c().catch(() => {});
  cleanups.clear();
}

/** A fault's own waits are bounded (a Patroni failover may take minutes); this bounds all. */
const FAULT_DEADLINE_MS = 12 * 60_000;
/** One comparison of etcd with the database. */
const CHECK_DEADLINE_MS = 120_000;

interface Tally {
  changes: number;
  ops: number;
  errors: Map<string, number>;
  timeouts: number;
  faults: Record<string, number>;
  idle: Record<string, number>;
}

const kinds = (r: Record<string, number>) =>
  Object.entries(r).map(([k, n]) => `${k}:${n}`).join(",") || "none";

/** The workload until `until`: one op at a time, each within `opTimeoutMs`. */
async function runWorkload(
  target: Target,
  workload: Workload,
  rng: Rng,
  t: Tally,
  until: number,
  opTimeoutMs: number,
  stopped: () => boolean,
): Promise<void> {
  while (Date.now() < until && !stopped()) {
    const r = await target.exec(workload.next(), opTimeoutMs);
    t.ops++;
    if (r.ok) t.changes += r.rows;
    else {
      if (r.timedOut) t.timeouts++;
      const k = (r.error ?? "").slice(0, 60);
      t.errors.set(k, (t.errors.get(k) ?? 0) + 1);
      await sleep(150);
    }
    await sleep(rng.int(0, 25));
  }
}

/**
 * The faults until `until`: kinds dealt from a shuffled deck, so every enabled kind is
 * injected once before any repeats (a short run still exercises them all).
 */
async function runFaults(
  o: TortureOptions,
  rng: Rng,
  c: FaultContext,
  t: Tally,
  t0: number,
  until: number,
): Promise<void> {
  if (!o.faults.length) return;
  const every = o.faultEveryMs ?? 10_000;
  let at = t0 + rng.int(every / 2, every);
  const deck: Fault[] = [];
  for (;;) {
    if (!deck.length) deck.push(...rng.shuffle(o.faults));
    const kind = deck.pop()!;
    // Drawn up front so the plan does not depend on how long a fault took.
    const a = rng.next();
    const b = rng.next();
    const next = at + rng.int(every / 2, (every * 3) / 2);
    if (at >= until) break;
    await sleep(Math.max(0, at - Date.now()));
    if (Date.now() >= until) break;
    c.say(`fault ${kind}`);
    const took = await deadline(inject(kind, c, a, b), FAULT_DEADLINE_MS, `fault ${kind}`);
    const tally = took ? t.faults : t.idle;
    tally[kind] = (tally[kind] ?? 0) + 1;
    if (!took) c.say(`  ${kind} found nothing to act on: not counted`);
    at = Math.max(next, Date.now());
  }
}

/** Poll until etcd equals the database or `ms` passed; null when equal, else the difference. */
async function catchUp(target: Target, endpoint: string, prefix: string, ms: number) {
  const until = Date.now() + ms;
  let diff: string | null = "not checked";
  while (Date.now() < until) {
    try {
      const check = async () =>
        firstDifference(await target.expected(prefix), await readEtcd(endpoint, `${prefix}/`));
      diff = await deadline(check(), CHECK_DEADLINE_MS, "the checker");
    } catch (e) {
      diff = `checker failed: ${(e as Error).message}`;
    }
    if (diff === null) break;
    await sleep(2000);
  }
  return diff;
}

export async function torture(o: TortureOptions): Promise<TortureResult> {
  const log = o.log ?? ((l: string) => console.error(l));
  const opTimeoutMs = o.opTimeoutMs ?? 30_000;
  const minRate = o.minChangesPerMin ?? 1000;
  const root = new Rng(o.seed);
  const workRng = root.fork(1);
  const faultRng = root.fork(2);
  const proxyRng = root.fork(3);
  const prefix = "/torture";
  const dir = await Deno.makeTempDir({ prefix: `torture-${o.driver}-${o.seed}-` });
  const logPath = `${dir}/sync.log`;
  const t0 = Date.now();
  const say = (l: string) => log(`[${o.driver} ${((Date.now() - t0) / 1000).toFixed(1)}s] ${l}`);

  let target: Target | undefined;
  let proxies: FaultProxy[] = [];
  let sync: SyncProc | undefined;
  const etcd = await startTortureEtcd();
  const closeEtcd = () => etcd.close();
  cleanups.add(closeEtcd);
  const closeRest = async () => {
    if (sync) await sync.stop(5_000).catch(() => sync!.killNow());
    for (const p of proxies) p.close();
    await target?.close();
  };
  cleanups.add(closeRest);
  let pass = false;
  const t: Tally = { changes: 0, ops: 0, errors: new Map(), timeouts: 0, faults: {}, idle: {} };
  const errorCount = () => [...t.errors.values()].reduce((a, b) => a + b, 0);
  const perMin = () => Math.round(t.changes / (o.durationMs / 60_000));
  const summary = (result: string) =>
    `torture driver=${o.driver} seed=${o.seed} duration=${Math.round(o.durationMs / 1000)}s ` +
    `changes=${t.changes} changes/min=${perMin()} faults=${kinds(t.faults)}` +
    `${Object.keys(t.idle).length ? ` no_effect=${kinds(t.idle)}` : ""} ` +
    `workload_errors=${errorCount()} timeouts=${t.timeouts} result=${result}`;
  const result = (line: string): TortureResult => ({
    line,
    pass,
    changes: t.changes,
    faults: t.faults,
    idle: t.idle,
    errors: errorCount(),
    timeouts: t.timeouts,
    logPath,
  });
  // Set when the run ends early (the harness failed): the workload and monitor stop too.
  let stopping = false;
  try {
    // A failover needs a cluster: then PostgreSQL is a two-node Patroni cluster.
    target = o.driver === "mysql"
      ? await startMysqlTarget()
      : o.faults.includes("failover")
      ? await startPatroniTarget()
      : await startPgTarget();
    const workload: Workload = o.driver === "pgx"
      ? new PgWorkload(workRng)
      : new MysqlWorkload(workRng);
    await target.setup(workload.schema);
    proxies = target.ports.map((p) => new FaultProxy(p, () => proxyRng.next()));
    sync = new SyncProc([
      `--driver=${o.driver}`,
      `--db-url=${target.dbUrl(proxies.map((p) => p.port))}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      `--etcd-prefix=${prefix}`,
      "--etcd-timeout=5s",
      "--status-interval=1s",
      "--server-id=4299",
    ], logPath);
    await sync.start();
    say(`started: sync pid ${sync.pid}, log ${logPath}`);

    // A fault that has the process down owns restarting it; otherwise an exit nobody asked
    // for (already recorded as a failure) is restarted so the run goes on.
    let syncBusy = false;
    const monitor = (async () => {
      while (!stopping) {
        await sleep(1000);
        if (!stopping && !syncBusy && !sync!.running) {
          say(`sync not running (${sync!.crashes.at(-1)}): restarting`);
          await sync!.start();
        }
      }
    })();

    const until = t0 + o.durationMs;
    const work = runWorkload(target, workload, workRng, t, until, opTimeoutMs, () => stopping);
    const ctx: FaultContext = {
      sync,
      etcd,
      target,
      proxies,
      prefix,
      opTimeoutMs,
      say,
      syncBusy: (b) => syncBusy = b,
    };
    const faulting = runFaults(o, faultRng, ctx, t, t0, until).catch((e) => {
      say(`fault runner failed: ${e}`);
      throw e;
    });
    await Promise.all([work, faulting]);
    say(
      `workload done: ${t.ops} ops, ${t.changes} rows changed, errors: ${
        [...t.errors].map(([k, n]) => `${n}× ${k}`).join("; ") || "none"
      }`,
    );
    stopping = true;
    await monitor;
    // Heal: everything up.
    await sync.resume();
    if (!sync.running) await sync.start();

    const diff = await catchUp(target, etcd.endpoint, prefix, o.catchupMs ?? 240_000);
    say(diff === null ? "etcd equals the database" : `not converged: ${diff}`);
    const crashes = sync.crashes;
    const slow = perMin() < minRate ? `too few changes: ${perMin()}/min, at least ${minRate}` : "";
    pass = diff === null && crashes.length === 0 && !slow;
    let line = summary(pass ? "PASS" : "FAIL");
    if (!pass) line += ` ${(crashes[0] ?? diff ?? slow).replaceAll("\n", " | ")}`;
    return result(line);
  } catch (e) {
    // The harness itself failed (a server did not come back): no verdict on sync.
    stopping = true;
    const msg = (e as Error).message?.split("\n")[0] ?? String(e);
    say(`run aborted: ${(e as Error).message ?? e}`);
    return result(`${summary("ERROR")} ${msg}`);
  } finally {
    stopping = true;
    await closeRest().catch(() => {});
    cleanups.delete(closeRest);
    await closeEtcd().catch(() => {});
    cleanups.delete(closeEtcd);
    if (pass) await Deno.remove(dir, { recursive: true }).catch(() => {});
    else log(`[${o.driver}] kept ${dir} (sync.log)`);
  }
}
