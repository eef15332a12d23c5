/**
 * The faults a torture run injects, and whether each took effect: a fault that found
 * nothing to act on (no connection to cut, no binlog file to purge, no process to kill)
 * is reported apart, so a run cannot pass on faults that never happened.
 */
import { readEtcd } from "../../testing/checker.ts";
import type { TortureEtcd } from "./etcd_proc.ts";
import { ddlStatements } from "./ddl.ts";
import type { FaultProxy } from "./proxy.ts";
import type { SyncProc } from "./sync_proc.ts";
import type { Driver, Target } from "./targets.ts";

/** The kinds every run may draw from (the CI stage takes all its driver takes). */
export const FAULTS = [
  "kill",
  "stop",
  "etcd-restart",
  "etcd-down",
  "db-restart",
  "proxy-cut",
  "rotate-purge",
  "failover",
  "ddl",
] as const;
/**
 * Kinds only drawn when asked for (`--faults`): `db-freeze` SIGSTOPs the database for
 * longer than the workload's op deadline, so it tests the torture itself more than sync.
 */
export const EXTRA_FAULTS = ["db-freeze"] as const;
export type Fault = typeof FAULTS[number] | typeof EXTRA_FAULTS[number];

/** Faults each driver can take: binlog purges for MariaDB, Patroni failovers for PostgreSQL. */
export function faultsFor(driver: Driver, wanted: readonly Fault[]): Fault[] {
  return wanted.filter((f) =>
    (f !== "rotate-purge" || driver === "mysql") && (f !== "failover" || driver === "pgx")
  );
}

export interface FaultContext {
  sync: SyncProc;
  etcd: TortureEtcd;
  target: Target;
  proxies: FaultProxy[];
  prefix: string;
  /** The workload's op deadline: a freeze outlasts it. */
  opTimeoutMs: number;
  say(line: string): void;
  /** While true, the monitor leaves a stopped sync to the fault. */
  syncBusy(busy: boolean): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Inject one fault, `a` and `b` being its seeded draws in [0, 1); resolves once everything
 * is up again. Returns whether the fault took effect.
 */
export async function inject(kind: Fault, c: FaultContext, a: number, b: number) {
  const slow = (ms: number) => ms > 5000 && c.say(`  etcd took ${ms} ms to serve again`);
  switch (kind) {
    case "kill":
    case "stop": {
      c.syncBusy(true);
      const was = c.sync.running;
      if (kind === "kill") {
        await c.sync.kill();
        await sleep(Math.floor(a * 3000));
        await c.sync.start();
      } else {
        await c.sync.pause();
        await sleep(6000 + Math.floor(a * 6000));
        await c.sync.resume();
      }
      c.syncBusy(false);
      return was;
    }
    case "etcd-restart": {
      const was = await c.etcd.stop(true);
      slow(await c.etcd.restart());
      return was;
    }
    case "etcd-down": {
      const was = await c.etcd.stop(b < 0.5);
      await sleep(2000 + Math.floor(a * 8000));
      slow(await c.etcd.restart());
      return was;
    }
    case "db-restart":
      await c.target.restart(b < 0.6, Math.floor(a * 4000));
      return true;
    case "db-freeze": {
      const ms = c.opTimeoutMs + 2000 + Math.floor(a * 3000);
      const n = await c.target.freeze(ms);
      c.say(`  froze ${n} database process(es) for ${ms} ms`);
      return n > 0;
    }
    case "proxy-cut": {
      // Sync may be between connections (backing off after an etcd fault): wait for one,
      // so the cut hits a live session. Its longest backoff is 30 s (src/service/run.ts);
      // 10 s of waiting once found none after an etcd-down fault (seed 6103).
      const open = () => c.proxies.reduce((n, p) => n + p.connections, 0);
      for (let i = 0; i < 140 && open() === 0; i++) await sleep(250);
      let n = 0;
      for (const p of c.proxies) n += b < 0.5 ? p.cutAll() : p.truncateAll();
      c.say(`  ${b < 0.5 ? "cut" : "truncating"} ${n} connection(s)`);
      return n > 0;
    }
    case "rotate-purge": {
      const saved = async () => {
        const state = await readEtcd(c.etcd.endpoint, `${c.prefix}-state/`).catch(() => null);
        const json = state?.values().next().value;
        const file = json ? JSON.parse(json).position?.file : undefined;
        return file ? String(file) : undefined;
      };
      const before = await saved();
      await c.target.rotate!();
      // Once sync's saved position is in the new file, every older one can go, the one it
      // read until the rotation included (sync may be down or behind: then it waits).
      let file = before;
      for (let i = 0; i < 40 && file === before; i++) {
        await sleep(250);
        file = await saved();
      }
      const n = file ? await c.target.purgeTo!(file) : 0;
      c.say(`  rotated; purged ${n} file(s) before ${file ?? "(no saved position)"}`);
      return n > 0;
    }
    case "failover":
      c.say(`  ${await c.target.failover!()}`);
      return true;
    case "ddl": {
      const { what, stmts } = ddlStatements(c.target, a);
      let failed: string | undefined;
      for (const stmt of stmts) {
        // A pooled connection may have died with an earlier fault's server: try again.
        let r = { ok: false, error: "" } as { ok: boolean; error?: string };
        for (let i = 0; i < 3 && !r.ok; i++) {
          if (i) await sleep(1000);
          r = await c.target.exec({ kind: "ddl", stmts: [stmt], end: "auto" }, c.opTimeoutMs);
        }
        if (!r.ok) failed ??= r.error ?? "no error text";
      }
      c.say(`  ${what}${failed === undefined ? "" : ` (failed: ${failed})`}`);
      return failed === undefined;
    }
  }
}
