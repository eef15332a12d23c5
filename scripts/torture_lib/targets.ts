/**
 * The source databases under torture: start one (testing/), run the workload's
 * operations against it directly (not through the proxy), each within a deadline, restart
 * or freeze it, and render what it holds for the checker.
 */
import mysql from "mysql2/promise";
import type postgres from "postgres";
import { startPostgres } from "../../testing/postgres.ts";
import { startMariadb } from "../../testing/mariadb.ts";
import { expectedFromPg } from "../../testing/expected_pg.ts";
import { expectedFromMysql } from "../../testing/expected_mysql.ts";
import type { Op } from "./workload.ts";

export type Driver = "pgx" | "mysql";

export interface ExecResult {
  ok: boolean;
  /** Rows changed by the statements (committed ones only). */
  rows: number;
  error?: string;
  /** The op did not finish within its deadline (its connection was dropped). */
  timedOut?: boolean;
}

export interface Target {
  readonly driver: Driver;
  /** The database ports, one fault proxy in front of each. */
  readonly ports: number[];
  /** sync's --db-url, given the proxies' ports (in the order of `ports`). */
  dbUrl(proxyPorts: number[]): string;
  setup(schema: string): Promise<void>;
  /** Run one op; it settles within `timeoutMs`, a timeout being an error of the op. */
  exec(op: Op, timeoutMs: number): Promise<ExecResult>;
  /** Expected etcd contents under `prefix`. */
  expected(prefix: string): Promise<Map<string, string>>;
  /** Stop (a crash when `crash`), wait `downMs`, start again on the same data. */
  restart(crash: boolean, downMs: number): Promise<void>;
  /** SIGSTOP the (primary) server's processes for `ms`; returns how many were frozen. */
  freeze(ms: number): Promise<number>;
  close(): Promise<void>;
  /** MariaDB: start a new binlog file. */
  rotate?(): Promise<void>;
  /** MariaDB: purge the binlog files before `file`; returns how many went. */
  purgeTo?(file: string): Promise<number>;
  /** Patroni: crash the primary, wait for the replica's promotion, rejoin the old one. */
  failover?(): Promise<string>;
}

class Rollback extends Error {}
export type Sql = ReturnType<typeof postgres>;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const LATE = Symbol("late");
/** `p`'s result, or LATE when it has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | typeof LATE> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<typeof LATE>((r) => timer = setTimeout(() => r(LATE), ms));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

const timedOut = (ms: number): ExecResult => ({
  ok: false,
  rows: 0,
  error: `op timed out after ${ms} ms`,
  timedOut: true,
});

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

/**
 * Run `op` on `client()` within `ms`. A late op's connection is abandoned: `replace()`
 * gives the next ops a fresh client and destroys the stuck one (its query then fails).
 */
export async function pgExecWithin(
  client: () => Sql,
  replace: () => Sql,
  op: Op,
  ms: number,
): Promise<ExecResult> {
  const r = await within(pgExec(client(), op), ms);
  if (r !== LATE) return r;
  const stuck = client();
  replace();
  stuck.end({ timeout: 0 }).catch(() => {});
  return timedOut(ms);
}

/** SIGSTOP `root` and its children (a postmaster and its backends) for `ms`. */
export async function freezeTree(root: number, ms: number): Promise<number> {
  const pids = [root];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const status = await Deno.readTextFile(`/proc/${e.name}/status`).catch(() => "");
    if (Number(/^PPid:\s*(\d+)/m.exec(status)?.[1]) === root) pids.push(Number(e.name));
  }
  const send = (sig: Deno.Signal) =>
    pids.filter((pid) => {
      try {
        Deno.kill(pid, sig);
        return true;
      } catch {
        return false; // exited meanwhile
      }
    }).length;
  const frozen = send("SIGSTOP");
  try {
    await sleep(ms);
  } finally {
    send("SIGCONT");
  }
  return frozen;
}

export async function startPgTarget(): Promise<Target> {
  // wal_sender_timeout is short so that a paused sync outlives its replication connection.
  const pg = await startPostgres({ conf: { wal_sender_timeout: "'5s'" } });
  let sql = pg.connect();
  return {
    driver: "pgx",
    ports: [pg.port],
    dbUrl: ([p]) => `postgres://postgres@127.0.0.1:${p}/postgres?connect_timeout=5`,
    async setup(schema) {
      await pg.psql(schema);
    },
    exec: (op, ms) => pgExecWithin(() => sql, () => sql = pg.connect(), op, ms),
    expected: (prefix) => expectedFromPg(pg.sql, prefix),
    async restart(crash, downMs) {
      await pg.stop(crash);
      await sleep(downMs);
      await pg.restart();
    },
    freeze: (ms) => freezeTree(pg.proc.pid, ms),
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
  // Ops waiting on the connection a fault is dropping: they end at once, as errors.
  const waiting = new Set<() => void>();
  const connect = async () => {
    if (conn) return conn;
    const c = await mysql.createConnection({
      host: "127.0.0.1",
      port: db.port,
      user: "root",
      password: db.password,
      database: "app",
      timezone: "Z",
      connectTimeout: 5000,
    });
    // An idle connection the server closed: the next op finds out (a fatal error).
    c.on("error", () => {});
    return conn = c;
  };
  const discard = () => {
    conn?.destroy();
    conn = undefined;
  };
  // A fault's drop: mysql2's destroy() never settles a query in flight, so the op waiting
  // on it is ended here, as an error.
  const drop = () => {
    discard();
    for (const f of waiting) f();
  };
  const rowsOf = (r: unknown) => Number((r as { affectedRows?: number }).affectedRows ?? 0);
  const run = async (op: Op): Promise<ExecResult> => {
    let c: mysql.Connection;
    try {
      c = await connect();
    } catch (e) {
      discard();
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
      if (err.fatal) discard();
      else await c.query("ROLLBACK").catch(discard);
      return { ok: false, rows: 0, error: err.message };
    }
  };
  return {
    driver: "mysql",
    ports: [db.port],
    dbUrl: ([p]) => `mysql://root:${encodeURIComponent(db.password)}@127.0.0.1:${p}/app`,
    async setup(schema) {
      await db.query(schema);
    },
    async exec(op, ms) {
      let dropped!: () => void;
      const gone = new Promise<ExecResult>((r) =>
        dropped = () => r({ ok: false, rows: 0, error: "connection dropped by a fault" })
      );
      waiting.add(dropped);
      try {
        const r = await within(Promise.race([run(op), gone]), ms);
        if (r !== LATE) return r;
        discard();
        return timedOut(ms);
      } finally {
        waiting.delete(dropped);
      }
    },
    expected: (prefix) => expectedFromMysql(db.query, prefix, ["app"], "app"),
    async restart(crash, downMs) {
      drop();
      await db.stop(crash);
      await sleep(downMs);
      await db.restart();
    },
    freeze: (ms) => freezeTree(db.proc.pid, ms),
    async rotate() {
      await db.query("FLUSH BINARY LOGS");
    },
    async purgeTo(file) {
      const files = async () => (await db.query("SHOW BINARY LOGS")).length;
      const before = await files();
      await db.query(`PURGE BINARY LOGS TO '${file.replace(/[^\w.-]/g, "")}'`);
      return before - await files();
    },
    async close() {
      drop();
      await db.close();
    },
  };
}
