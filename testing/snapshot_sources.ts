/**
 * One source under an online-snapshot test (PostgreSQL or MariaDB, each with its own etcd),
 * and the waits those tests share: a table caught mid-snapshot, its end, etcd equal to the
 * database by the independent checker, sync's exit.
 */
import { step } from "./steps.ts";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { type EtcdServer, startEtcd } from "./etcd.ts";
import { type PgServer, startPostgres } from "./postgres.ts";
import { type MariaServer, startMariadb } from "./mariadb.ts";
import { launchSync, runSync, type SyncRun } from "./sync.ts";
import { firstDifference, readEtcd, readEtcdKvs } from "./checker.ts";
import { freePort, waitFor } from "./process.ts";
import { expectedFromPg } from "./expected_pg.ts";
import { expectedFromMysql } from "./expected_mysql.ts";

export const ROWS = 20_000;
/** Small chunks: a snapshot of ROWS rows takes hundreds of chunks, long enough to act in. */
export const CHUNK = 50;
export const ERROR_LINE = /^sync: |level=error/;

/** One source under test: how to run SQL on it, what etcd must hold, how sync is started. */
export interface Source {
  name: "pgx" | "mysql";
  etcd: EtcdServer;
  exec(sql: string): Promise<unknown>;
  /** What etcd must hold for these tables, by the independent checker. */
  expected(tables: string[]): Promise<Map<string, string>>;
  args: string[];
  /** The state key's snapshot progress. */
  progressKey: string;
  close(): Promise<void>;
}

export async function pgSource(schema: string, more: string[] = []): Promise<Source> {
  const etcd = await startEtcd();
  let pg: PgServer;
  try {
    pg = await startPostgres();
    await pg.psql(schema);
  } catch (e) {
    await etcd.close();
    throw e;
  }
  return {
    name: "pgx",
    etcd,
    exec: (sql) => pg.psql(sql),
    expected: (tables) =>
      expectedFromPg(pg.sql, "/s", tables.map((table) => ({ schema: "public", table }))),
    args: [
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/s",
      ...more,
    ],
    progressKey: "/s-state/pgx-postgres/snapshots",
    close: async () => {
      await pg.close();
      await etcd.close();
    },
  };
}

export async function mysqlSource(schema: string, more: string[] = []): Promise<Source> {
  const etcd = await startEtcd();
  let db: MariaServer;
  try {
    db = await startMariadb();
    await db.query(`CREATE DATABASE app; USE app; ${schema}`);
  } catch (e) {
    await etcd.close();
    throw e;
  }
  return {
    name: "mysql",
    etcd,
    exec: (sql) => db.query(`USE app; ${sql}`),
    // The checker renders every keyed table of `app`: keep the ones asked for.
    expected: async (tables) => {
      const all = await expectedFromMysql(db.query, "/s", ["app"], "app");
      return new Map([...all].filter(([k]) => tables.some((t) => k.startsWith(`/s/${t}/`))));
    },
    args: [
      "--driver=mysql",
      `--db-url=${db.url}app`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/s",
      "--server-id=4271",
      ...more,
    ],
    progressKey: "/s-state/mysql-app/snapshots",
    close: async () => {
      await db.close();
      await etcd.close();
    },
  };
}

export type Progress = Record<string, { state: string; rows: number; after?: string[] | null }>;

export async function progress(src: Source): Promise<Progress> {
  const v = (await readEtcdKvs(src.etcd.endpoint, src.progressKey)).kvs.get(src.progressKey);
  return v ? JSON.parse(v.value) : {};
}

/** Start sync with `more` arguments; its output goes into failure messages. */
export function startSync(src: Source, more: string[] = []): SyncRun {
  return launchSync([...src.args, `--snapshot-chunk-rows=${CHUNK}`, ...more]);
}

export function withOutput(sync: SyncRun): (e: Error) => never {
  return (e) => {
    throw new Error(`${e.message}\n--- sync output:\n${sync.output()}`);
  };
}

/** Poll until etcd under /s/ equals `expected()` minus `skip`, or throw the difference. */
export async function converges(
  src: Source,
  tables: string[],
  skip: string[] = [],
  ms = 90_000,
): Promise<void> {
  step(`waiting for etcd to equal the database (${tables.join(", ")})`);
  const without = (m: Map<string, string>) => {
    for (const k of skip) m.delete(k);
    return m;
  };
  let diff: string | null = "not checked";
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    diff = firstDifference(
      without(await src.expected(tables)),
      without(await readEtcd(src.etcd.endpoint, "/s/")),
    );
    if (diff === null) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`etcd did not converge to the database: ${diff}`);
}

/** Ask the running sync to snapshot `table`, and wait until it is in the middle of it. */
export async function midSnapshot(src: Source, sync: SyncRun, table: string): Promise<void> {
  const cli = src.args.filter((a) => !a.startsWith("--snapshot"));
  const asked = await runSync(["snapshot", table, ...cli]);
  assertEquals(asked.code, 0, asked.stderr);
  await waitFor(`${table}'s snapshot under way (rows read, not done)`, async () => {
    const s = (await progress(src))[table];
    return s?.state === "running" && s.rows > 0 && s.rows < ROWS;
  }, 60_000).catch(withOutput(sync));
}

