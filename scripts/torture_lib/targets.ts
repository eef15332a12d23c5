/**
 * The source databases under torture: start one (tests/harness), run the workload's
 * operations against it directly (not through the proxy), restart it, and render what it
 * holds for the checker.
 */
import mysql from "mysql2/promise";
import postgres from "postgres";
import { startTortureEtcd } from "./etcd_proc.ts";
import { startPatroni } from "../../tests/harness/patroni.ts";
import { pgBin } from "../../tests/harness/postgres.ts";
import { run, waitFor } from "../../tests/harness/process.ts";
import { startPostgres } from "../../tests/harness/postgres.ts";
import { startMariadb } from "../../tests/harness/mariadb.ts";
import { expectedFromPg } from "../../tests/harness/expected_pg.ts";
import { expectedFromMysql } from "../../tests/harness/expected_mysql.ts";
import type { Op } from "./workload.ts";

export type Driver = "pgx" | "mysql";

export interface ExecResult {
  ok: boolean;
  /** Rows changed by the statements (committed ones only). */
  rows: number;
  error?: string;
}

export interface Target {
  readonly driver: Driver;
  /** The database ports, one fault proxy in front of each. */
  readonly ports: number[];
  /** sync's --db-url, given the proxies' ports (in the order of `ports`). */
  dbUrl(proxyPorts: number[]): string;
  setup(schema: string): Promise<void>;
  exec(op: Op): Promise<ExecResult>;
  /** Expected etcd contents under `prefix`. */
  expected(prefix: string): Promise<Map<string, string>>;
  /** Stop (a crash when `crash`), wait `downMs`, start again on the same data. */
  restart(crash: boolean, downMs: number): Promise<void>;
  close(): Promise<void>;
  /** MariaDB: rotate the binlog and purge files older than `keep` (sync's saved file). */
  rotatePurge?(keep: string | undefined): Promise<string>;
  /** Patroni: crash the primary, wait for the replica's promotion, rejoin the old one. */
  failover?(): Promise<string>;
}

class Rollback extends Error {}
type Sql = ReturnType<typeof postgres>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pgExec(sql: Sql, op: Op): Promise<ExecResult> {
  try {
    if (op.end === "auto") {
      const r = await sql.unsafe(op.stmts[0]);
      return { ok: true, rows: r.count ?? 0 };
    }
    let rows = 0;
    await sql.begin(async (tx) => {
      for (const s of op.stmts) rows += (await tx.unsafe(s)).count ?? 0;
      if (op.end === "rollback") throw new Rollback();
    });
    return { ok: true, rows };
  } catch (e) {
    if (e instanceof Rollback) return { ok: true, rows: 0 };
    return { ok: false, rows: 0, error: (e as Error).message };
  }
}

export async function startPgTarget(): Promise<Target> {
  // wal_sender_timeout is short so that a paused sync outlives its replication connection.
  const pg = await startPostgres({ conf: { wal_sender_timeout: "'5s'" } });
  const sql = pg.connect();
  return {
    driver: "pgx",
    ports: [pg.port],
    dbUrl: ([p]) => `postgres://postgres@127.0.0.1:${p}/postgres?connect_timeout=5`,
    async setup(schema) {
      await pg.psql(schema);
    },
    exec: (op) => pgExec(sql, op),
    expected: (prefix) => expectedFromPg(pg.sql, prefix),
    async restart(crash, downMs) {
      await pg.stop(crash);
      await sleep(downMs);
      await pg.restart();
    },
    async close() {
      await sql.end({ timeout: 1 }).catch(() => {});
      await pg.close();
    },
  };
}

export async function startMysqlTarget(): Promise<Target> {
  // Crash-safe binlog and InnoDB, so a SIGKILLed server keeps what it sent to sync.
  const db = await startMariadb({
    conf: { "sync-binlog": 1, "innodb-flush-log-at-trx-commit": 1 },
  });
  let conn: mysql.Connection | undefined;
  const connect = async () =>
    conn ??= await mysql.createConnection({
      host: "127.0.0.1",
      port: db.port,
      user: "root",
      password: db.password,
      database: "app",
      timezone: "Z",
      connectTimeout: 5000,
    });
  const drop = () => {
    conn?.destroy();
    conn = undefined;
  };
  const rowsOf = (r: unknown) => Number((r as { affectedRows?: number }).affectedRows ?? 0);
  return {
    driver: "mysql",
    ports: [db.port],
    dbUrl: ([p]) => `mysql://root:${encodeURIComponent(db.password)}@127.0.0.1:${p}/app`,
    async setup(schema) {
      await db.query(schema);
    },
    async exec(op) {
      let c: mysql.Connection;
      try {
        c = await connect();
      } catch (e) {
        drop();
        return { ok: false, rows: 0, error: (e as Error).message };
      }
      try {
        if (op.end === "auto") {
          const [r] = await c.query(op.stmts[0]);
          return { ok: true, rows: rowsOf(r) };
        }
        let rows = 0;
        await c.query("BEGIN");
        for (const s of op.stmts) rows += rowsOf((await c.query(s))[0]);
        await c.query(op.end === "commit" ? "COMMIT" : "ROLLBACK");
        return { ok: true, rows: op.end === "commit" ? rows : 0 };
      } catch (e) {
        const err = e as Error & { fatal?: boolean };
        if (err.fatal) drop();
        else await c.query("ROLLBACK").catch(drop);
        return { ok: false, rows: 0, error: err.message };
      }
    },
    expected: (prefix) => expectedFromMysql(db.query, prefix, ["app"], "app"),
    async restart(crash, downMs) {
      drop();
      await db.stop(crash);
      await sleep(downMs);
      await db.restart();
    },
    async rotatePurge(keep) {
      await db.query("FLUSH BINARY LOGS");
      if (!keep) return "flushed";
      await db.query(`PURGE BINARY LOGS TO '${keep.replace(/[^\w.-]/g, "")}'`);
      return `purged to ${keep}`;
    },
    async close() {
      drop();
      await db.close();
    },
  };
}

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
      target_session_attrs: "read-write",
      onnotice: () => {},
      max: 2,
      connect_timeout: 3,
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
    async exec(op) {
      const r = await pgExec(sql, op);
      // A pooled connection can outlive its node's promotion or demotion: start afresh.
      if (/read-only transaction/.test(r.error ?? "")) {
        const old = sql;
        sql = client(hosts);
        await old.end({ timeout: 1 }).catch(() => {});
      }
      return r;
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
        const l = await leader();
        const c = client(`127.0.0.1:${l.pgPort}`);
        let backend: number;
        try {
          backend = Number((await c`SELECT pg_backend_pid() AS pid`)[0].pid);
        } finally {
          await c.end({ timeout: 1 }).catch(() => {});
        }
        const status = await Deno.readTextFile(`/proc/${backend}/status`).catch(() => "");
        const postmaster = Number(/^PPid:\s*(\d+)/m.exec(status)?.[1] ?? 0);
        if (postmaster > 1) Deno.kill(postmaster, "SIGKILL");
        await sleep(1000);
        await waitFor("a primary to accept writes again", primaryUp, 300_000);
      });
    },
    failover: () =>
      withLogs(async () => {
        // Crash the primary once the replica streams from it (Patroni promotes only a
        // replica that was following, within maximum_lag_on_failover).
        await waitFor("a streaming replica", async () => {
          const l = await leader();
          const c = client(`127.0.0.1:${l.pgPort}`);
          try {
            return (await c`SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'`)
              .length > 0;
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
