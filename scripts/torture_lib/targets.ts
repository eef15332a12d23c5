/**
 * The source databases under torture: start one (tests/harness), run the workload's
 * operations against it directly (not through the proxy), restart it, and render what it
 * holds for the checker.
 */
import mysql from "mysql2/promise";
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
  /** The port the proxy forwards to. */
  readonly port: number;
  /** sync's --db-url, given the proxy's port. */
  dbUrl(proxyPort: number): string;
  setup(schema: string): Promise<void>;
  exec(op: Op): Promise<ExecResult>;
  /** Expected etcd contents under `prefix`. */
  expected(prefix: string): Promise<Map<string, string>>;
  /** Stop (a crash when `crash`), wait `downMs`, start again on the same data. */
  restart(crash: boolean, downMs: number): Promise<void>;
  close(): Promise<void>;
  /** MariaDB: rotate the binlog and purge files older than `keep` (sync's saved file). */
  rotatePurge?(keep: string | undefined): Promise<string>;
}

class Rollback extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startPgTarget(): Promise<Target> {
  // wal_sender_timeout is short so that a paused sync outlives its replication connection.
  const pg = await startPostgres({ conf: { wal_sender_timeout: "'5s'" } });
  const sql = pg.connect();
  return {
    driver: "pgx",
    port: pg.port,
    dbUrl: (p) => `postgres://postgres@127.0.0.1:${p}/postgres?connect_timeout=5`,
    async setup(schema) {
      await pg.psql(schema);
    },
    async exec(op) {
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
    },
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
    port: db.port,
    dbUrl: (p) => `mysql://root:${encodeURIComponent(db.password)}@127.0.0.1:${p}/app`,
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