/** Wait until `table`'s snapshot is done, by the state key. */
export function snapshotDone(src: Source, sync: SyncRun, table: string): Promise<void> {
  return waitFor(`${table}'s snapshot done`, async () => {
    return (await progress(src))[table]?.state === "done";
  }, 90_000).catch(withOutput(sync));
}

/** sync's exit status, once it exits (within `ms`). */
export async function exitStatus(sync: SyncRun, ms = 90_000): Promise<number> {
  await waitFor("sync to exit", () => sync.done, ms).catch(withOutput(sync));
  return await sync.exited;
}

/** Writes to `table` rows 1..5, one after another, until stopped. */
export function writer(src: Source, table: string): { stop(): Promise<number> } {
  let on = true;
  let n = 0;
  const run = (async () => {
    while (on) {
      n++;
      await src.exec(`UPDATE ${table} SET v = 'write ${n}' WHERE id = ${(n % 5) + 1};`);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    stop: async () => {
      on = false;
      await run;
      return n;
    },
  };
}

/**
 * A row too large for etcd stopped `table`'s snapshot: its cursor is still before `id`, and
 * etcd keeps the row's old value `old`.
 */
async function assertStoppedBefore(
  src: Source,
  table: string,
  id: number,
  old: string,
): Promise<void> {
  const s = (await progress(src))[table];
  assertEquals(s?.state, "running", JSON.stringify(s));
  assert(!s.after || Number(s.after[0]) < id, `cursor ${JSON.stringify(s.after)}`);
  const etcd = await readEtcd(src.etcd.endpoint, `/s/${table}/`);
  assertEquals(JSON.parse(etcd.get(`/s/${table}/${id}`)!).v, old);
}

/**
 * Row `id` of table `big` is made larger than etcd accepts by `sql`, without a row change
 * the stream shows, so only big's snapshot reads it. With `--oversize fail` sync stops with
 * status 1 and one line naming table and key, the cursor before the row and its old value
 * kept, and a restart stops at the same row; with `skip` the row is logged, counted and kept
 * as etcd held it, and everything else converges.
 */
export async function oversizeStopsThenSkips(src: Source, sql: string, id: number) {
  const tables = ["big", "steady"];
  const limit = "--etcd-max-txn-bytes=200KiB";
  let sync = startSync(src, [limit]);
  try {
    await converges(src, tables).catch(withOutput(sync));

    step("a row of big made larger than etcd accepts, without a row change the stream shows");
    await src.exec(sql);
    const exited = await exitStatus(sync);
    const out = sync.output();
    assertEquals(exited, 1, `sync stops with status 1:\n${out}`);
    const errors = out.split("\n").filter((l) => ERROR_LINE.test(l));
    assertEquals(errors.length, 1, `one error line:\n${out}`);
    assertMatch(errors[0], new RegExp(`row too large for etcd: table big key ${id} needs`));

    step("nothing past that row confirmed: the cursor is before it, its old value stays");
    await assertStoppedBefore(src, "big", id, `b${id}`);

    step("started again, it stops at the same row (it is not passed over)");
    sync = startSync(src, [limit]);
    assertEquals(await exitStatus(sync), 1, `stops again:\n${sync.output()}`);
    assertMatch(sync.output(), new RegExp(`table big key ${id} needs`));
    await assertStoppedBefore(src, "big", id, `b${id}`);

    step("with --oversize skip: logged, counted, the rest converges");
    const port = freePort();
    sync = startSync(src, [limit, "--oversize=skip", `--http-addr=127.0.0.1:${port}`]);
    await snapshotDone(src, sync, "big");
    await src.exec("UPDATE steady SET v = 'later' WHERE id = 1;");
    await converges(src, tables, [`/s/big/${id}`]).catch(withOutput(sync));
    assertMatch(
      sync.output(),
      new RegExp(`msg="row too large for etcd; skipped" table=big key=${id} bytes=\\d+`),
    );
    // Skipped, not deleted: its key keeps what etcd held (as for a streamed row).
    const kept = await readEtcd(src.etcd.endpoint, `/s/big/${id}`);
    assertEquals(JSON.parse(kept.get(`/s/big/${id}`)!).v, `b${id}`);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const counted = metrics.split("\n").filter((l) => l.includes("oversize")).join("; ");
    assertMatch(
      metrics,
      /^sync_oversize_rows_skipped_total(\{[^}]*\})? [1-9]\d*$/m,
      `the skipped row is counted: ${counted}`,
    );
    assert(!sync.done, `sync keeps running:\n${sync.output()}`);
    const later = sync.output().split("\n").filter((l) => ERROR_LINE.test(l));
    assertEquals(later, [], "no error lines");
  } finally {
    await sync.stop();
  }
}
