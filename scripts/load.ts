/**
 * `scripts/load [--driver pgx|mysql|both] [--duration 5m] [--rate 2500] [--clients 4]`:
 * a sustained write load on the source while sync replicates it. Per driver: etcd, the
 * database and sync (from source, with the CLI's permissions) are started, the load runs at
 * `--rate` row changes/s (several connections, short transactions of multi-row INSERT, UPDATE
 * and DELETE), and every second sync's lag and RSS are sampled. Lag is measured from outside:
 * a heartbeat row gets the database's clock every 100 ms and the script polls its etcd key
 * (with the `etcd3` gRPC client, not sync's); lag = now − the heartbeat etcd holds. After the
 * load, the time until lag < 1 s is measured and the independent checker compares etcd with
 * the database. One summary line per driver on stdout (progress on stderr); exit 1 when the
 * rate was not reached, catch-up took more than 10 s, or etcd did not converge.
 */
import postgres from "postgres";
import mysql from "mysql2/promise";
import { Etcd3 } from "etcd3";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { startSync } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";

type Driver = "pgx" | "mysql";

const USAGE = "usage: scripts/load [--driver pgx|mysql|both] [--duration 5m] " +
  "[--rate 2500] [--clients 4] [--rows 10] [--min-rate 2000]";
const PREFIX = "/load";
const SEED_ROWS = 20_000;
const CATCHUP_LIMIT_MS = 10_000;

function fail(msg: string): never {
  console.error(`load: ${msg}\n${USAGE}`);
  Deno.exit(2);
}

/** `90s`, `5m`, `1h`, `1500ms`, or plain seconds. */
function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) fail(`bad duration ${s}`);
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "s"]!);
}

function parseArgs(args: string[]) {
  const o: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "-h" || args[i] === "--help") {
      console.log(USAGE);
      Deno.exit(0);
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(args[i]);
    if (!m) fail(`unexpected argument ${args[i]}`);
    const v = m[2] ?? args[++i];
    if (v === undefined) fail(`--${m[1]} needs a value`);
    if (!["driver", "duration", "rate", "clients", "rows", "min-rate"].includes(m[1])) {
      fail(`unknown option --${m[1]}`);
    }
    o[m[1]] = v;
  }
  const driver = o.driver ?? "both";
  if (!["pgx", "mysql", "both"].includes(driver)) fail(`bad driver ${driver}`);
  const num = (k: string, d: number) => {
    const n = o[k] === undefined ? d : Number(o[k]);
    if (!Number.isFinite(n) || n <= 0) fail(`bad --${k} ${o[k]}`);
    return n;
  };
  return {
    drivers: (driver === "both" ? ["pgx", "mysql"] : [driver]) as Driver[],
    durationMs: parseDuration(o.duration ?? "5m"),
    rate: num("rate", 2500),
    clients: Math.round(num("clients", 4)),
    /** Rows per statement: each transaction inserts, updates and deletes this many. */
    rows: Math.round(num("rows", 10)),
    minRate: num("min-rate", 2000),
  };
}

/** One source connection: runs a transaction of statements, returns rows changed. */
type Exec = (stmts: string[]) => Promise<number>;

interface Source {
  /** A new connection for one load client. */
  client(): Promise<{ exec: Exec; close(): Promise<void> }>;
  /** SQL for the heartbeat: the database's clock in ms since the epoch. */
  heartbeat(): Promise<void>;
  expected(): Promise<Map<string, string>>;
  dbUrl: string;
  close(): Promise<void>;
}

const PAYLOAD = "x".repeat(80);
/** Every wait has a deadline: a transaction, a heartbeat, an etcd read. */
const TXN_DEADLINE_MS = 30_000;
const POLL_DEADLINE_MS = 5_000;

