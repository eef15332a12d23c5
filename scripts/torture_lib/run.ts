/**
 * One torture run for one driver: source database, etcd and sync (through the fault
 * proxy), the seeded workload and seeded faults for `durationMs`, then every fault healed,
 * sync given time to catch up, and the independent checker's verdict.
 */
import { startEtcd } from "../../tests/harness/etcd.ts";
import { firstDifference, readEtcd } from "../../tests/harness/checker.ts";
import { Rng } from "./prng.ts";
import { FaultProxy } from "./proxy.ts";
import { SyncProc } from "./sync_proc.ts";
import { type Driver, startMysqlTarget, startPgTarget, type Target } from "./targets.ts";
import { PgWorkload } from "./workload_pg.ts";
import { MysqlWorkload } from "./workload_mysql.ts";
import type { Workload } from "./workload.ts";

export const FAULTS = [
  "kill",
  "stop",
  "etcd-restart",
  "etcd-down",
  "db-restart",
  "proxy-cut",
  "rotate-purge",
  "failover",
] as const;
export type Fault = typeof FAULTS[number];

/** Faults each driver can take (failover needs a Patroni cluster: not part of this run). */
export function faultsFor(driver: Driver, wanted: readonly Fault[]): Fault[] {
  return wanted.filter((f) => f !== "failover" && (f !== "rotate-purge" || driver === "mysql"));
}

export interface TortureOptions {
  driver: Driver;
  seed: number;
  durationMs: number;
  faults: Fault[];
  /** How long sync may take to catch up once the workload stopped. */
  catchupMs?: number;
  /** Mean pause between faults. */
  faultEveryMs?: number;
  /** Progress lines (stderr). */
  log?: (line: string) => void;
}

