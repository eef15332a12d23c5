/**
 * The Patroni target of the torture: a two-node cluster the workload writes to through
 * its primary, crashed, frozen and failed over by the faults.
 */
import postgres from "postgres";
import { startTortureEtcd } from "./etcd_proc.ts";
import { startPatroni } from "../../testing/patroni.ts";
import { pgBin } from "../../testing/postgres.ts";
import { run, waitFor } from "../../testing/process.ts";
import { expectedFromPg } from "../../testing/expected_pg.ts";
import { freezeTree, pgExecWithin, sleep, type Target } from "./targets.ts";

/**
 * A two-node Patroni cluster whose DCS is an etcd of its own (the etcd faults hit sync's
 * etcd, not Patroni's). Replication is asynchronous, Patroni's default: a failover may lose
 * the last commits, and etcd must then end equal to what the promoted node holds.
 * sync gets both nodes in its URL (through one proxy each) and follows the primary.
 */
export async function startPatroniTarget(): Promise<Target> {
  // Patroni's DCS: kept up by a watchdog (it vanished twice in 10-minute runs on the
  // shared machine, and a cluster without DCS cannot fail over; that is no sync fault).
  const dcs = await startTortureEtcd("dcs");
  const cluster = await startPatroni(dcs.endpoint, "sync", {
    synchronous: false,
    parameters: { wal_sender_timeout: "5s" },
    // Slack for a loaded machine: with ttl 10 / retry 5 a DCS answer that took a few
    // seconds made the primary demote itself, and the cluster sat without one for minutes.
    ttl: 30,
    loopWait: 2,
    retryTimeout: 10,
  }).catch(async (e) => {
    await dcs.close();
    throw e;
  });
  let watching = true;
  const watchdog = (async () => {
    while (watching) {
      await sleep(2000);
      if (watching && await dcs.ensureUp().catch(() => false)) {
        console.error("torture: Patroni's DCS etcd was down: restarted it");
      }
    }
  })();
  const hosts = cluster.nodes.map((n) => `127.0.0.1:${n.pgPort}`).join(",");
  const client = (h: string) =>
    postgres(`postgres://postgres:postgres@${h}/postgres`, {
      // Not "read-write": postgres.js reads that from default_transaction_read_only, which
      // a hot standby reports as off, so a fresh pool could land on the replica.
      target_session_attrs: "primary",
      onnotice: () => {},
      max: 2,
      connect_timeout: 3,
      idle_timeout: 60,
    });
  let sql = client(hosts);
  // A fault the cluster did not take: the error carries what each Patroni said last.
  const withLogs = async <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      const tails = cluster.nodes.map((n) =>
        `--- ${n.name} (Patroni):\n${n.proc.output().split("\n").slice(-30).join("\n")}`
      );
      throw new Error(`${(e as Error).message}\n${tails.join("\n")}`);
    }
  };
  const primaryUp = async () => {
    const l = await cluster.leader();
    if (!l) return false;
    const c = client(`127.0.0.1:${l.pgPort}`);
    try {
      return (await c`SELECT NOT pg_is_in_recovery() AS rw`)[0].rw === true;
    } finally {
      await c.end({ timeout: 1 }).catch(() => {});
    }
  };
  // The primary's postmaster: the parent of a backend serving us there, read while that
  // backend lives (once it exited, its PID may be another process's, and so its parent).
  const leaderPostmaster = async () => {
    const l = await leader();
    const c = client(`127.0.0.1:${l.pgPort}`);
    try {
      const backend = Number((await c`SELECT pg_backend_pid() AS pid`)[0].pid);
      const status = await Deno.readTextFile(`/proc/${backend}/status`).catch(() => "");
      return Number(/^PPid:\s*(\d+)/m.exec(status)?.[1] ?? 0);
    } finally {
      await c.end({ timeout: 1 }).catch(() => {});
    }
  };
  const leader = async () => {
    const l = await cluster.leader();
    if (!l) throw new Error("no Patroni leader");
    return l;
  };
  return {
    driver: "pgx",
    ports: cluster.nodes.map((n) => n.pgPort),
    dbUrl: (ps) =>
      `postgres://postgres:postgres@${
        ps.map((p) => `127.0.0.1:${p}`).join(",")
      }/postgres?sslmode=disable&connect_timeout=3`,
    async setup(schema) {
      const l = await leader();
      await run(`${pgBin()}/psql`, {
        args: ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(l.pgPort)]
          .concat(["-U", "postgres", "-d", "postgres", "-f", "-"]),
        env: { PGPASSWORD: "postgres" },
        stdin: schema,
      });
    },
    exec(op, ms) {
      return pgExecWithin(() => sql, () => sql = client(hosts), op, ms).then(async (r) => {
        // A pooled connection can outlive its node's promotion or demotion: start afresh.
        if (/read-only transaction/.test(r.error ?? "")) {
          const old = sql;
          sql = client(hosts);
          await old.end({ timeout: 1 }).catch(() => {});
        }
        return r;
      });
    },
    async expected(prefix) {
      // The leader itself, never a replica that may trail it.
      const l = await leader();
      const c = client(`127.0.0.1:${l.pgPort}`);
      try {
        return await expectedFromPg(c, prefix);
      } finally {
        await c.end({ timeout: 1 }).catch(() => {});
      }
    },
    async restart() {
      // The leader's PostgreSQL crashes (postmaster SIGKILLed); Patroni, still holding the
      // leader key, starts it again. (Its REST /restart once took Patroni 3.0.2 down.)
      await withLogs(async () => {
        const postmaster = await leaderPostmaster();
        if (postmaster > 1) Deno.kill(postmaster, "SIGKILL");
        await sleep(1000);
        await waitFor("a primary to accept writes again", primaryUp, 300_000);
      });
    },
    async freeze(ms) {
      const postmaster = await leaderPostmaster();
      return postmaster > 1 ? await freezeTree(postmaster, ms) : 0;
    },
    failover: () =>
      withLogs(async () => {
        // Crash the primary once the replica streams from it and holds the primary's WAL up
        // to the moment the fault began (Patroni promotes a replica within
        // maximum_lag_on_failover, which a young cluster's whole schema fits in: promoted
        // before it arrived, the replica had no tables, and the run tested nothing). Commits
        // after that moment may still be lost, as asynchronous replication allows.
        let since: string | undefined;
        await waitFor("a streaming replica holding the primary's WAL", async () => {
          const l = await leader();
          const c = client(`127.0.0.1:${l.pgPort}`);
          try {
            since ??= (await c`SELECT pg_current_wal_lsn()::text AS lsn`)[0].lsn as string;
            return (await c`SELECT 1 FROM pg_stat_replication
              WHERE state = 'streaming' AND flush_lsn >= ${since}::pg_lsn`).length > 0;
          } finally {
            await c.end({ timeout: 1 }).catch(() => {});
          }
        }, 300_000);
        const old = await leader();
        await cluster.crash(old);
        const other = cluster.nodes.find((n) => n !== old)!;
        await waitFor(
          "the replica to be promoted",
          async () => (await cluster.leader()) === other,
          300_000,
          () => other.proc.output(),
        );
        await cluster.rejoin(old);
        return `${old.name} crashed, ${other.name} promoted, ${old.name} rejoined`;
      }),
    async close() {
      watching = false;
      await watchdog;
      await sql.end({ timeout: 1 }).catch(() => {});
      await cluster.close();
      await dcs.close();
    },
  };
}