/** `p`, or a rejection saying `what` timed out once `ms` passed. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function pgSource(): Promise<Source> {
  const pg = await startPostgres({ conf: { max_connections: 50 } });
  await pg.psql(`
    CREATE TABLE load_rows (id bigint PRIMARY KEY, client int NOT NULL, n int NOT NULL,
      payload text NOT NULL, at timestamptz NOT NULL DEFAULT now());
    INSERT INTO load_rows SELECT g, -1, 0, '${PAYLOAD}' FROM generate_series(1, ${SEED_ROWS}) g;
    CREATE TABLE heartbeat (id int PRIMARY KEY, ms bigint NOT NULL);
    INSERT INTO heartbeat VALUES (1, 0);`);
  const hb = pg.connect();
  return {
    dbUrl: `${pg.url}`,
    client() {
      const sql = postgres({
        host: "127.0.0.1",
        port: pg.port,
        user: "postgres",
        database: "postgres",
        max: 1,
        onnotice: () => {},
        connect_timeout: 10,
      });
      return Promise.resolve({
        exec: async (stmts: string[]) => {
          let n = 0;
          await sql.begin(async (tx) => {
            for (const s of stmts) n += (await tx.unsafe(s)).count ?? 0;
          });
          return n;
        },
        // Also a connection stuck past its deadline: destroyed, its query failing.
        close: () => sql.end({ timeout: 1 }).catch(() => {}),
      });
    },
    async heartbeat() {
      await hb`UPDATE heartbeat
        SET ms = (extract(epoch FROM clock_timestamp()) * 1000)::bigint WHERE id = 1`;
    },
    expected: () => expectedFromPg(pg.sql, PREFIX),
    async close() {
      await hb.end({ timeout: 1 }).catch(() => {});
      await pg.close();
    },
  };
}

async function mysqlSource(): Promise<Source> {
  const db = await startMariadb();
  const seed = Array.from({ length: SEED_ROWS }, (_, i) => `(${i + 1}, -1, 0, '${PAYLOAD}')`);
  await db.query(`CREATE DATABASE app;
    CREATE TABLE app.load_rows (id BIGINT PRIMARY KEY, client INT NOT NULL, n INT NOT NULL,
      payload TEXT NOT NULL, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
    INSERT INTO app.load_rows (id, client, n, payload) VALUES ${seed.join(",")};
    CREATE TABLE app.heartbeat (id INT PRIMARY KEY, ms BIGINT NOT NULL);
    INSERT INTO app.heartbeat VALUES (1, 0);`);
  const opts = {
    host: "127.0.0.1",
    port: db.port,
    user: "root",
    password: db.password,
    database: "app",
    timezone: "Z",
    connectTimeout: 10_000,
  };
  const hb = await mysql.createConnection(opts);
  hb.on("error", () => {}); // a lost connection fails the next heartbeat instead
  return {
    dbUrl: `${db.url}app`,
    async client() {
      // One round trip per transaction: the statements go as one multi-statement query.
      const c = await mysql.createConnection({ ...opts, multipleStatements: true });
      c.on("error", () => {});
      return {
        exec: async (stmts) => {
          const sql = `BEGIN; ${stmts.join("; ")}; COMMIT`;
          const [rs] = await c.query({ sql, timeout: TXN_DEADLINE_MS });
          const list = (Array.isArray(rs) ? rs : [rs]) as { affectedRows?: number }[];
          return list.reduce((n, r) => n + Number(r.affectedRows ?? 0), 0);
        },
        close: async () => {
          // end() waits for the server; a stuck one is destroyed instead.
          await within(c.end(), 5_000, "closing").catch(() => c.destroy());
        },
      };
    },
    async heartbeat() {
      await hb.query({
        sql:
          "UPDATE heartbeat SET ms = CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS UNSIGNED) WHERE id = 1",
        timeout: POLL_DEADLINE_MS,
      });
    },
    expected: () => expectedFromMysql(db.query, PREFIX, ["app"], "app"),
    async close() {
      await within(hb.end(), 5_000, "closing").catch(() => hb.destroy());
      await db.close();
    },
  };
}

/**
 * One load client: owns the ids ≡ `me` (mod `clients`) above the seed rows, keeps a window
 * of live ones, and per transaction inserts `rows` new rows, updates as many live ones
 * and deletes the oldest ones, so the table stays the same size.
 */
class LoadClient {
  #next: number;
  #live: number[] = [];
  #n = 0;
  constructor(readonly me: number, readonly clients: number, readonly rows: number) {
    this.#next = SEED_ROWS + 1 + me;
  }

