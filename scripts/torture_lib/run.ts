/**
 * One torture run for one driver: source database, etcd and sync (through the fault
 * proxy), the seeded workload and seeded faults for `durationMs`, then every fault healed,
 * sync given time to catch up, and the independent checker's verdict.
 */
import { startTortureEtcd } from "./etcd_proc.ts";
import { firstDifference, readEtcd } from "../../tests/harness/checker.ts";
import { Rng } from "./prng.ts";
import { FaultProxy } from "./proxy.ts";
import { SyncProc } from "./sync_proc.ts";
import {
  type Driver,
  startMysqlTarget,
  startPatroniTarget,
  startPgTarget,
  type Target,
} from "./targets.ts";
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

/** Faults each driver can take: binlog purges for MariaDB, Patroni failovers for PostgreSQL. */
export function faultsFor(driver: Driver, wanted: readonly Fault[]): Fault[] {
  return wanted.filter((f) =>
    (f !== "rotate-purge" || driver === "mysql") && (f !== "failover" || driver === "pgx")
  );
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
  let changes = 0;
  const counts: Record<string, number> = {};
  const faultText = () => Object.entries(counts).map(([k, n]) => `${k}:${n}`).join(",") || "none";
  const summary = (result: string) =>
    `torture driver=${o.driver} seed=${o.seed} duration=${
      Math.round(o.durationMs / 1000)
    }s changes=${changes} faults=${faultText()} result=${result}`;
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

    const deadline = t0 + o.durationMs;
    const errors = new Map<string, number>();
    let ops = 0;
    const work = (async () => {
      while (Date.now() < deadline && !stopping) {
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
      // Kinds are dealt from a shuffled deck, so every enabled kind is injected once before
      // any repeats (a short run still exercises them all).
      const deck: Fault[] = [];
      const slow = (ms: number) => ms > 5000 && say(`  etcd took ${ms} ms to serve again`);
      for (;;) {
        if (!deck.length) deck.push(...faultRng.shuffle(o.faults));
        const kind = deck.pop()!;
        // Drawn up front so the plan does not depend on how long a fault took.
        const a = faultRng.next();
        const b = faultRng.next();
        const next = at + faultRng.int(every / 2, (every * 3) / 2);
        if (at >= deadline) break;
        await sleep(Math.max(0, at - Date.now()));
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
            slow(await etcd.restart());
            break;
          case "etcd-down":
            await etcd.stop(b < 0.5);
            await sleep(2000 + Math.floor(a * 8000));
            slow(await etcd.restart());
            break;
          case "db-restart":
            await target!.restart(b < 0.6, Math.floor(a * 4000));
            break;
          case "proxy-cut": {
            // Sync may be between connections (backing off after an etcd fault): wait a
            // little for one, so the cut hits a live session.
            const open = () => proxies.reduce((n, p) => n + p.connections, 0);
            for (let i = 0; i < 40 && open() === 0; i++) await sleep(250);
            let n = 0;
            for (const p of proxies) n += b < 0.5 ? p.cutAll() : p.truncateAll();
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
          case "failover":
            say(`  ${await target!.failover!()}`);
            break;
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
    let line = summary(pass ? "PASS" : "FAIL");
    if (!pass) line += ` ${(crashes[0] ?? diff ?? "").replaceAll("\n", " | ")}`;
    return { line, pass, changes, faults: counts, logPath };
  } catch (e) {
    // The harness itself failed (a server did not come back): no verdict on sync.
    stopping = true;
    const msg = (e as Error).message?.split("\n")[0] ?? String(e);
    say(`run aborted: ${(e as Error).message ?? e}`);
    return { line: `${summary("ERROR")} ${msg}`, pass: false, changes, faults: counts, logPath };
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