export interface TortureResult {
  line: string;
  pass: boolean;
  changes: number;
  faults: Record<string, number>;
  /** Kept on failure: sync's full log. */
  logPath: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Everything a run started, stopped by PID on the way out (also on Ctrl-C). */
const cleanups = new Set<() => Promise<void>>();
export async function cleanupAll(): Promise<void> {
  for (const c of [...cleanups].reverse()) await c().catch(() => {});
  cleanups.clear();
}

export async function torture(o: TortureOptions): Promise<TortureResult> {
  const log = o.log ?? ((l: string) => console.error(l));
  const root = new Rng(o.seed);
  const workRng = root.fork(1);
  const faultRng = root.fork(2);
  const proxyRng = root.fork(3);
  const prefix = "/torture";
  const dir = await Deno.makeTempDir({ prefix: `torture-${o.driver}-${o.seed}-` });
  const logPath = `${dir}/sync.log`;
  const t0 = Date.now();
  const since = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const say = (l: string) => log(`[${o.driver} ${since()}] ${l}`);

  let target: Target | undefined;
  let proxy: FaultProxy | undefined;
  let sync: SyncProc | undefined;
  const etcd = await startEtcd();
  const closeEtcd = () => etcd.close();
  cleanups.add(closeEtcd);
  const closeRest = async () => {
    if (sync) await sync.stop(5_000).catch(() => sync!.killNow());
    proxy?.close();
    await target?.close();
  };
  cleanups.add(closeRest);
  let pass = false;
  let changes = 0;
  const counts: Record<string, number> = {};
  try {
    target = o.driver === "pgx" ? await startPgTarget() : await startMysqlTarget();
    const workload: Workload = o.driver === "pgx"
      ? new PgWorkload(workRng)
      : new MysqlWorkload(workRng);
    await target.setup(workload.schema);
    proxy = new FaultProxy(target.port, () => proxyRng.next());
    sync = new SyncProc([
      `--driver=${o.driver}`,
      `--db-url=${target.dbUrl(proxy.port)}`,
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
    let stopping = false;
    const monitor = (async () => {
      while (!stopping) {
        await sleep(1000);
        if (!stopping && !syncBusy && !sync!.running) {
          say(`sync not running (${sync!.crashes.at(-1)}): restarting`);
          await sync!.start();
        }
      }
    })();

    const deadline = t0 + o.durationMs;
    const errors = new Map<string, number>();
    let ops = 0;
    const work = (async () => {
      while (Date.now() < deadline) {
        const op = workload.next();
        const r = await target!.exec(op);
        ops++;
        if (r.ok) changes += r.rows;
        else {
          const k = (r.error ?? "").slice(0, 60);
          errors.set(k, (errors.get(k) ?? 0) + 1);
          await sleep(150);
        }
        await sleep(workRng.int(0, 25));
      }
    })();

    const every = o.faultEveryMs ?? 10_000;
    const faults = async () => {
      if (!o.faults.length) return;
      let at = t0 + faultRng.int(every / 2, every);
      for (;;) {
        const kind = faultRng.pick(o.faults);
        // Drawn up front so the plan does not depend on how long a fault took.
        const a = faultRng.next();
        const b = faultRng.next();
        const next = at + faultRng.int(every / 2, (every * 3) / 2);
        if (at >= deadline) break;
        await sleep(at - Date.now());
        if (Date.now() >= deadline) break;
        counts[kind] = (counts[kind] ?? 0) + 1;
        say(`fault ${kind}`);
        switch (kind) {
          case "kill":
            syncBusy = true;
            await sync!.kill();
            await sleep(Math.floor(a * 3000));
            await sync!.start();
            syncBusy = false;
            break;
          case "stop":
            syncBusy = true;
            await sync!.pause();
            await sleep(6000 + Math.floor(a * 6000));
            await sync!.resume();
            syncBusy = false;
            break;
          case "etcd-restart":
            await etcd.stop(true);
            await etcd.restart();
            break;
          case "etcd-down":
            await etcd.stop(b < 0.5);
            await sleep(2000 + Math.floor(a * 8000));
            await etcd.restart();
            break;
          case "db-restart":
            await target!.restart(b < 0.6, Math.floor(a * 4000));
            break;
          case "proxy-cut": {
            const n = b < 0.5 ? proxy!.cutAll() : proxy!.truncateAll();
            say(`  ${b < 0.5 ? "cut" : "truncating"} ${n} connection(s)`);
            break;
          }
          case "rotate-purge": {
            const state = await readEtcd(etcd.endpoint, `${prefix}-state/`).catch(() => null);
            const saved = state?.values().next().value;
            const file = saved ? JSON.parse(saved).position?.file : undefined;
            say(`  ${await target!.rotatePurge!(file ? String(file) : undefined)}`);
            break;
          }
        }
        at = Math.max(next, Date.now());
      }
    };
    const faulting = faults().catch((e) => {
      say(`fault runner failed: ${e}`);
      throw e;
    });
    await Promise.all([work, faulting]);
    say(
      `workload done: ${ops} ops, ${changes} rows changed, errors: ${
        [...errors].map(([k, n]) => `${n}× ${k}`).join("; ") || "none"
      }`,
    );
    stopping = true;
    await monitor;
    // Heal: everything up.
    await sync.resume();
    if (!sync.running) await sync.start();

    const catchup = o.catchupMs ?? 240_000;
    const until = Date.now() + catchup;
    let diff: string | null = "not checked";
    while (Date.now() < until) {
      try {
        diff = firstDifference(
          await target.expected(prefix),
          await readEtcd(etcd.endpoint, `${prefix}/`),
        );
      } catch (e) {
        diff = `checker failed: ${(e as Error).message}`;
      }
      if (diff === null) break;
      await sleep(2000);
    }
    say(diff === null ? "etcd equals the database" : `not converged: ${diff}`);
    const crashes = sync.crashes;
    pass = diff === null && crashes.length === 0;
    const faultText = Object.entries(counts).map(([k, n]) => `${k}:${n}`).join(",") || "none";
    let line = `torture driver=${o.driver} seed=${o.seed} duration=${
      Math.round(o.durationMs / 1000)
    }s changes=${changes} faults=${faultText} result=${pass ? "PASS" : "FAIL"}`;
    if (!pass) line += ` ${(crashes[0] ?? diff ?? "").replaceAll("\n", " | ")}`;
    return { line, pass, changes, faults: counts, logPath };
  } finally {
    await closeRest().catch(() => {});
    cleanups.delete(closeRest);
    await closeEtcd().catch(() => {});
    cleanups.delete(closeEtcd);
    if (pass) await Deno.remove(dir, { recursive: true }).catch(() => {});
    else log(`[${o.driver}] kept ${dir} (sync.log)`);
  }
}