  statements(): string[] {
    const ins: number[] = [];
    for (let i = 0; i < this.rows; i++, this.#next += this.clients) ins.push(this.#next);
    this.#n++;
    const stmts = [
      `INSERT INTO load_rows (id, client, n, payload) VALUES ${
        ins.map((id) => `(${id}, ${this.me}, ${this.#n}, '${PAYLOAD}')`).join(",")
      }`,
    ];
    if (this.#live.length >= this.rows * 4) {
      const upd = new Set<number>();
      while (upd.size < this.rows) {
        upd.add(this.#live[Math.floor(Math.random() * this.#live.length)]);
      }
      stmts.push(
        `UPDATE load_rows SET n = n + 1, payload = '${this.#n}-${PAYLOAD}' WHERE id IN (${
          [...upd].join(",")
        })`,
      );
      const del = this.#live.splice(0, this.rows);
      stmts.push(`DELETE FROM load_rows WHERE id IN (${del.join(",")})`);
    }
    this.#live.push(...ins);
    return stmts;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

function rssKb(pid: number, field = "VmRSS"): number {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(s)?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  try {
    const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
    // Fields 14 and 15 of stat (utime, stime), counted after the command name; USER_HZ 100.
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

interface Result {
  line: string;
  pass: boolean;
  /** etcd was killed by a signal nobody here sent: the machine's doing, not sync's. */
  void: boolean;
}

/** What to stop on Ctrl-C / SIGTERM: the servers and sync of the run in progress. */
const cleanups = new Set<() => Promise<void>>();

async function runOne(driver: Driver, o: ReturnType<typeof parseArgs>): Promise<Result> {
  const say = (m: string) => console.error(`load ${driver}: ${m}`);
  // Set up as a production etcd would be: history compacted, snapshots taken, so that
  // minutes of load (~750k revisions) do not pile up in its memory.
  const etcd = await startEtcd({
    args: [
      "--auto-compaction-mode=revision",
      "--auto-compaction-retention=50000",
      "--snapshot-count=10000",
    ],
  });
  let running = true;
  const started: (() => Promise<void>)[] = [() => etcd.close()];
  const cleanup = async () => {
    for (const c of started.reverse()) await c().catch(() => {});
  };
  cleanups.add(cleanup);
  const src = await (driver === "pgx" ? pgSource() : mysqlSource());
  started.push(() => src.close());
  const sync = startSync([
    `--driver=${driver}`,
    `--db-url=${src.dbUrl}`,
    `--etcd-endpoints=${etcd.endpoint}`,
    `--etcd-prefix=${PREFIX}`,
    "--log-level=warn",
  ]);
  started.push(() => sync.stop());
  // A server that dies under us is reported as such, not as sync falling behind.
  const died: string[] = [];
  let killed = false;
  etcd.proc.exited.then((st) => {
    if (!running) return;
    killed = st.signal !== null;
    died.push(
      `etcd exited (${st.signal ?? st.code}); its last lines:\n${
        etcd.proc.output().split("\n").slice(-5).join("\n")
      }`,
    );
  });
  const watcher = new Etcd3({ hosts: etcd.endpoint });
  const hbKey = `${PREFIX}/heartbeat/1`;
  let hbMs = 0;
  const errors: string[] = [];
  // Heartbeat writer (100 ms) and etcd poller (50 ms), both until the end of the run.
  const beating = (async () => {
    while (running) {
      await within(src.heartbeat(), POLL_DEADLINE_MS, "heartbeat")
        .catch((e) => errors.push(`heartbeat: ${e.message}`));
      await sleep(100);
    }
  })();
  const polling = (async () => {
    while (running) {
      try {
        const v = await within(watcher.get(hbKey).string(), POLL_DEADLINE_MS, "etcd read");
        if (v) hbMs = Number(JSON.parse(v).ms);
      } catch { /* etcd busy: the next poll tells */ }
      await sleep(50);
    }
  })();
  const lagMs = () => Date.now() - hbMs;
  try {
    say(`sync pid ${sync.pid}; waiting for the dump`);
    const t0 = Date.now();
    while (lagMs() > 1000) {
      if (Date.now() - t0 > 120_000) throw new Error(`sync did not start:\n${sync.output()}`);
      await sleep(100);
    }
    say(`in sync after ${Date.now() - t0} ms; load at ${o.rate}/s for ${o.durationMs / 1000}s`);

    // The load: each transaction takes a ticket; ticket i is due at start + i × interval,
    // so the rate holds steady (pgbench -R) and a slow moment is made up right after.
    const changesPerTxn = o.rows * 3;
    const interval = 1000 * changesPerTxn / o.rate;
    const start = Date.now();
    const cpu0 = cpuSeconds(sync.pid);
    const end = start + o.durationMs;
    let ticket = 0;
    let changes = 0;
    let txns = 0;
    const clients = await Promise.all(
      Array.from({ length: o.clients }, async (_, i) => ({
        gen: new LoadClient(i, o.clients, o.rows),
        conn: await src.client(),
      })),
    );
    const loops = clients.map(async (client) => {
      const { gen } = client;
      for (;;) {
        const due = start + ticket++ * interval;
        if (due >= end) return;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        try {
          // Not `changes += await ...`: that reads `changes` before the await and loses
          // the other clients' additions made meanwhile.
          const n = await within(client.conn.exec(gen.statements()), TXN_DEADLINE_MS, "txn");
          changes += n;
          txns++;
        } catch (e) {
          errors.push(`load: ${(e as Error).message}`);
          if (errors.length > 20) throw e;
          // A connection whose transaction timed out may still be stuck: a fresh one.
          if (/timed out/.test((e as Error).message)) {
            await client.conn.close();
            client.conn = await src.client();
          }
        }
      }
    });
    const lags: number[] = [];
    let peakRss = 0;
    let etcdRss = 0;
    let lastChanges = 0;
    const sampler = (async () => {
      for (let s = 1; Date.now() < end; s++) {
        await sleep(start + s * 1000 - Date.now());
        const lag = lagMs();
        const rss = rssKb(sync.pid);
        lags.push(lag);
        if (rss > peakRss) peakRss = rss;
        const erss = rssKb(etcd.proc.pid);
        if (erss > etcdRss) etcdRss = erss;
        if (s % 10 === 0) {
          say(
            `t=${s}s changes/s=${Math.round((changes - lastChanges) / 10)} lag=${lag}ms ` +
              `rss=${Math.round(rss / 1024)}MiB etcd_rss=${Math.round(erss / 1024)}MiB`,
          );
          lastChanges = changes;
        }
      }
    })();
    await Promise.all(loops);
    const loadEnd = Date.now();
    const cpu = cpuSeconds(sync.pid) - cpu0;
    await sampler;
    await Promise.all(clients.map((c) => c.conn.close()));
    const achieved = changes / ((loadEnd - start) / 1000);

    // Catch-up: from the end of the load until etcd holds a heartbeat under 1 s old.
    let catchup = NaN;
    while (Date.now() - loadEnd < 120_000) {
      if (lagMs() < 1000) {
        catchup = Date.now() - loadEnd;
        break;
      }
      const rss = rssKb(sync.pid);
      if (rss > peakRss) peakRss = rss;
      await sleep(50);
    }
    // VmHWM: the kernel's own peak, between our samples too.
    const hwm = rssKb(sync.pid, "VmHWM");
    let converged = true;
    let diff = "";
    try {
      await assertConverges(etcd.endpoint, `${PREFIX}/`, () => src.expected(), 60_000);
    } catch (e) {
      converged = false;
      diff = (e as Error).message.split("\n")[0];
    }
    const sorted = [...lags].sort((a, b) => a - b);
    const mib = (kb: number) => `${(kb / 1024).toFixed(0)}MiB`;
    const pass = achieved >= o.minRate && catchup <= CATCHUP_LIMIT_MS && converged &&
      !died.length && sync.pid > 0 && !Number.isNaN(rssKb(sync.pid));
    const line = `load driver=${driver} duration=${o.durationMs / 1000}s clients=${o.clients} ` +
      `rows/stmt=${o.rows} ` +
      `txns=${txns} changes=${changes} changes/s=${achieved.toFixed(0)} ` +
      `max_lag=${(sorted.at(-1)! / 1000).toFixed(2)}s p99_lag=${
        (pct(sorted, 0.99) / 1000).toFixed(2)
      }s ` +
      `p50_lag=${(pct(sorted, 0.5) / 1000).toFixed(2)}s peak_rss=${mib(peakRss)} ` +
      `hwm_rss=${mib(hwm)} etcd_peak_rss=${mib(etcdRss)} sync_cpu=${
        (100 * cpu / ((loadEnd - start) / 1000)).toFixed(0)
      }% ` +
      `catchup=${Number.isNaN(catchup) ? ">120s" : `${(catchup / 1000).toFixed(2)}s`} converged=${
        converged ? "yes" : "no"
      }${died.length ? " error=etcd-exited" : ""} result=${pass ? "PASS" : "FAIL"}`;
    if (diff) say(diff);
    for (const d of died) say(d);
    if (Number.isNaN(rssKb(sync.pid))) say("sync exited during the run");
    if (errors.length) say(`${errors.length} errors, first: ${errors[0]}`);
    if (!pass) say(`sync output:\n${sync.output().split("\n").slice(-20).join("\n")}`);
    return { line, pass, void: !pass && killed };
  } finally {
    running = false;
    await Promise.all([beating, polling]).catch(() => {});
    watcher.close();
    cleanups.delete(cleanup);
    await cleanup();
  }
}

if (import.meta.main) {
  const opts = parseArgs(Deno.args);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, async () => {
      console.error(`load: ${sig}, stopping everything`);
      // The load clients' sockets die with the servers: nothing to report about that now.
      globalThis.addEventListener("error", (e) => e.preventDefault());
      globalThis.addEventListener("unhandledrejection", (e) => e.preventDefault());
      for (const c of cleanups) await c();
      Deno.exit(130);
    });
  }
  let failed = false;
  for (const driver of opts.drivers) {
    try {
      let r = await runOne(driver, opts);
      // On a shared machine a stray SIGKILL (a stale PID reused) can hit our etcd: such a
      // run measures nothing, so it is reported and run once more.
      if (r.void) {
        console.error(`load ${driver}: etcd was killed from outside; run void, once more`);
        console.log(r.line.replace("result=FAIL", "result=VOID"));
        r = await runOne(driver, opts);
      }
      console.log(r.line);
      if (!r.pass) failed = true;
    } catch (e) {
      console.log(`load driver=${driver} result=FAIL error=${(e as Error).message.split("\n")[0]}`);
      console.error((e as Error).message);
      failed = true;
    }
  }
  Deno.exit(failed ? 1 : 0);
}
