/**
 * `/metrics` and `/readyz` of a real running sync (PostgreSQL and MariaDB), checked against
 * what the test made happen: rows dumped per table, changes by table and kind, source
 * transactions, etcd transactions (against etcd's own revision) and their latency
 * histogram, lag in seconds and bytes while etcd is paused (against the server's own
 * positions), reconnects by reason after a database restart; and the Grafana dashboard
 * referencing only metric names that `/metrics` really exports.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { startSync } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";
import { freePort, type Spawned, waitFor } from "../testing/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("../", import.meta.url).pathname;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * The Prometheus text format's samples (enough of it for our own output); each `# TYPE`
 * line as a sample named `# TYPE` with the family in its labels (a family declared with no
 * series yet).
 */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) out.push({ name: "# TYPE", labels: { family: type[1], type: type[2] }, value: 0 });
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function find(s: Sample[], name: string, labels: Record<string, string>): Sample | undefined {
  return s.find((x) =>
    x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v) &&
    Object.keys(x.labels).length === Object.keys(labels).length
  );
}

/** The value of one series; a series that is not exported fails (it does not read as 0). */
function val(s: Sample[], name: string, labels: Record<string, string> = {}): number {
  const hit = find(s, name, labels);
  assert(hit, `no series ${name}${JSON.stringify(labels)} in /metrics`);
  return hit.value;
}

/**
 * One label set of a labelled counter: 0 when that label set was never counted, but the
 * counter itself must be declared (its `# TYPE` line).
 */
function count(s: Sample[], name: string, labels: Record<string, string>): number {
  assert(find(s, "# TYPE", { family: name, type: "counter" }), `no counter ${name} in /metrics`);
  return find(s, name, labels)?.value ?? 0;
}

function sum(s: Sample[], name: string): number {
  return s.filter((x) => x.name === name).reduce((a, x) => a + x.value, 0);
}

/**
 * A `/readyz` answer whose `ready` disagrees with its status, or that is not the JSON object
 * sync serves: recorded where it is seen, because a check inside `waitFor` that throws is
 * retried until it passes, so its own assertion could never fail the test.
 */
function readyViolation(status: number, body: unknown): string | null {
  const b = body as { ready?: unknown; reason?: unknown; phase?: unknown } | null;
  if (
    !b || typeof b.ready !== "boolean" || typeof b.reason !== "string" ||
    typeof b.phase !== "string"
  ) return `${status} ${JSON.stringify(body)}: not a readiness answer`;
  if (b.ready !== (status === 200)) return `${status} ${JSON.stringify(body)}: ready vs status`;
  return null;
}

function client(port: number) {
  const base = `http://127.0.0.1:${port}`;
  const violations: string[] = [];
  return {
    /** Every inconsistent `/readyz` answer `ready()` saw; the test ends asserting none. */
    violations,
    async metrics(): Promise<Sample[]> {
      const r = await fetch(`${base}/metrics`);
      assertEquals(r.status, 200);
      assertMatch(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      return parseMetrics(await r.text());
    },
    async text(): Promise<string> {
      return await (await fetch(`${base}/metrics`)).text();
    },
    async ready(): Promise<{ status: number; reason: string; phase: string }> {
      const r = await fetch(`${base}/readyz`);
      const j = await r.json();
      const bad = readyViolation(r.status, j);
      if (bad) violations.push(bad);
      assert(!bad, bad ?? "");
      return { status: r.status, reason: j.reason, phase: j.phase };
    },
  };
}

/**
 * Records every distinct `/readyz` answer until stopped (to see the short phases). Only a
 * refused or dropped connection is skipped (not listening yet, or restarting): an
 * inconsistent or malformed answer ends the watch and fails `stop()`.
 */
function watchReady(port: number) {
  const seen = new Set<string>();
  let on = true;
  const done = (async () => {
    while (on) {
      let r: Response | undefined;
      let body: unknown;
      try {
        r = await fetch(`http://127.0.0.1:${port}/readyz`);
        body = await r.json();
      } catch (e) {
        if (!(e instanceof TypeError)) throw e; // fetch's connection errors
        r = undefined;
      }
      if (r) {
        const bad = readyViolation(r.status, body);
        assert(!bad, `/readyz: ${bad}`);
        seen.add(`${r.status} ${(body as { reason: string }).reason}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  // Reported by stop(), not as an unhandled rejection that would name no test.
  done.catch(() => {});
  return {
    seen,
    async stop() {
      on = false;
      await done;
    },
  };
}

/** etcd's current revision, through its gateway. */
async function etcdRevision(endpoint: string): Promise<number> {
  const r = await fetch(`${endpoint}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: btoa("\0") }),
  });
  return Number((await r.json()).header.revision);
}

/**
 * Metrics and etcd's revision at one quiet moment: two readings 300 ms apart agree on both
 * (an idle sync may save a keepalive position at any time, and counts it only once etcd's
 * answer is back).
 */
async function quietSnapshot(port: number, endpoint: string) {
  const read = async () => {
    const m = await client(port).metrics();
    return { m, revision: await etcdRevision(endpoint), txns: val(m, "sync_etcd_txns_total") };
  };
  let last = await read();
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 300));
    const now = await read();
    if (
      now.txns === last.txns && now.revision === last.revision &&
      val(now.m, "sync_backlog_changes") === 0
    ) return now;
    last = now;
  }
  throw new Error("sync never went quiet");
}

/** The histogram is well-formed and counts every etcd transaction. */
function assertHistogram(m: Sample[]) {
  const buckets = m.filter((x) => x.name === "sync_etcd_txn_duration_seconds_bucket");
  assert(buckets.length > 2, "histogram buckets exported");
  assertEquals(buckets.at(-1)!.labels.le, "+Inf");
  for (let i = 1; i < buckets.length; i++) {
    assert(buckets[i].value >= buckets[i - 1].value, "buckets are cumulative");
    assert(
      Number(buckets[i].labels.le) > Number(buckets[i - 1].labels.le) || i === buckets.length - 1,
    );
  }
  const count = val(m, "sync_etcd_txn_duration_seconds_count");
  assertEquals(buckets.at(-1)!.value, count);
  assertEquals(count, val(m, "sync_etcd_txns_total"));
  assert(val(m, "sync_etcd_txn_duration_seconds_sum") > 0, "latencies summed");
}

/**
 * Every metric the dashboard queries is exported, and every family exported is on the
 * dashboard (a histogram through its `_bucket`/`_sum`/`_count` series).
 */
/**
 * Restart the database under a running sync: /readyz must answer 503 "phase is retrying"
 * while it is down and 200 once sync streams again, and a reconnect must be counted.
 * Returns the metrics snapshot taken before, and when the restart began (epoch seconds).
 */
async function restartObserved(
  c: ReturnType<typeof client>,
  port: number,
  endpoint: string,
  sync: Spawned,
  db: { stop(): Promise<void>; restart(): Promise<void> },
) {
  const before = await quietSnapshot(port, endpoint);
  const at = Date.now() / 1000;
  const watch = watchReady(port);
  await db.stop();
  await waitFor(
    "503 while the database is down",
    async () => {
      const r = await c.ready();
      return r.status === 503 && r.reason === "phase is retrying";
    },
    60_000,
    () => sync.output(),
  );
  await db.restart();
  await waitFor(
    "a reconnect to be counted",
    async () =>
      sum(await c.metrics(), "sync_reconnects_total") > sum(before.m, "sync_reconnects_total"),
    120_000,
    () => sync.output(),
  );
  await waitFor(
    "sync to stream again",
    async () => (await c.ready()).status === 200,
    120_000,
    () => sync.output(),
  );
  await watch.stop();
  assert(watch.seen.has("503 phase is retrying"), `503 while retrying: ${[...watch.seen]}`);
  return { before, at };
}

/**
 * An online snapshot of `table` (after an ALTER) finished and was counted: `rows` rows read,
 * `written` of them written (the rest were the stream's to write), one snapshot done, and
 * none counted as a streamed change.
 */
async function snapshotCounted(
  c: ReturnType<typeof client>,
  sync: Spawned,
  table: string,
  [rows, written]: [number, number],
  before: { m: ReturnType<typeof parseMetrics> },
) {
  const one = (m: ReturnType<typeof parseMetrics>, name: string) =>
    m.find((x) => x.name === name && x.labels.table === table)?.value ?? 0;
  await waitFor(
    "the snapshot to be counted done",
    async () => {
      return one(await c.metrics(), "sync_snapshots_done_total") === 1;
    },
    60_000,
    () => sync.output(),
  );
  const m = await c.metrics();
  assertEquals(one(m, "sync_snapshot_rows_total"), rows, "rows read");
  assertEquals(one(m, "sync_snapshot_writes_total"), written, "rows written");
  assert(one(m, "sync_snapshot_chunks_total") >= 1, "chunks");
  const streamed = (x: ReturnType<typeof parseMetrics>) =>
    x.filter((s) => s.name === "sync_changes_total" && s.labels.table === table)
      .reduce((n, s) => n + s.value, 0);
  assert(streamed(m) - streamed(before.m) <= 1, "snapshot rows counted as streamed changes");
}

async function assertDashboardMatches(metricsText: string) {
  const dash = JSON.parse(await Deno.readTextFile(`${ROOT}docs/grafana-dashboard.json`));
  const exprs: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (k === "expr" && typeof x === "string") exprs.push(x);
        else walk(x);
      }
    }
  };
  walk(dash);
  assert(exprs.length > 5, "the dashboard has queries");
  const used = new Set(
    exprs.flatMap((e) => [...e.matchAll(/\bsync_[a-z0-9_]+/g)].map((m) => m[0])),
  );
  const exported = new Set(parseMetrics(metricsText).map((s) => s.name));
  for (const name of used) assert(exported.has(name), `dashboard queries ${name}, not exported`);
  const families = [...metricsText.matchAll(/^# TYPE (\S+) (\S+)$/gm)];
  for (const [, name, type] of families) {
    if (name === "sync_info") continue;
    const covered = type === "histogram"
      ? ["_bucket", "_sum", "_count"].some((s) => used.has(name + s))
      : used.has(name);
    assert(covered, `${name} is exported but not on the dashboard`);
  }
}

async function stopAll(sync: Spawned | undefined, ...closers: (() => Promise<void>)[]) {
  await sync?.stop();
  for (const c of closers) await c().catch(() => {});
}

test("pgx: /metrics and /readyz of a running sync", opts, async () => {
  const etcd = await startEtcd();
  const pg = await startPostgres();
  const port = freePort();
  let sync: Spawned | undefined;
  try {
    await pg.sql`CREATE TABLE a (id int PRIMARY KEY, v text)`;
    await pg.sql`CREATE TABLE b (id int PRIMARY KEY, v text)`;
    await pg.sql`INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 3000) g`;
    await pg.sql`INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 500) g`;
    await pg.sql`ANALYZE`;
    const watch = watchReady(port);
    sync = startSync([
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/m",
      `--http-addr=127.0.0.1:${port}`,
      "--ready-max-lag=2s",
      // Small transactions: a dump long enough to be seen, and a known lower bound of them.
      "--etcd-max-txn-ops=4",
      "--etcd-timeout=120s",
      "--status-interval=1s",
    ]);
    const expected = () => expectedFromPg(pg.sql, "/m");
    await assertConverges(etcd.endpoint, "/m/", expected, 120_000);
    const c = client(port);
    await waitFor("/readyz 200", async () => (await c.ready()).status === 200, 30_000);
    await watch.stop();
    assert(watch.seen.has("503 phase is dump"), `503 during the dump: ${[...watch.seen]}`);
    assertEquals(await c.ready(), { status: 200, reason: "streaming", phase: "sync" });
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assertEquals([health.status, await health.text()], [200, "ok\n"]);

    // The dump, per table.
    let s1 = await quietSnapshot(port, etcd.endpoint);
    let m = s1.m;
    assertEquals(val(m, "sync_phase", { phase: "sync" }), 1);
    assertEquals(val(m, "sync_phase", { phase: "dump" }), 0);
    assertEquals(val(m, "sync_dump_rows_total", { table: "a" }), 3000);
    assertEquals(val(m, "sync_dump_rows_total", { table: "b" }), 500);
    assertEquals(val(m, "sync_dump_rows_estimated", { table: "a" }), 3000);
    assertEquals(val(m, "sync_dump_rows_estimated", { table: "b" }), 500);
    // 3,500 puts at most 4 operations per transaction.
    assert(val(m, "sync_etcd_txns_total") >= 875, `${val(m, "sync_etcd_txns_total")} txns`);
    assertHistogram(m);

    // Streamed changes, by table and kind, in four source transactions.
    await pg.sql`INSERT INTO a SELECT g, 'new' FROM generate_series(5001, 5010) g`;
    await pg.sql`UPDATE a SET v = 'upd' WHERE id <= 5`;
    await pg.sql`DELETE FROM b WHERE id <= 3`;
    await pg.psql(`BEGIN; INSERT INTO b VALUES (901, 'x'), (902, 'y');
      UPDATE b SET v = 'z' WHERE id = 10; COMMIT;`);
    await assertConverges(etcd.endpoint, "/m/", expected, 60_000);
    await waitFor("the changes to be counted", async () => {
      const m = await c.metrics();
      return val(m, "sync_transactions_total") - val(s1.m, "sync_transactions_total") >= 4;
    }, 30_000);
    let s2 = await quietSnapshot(port, etcd.endpoint);
    const d = (name: string, labels: Record<string, string> = {}) =>
      val(s2.m, name, labels) - val(s1.m, name, labels);
    const dc = (labels: Record<string, string>) =>
      count(s2.m, "sync_changes_total", labels) - count(s1.m, "sync_changes_total", labels);
    assertEquals(dc({ table: "a", op: "put" }), 15);
    assertEquals(dc({ table: "a", op: "delete" }), 0);
    assertEquals(dc({ table: "b", op: "delete" }), 3);
    assertEquals(dc({ table: "b", op: "put" }), 3);
    assertEquals(d("sync_transactions_total"), 4, "source transactions");
    // Each etcd transaction sync committed moved etcd's revision by exactly one.
    assertEquals(d("sync_etcd_txns_total"), s2.revision - s1.revision, "etcd txns vs revision");
    assert(d("sync_etcd_txns_total") >= 4, "at least one etcd txn per source txn here");
    assertHistogram(s2.m);

    // etcd paused: changes wait, the lag grows in seconds and in WAL bytes.
    const lsn = async () =>
      (await pg.sql`SELECT pg_current_wal_insert_lsn()::text AS l`)[0].l as string;
    const before = await lsn();
    etcd.proc.signal("SIGSTOP");
    let written = 0;
    try {
      await pg
        .sql`INSERT INTO a SELECT g, repeat(md5(g::text), 16) FROM generate_series(10001, 12000) g`;
      const after = await lsn();
      written = Number(
        (await pg.sql`SELECT pg_wal_lsn_diff(${after}::pg_lsn, ${before}::pg_lsn)::bigint AS d`)[0]
          .d,
      );
      assert(written > 500_000, `${written} WAL bytes written`);
      await waitFor(
        "lag over the limit",
        async () => {
          const r = await c.ready();
          const m = await c.metrics();
          return r.status === 503 && val(m, "sync_lag_bytes") >= written;
        },
        60_000,
        () => sync!.output(),
      );
      const r = await c.ready();
      assertMatch(r.reason, /^lag \d+\.\ds over limit$/);
      m = await c.metrics();
      assert(val(m, "sync_lag_seconds") > 2, `lag ${val(m, "sync_lag_seconds")}s`);
      assert(val(m, "sync_backlog_changes") > 0, "changes wait");
      // What PostgreSQL itself says now is at least what sync last polled.
      const pgLag = Number(
        (await pg.sql`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
          AS d FROM pg_replication_slots WHERE slot_name = 'sync'`)[0].d,
      );
      assert(pgLag >= val(m, "sync_lag_bytes"), `pg ${pgLag} vs sync ${val(m, "sync_lag_bytes")}`);
    } finally {
      etcd.proc.signal("SIGCONT");
    }
    await assertConverges(etcd.endpoint, "/m/", expected, 60_000);
    let last = "";
    await waitFor(
      "lag bytes to fall",
      async () => {
        const m = await c.metrics();
        const r = await c.ready();
        const slot = await pg
          .sql`SELECT confirmed_flush_lsn::text AS c, pg_current_wal_lsn()::text AS w
        FROM pg_replication_slots`;
        last = `lag_bytes=${val(m, "sync_lag_bytes")} ready=${JSON.stringify(r)} ${
          JSON.stringify(slot)
        }`;
        return val(m, "sync_lag_bytes") < written / 10 && r.status === 200;
      },
      60_000,
      () => last,
    );

    // A database restart: 503 while retrying, a reconnect counted with its reason.
    const restart = await restartObserved(c, port, etcd.endpoint, sync!, pg);
    s1 = restart.before;
    await pg.sql`INSERT INTO b VALUES (903, 'after restart')`;
    await assertConverges(etcd.endpoint, "/m/", expected, 60_000);
    s2 = await quietSnapshot(port, etcd.endpoint);
    const reasons = s2.m.filter((x) => x.name === "sync_reconnects_total");
    console.log(`reconnect reasons: ${reasons.map((r) => `${r.labels.reason}=${r.value}`)}`);
    assert(sum(s2.m, "sync_reconnects_total") > sum(s1.m, "sync_reconnects_total"));
    for (const r of reasons) {
      assertMatch(
        r.labels.reason,
        /^(PgConnectionError|PgError|ConnectionReset|ConnectionRefused|BrokenPipe|UnexpectedEof|StreamEndedError|ReplicationProtocolError)$/,
      );
    }
    assert(val(s2.m, "sync_last_error_timestamp_seconds") >= Math.floor(restart.at));

    // An ALTER reads table b again online: its rows counted as snapshot rows, each one
    // written (the new column) but the one the same transaction updated (the stream's),
    // none counted as a streamed change.
    await pg.psql(
      "ALTER TABLE b ADD COLUMN extra int DEFAULT 1; UPDATE b SET v = v WHERE id = 901;",
    );
    const [{ n }] = await pg.sql`SELECT count(*)::int AS n FROM b`;
    await snapshotCounted(c, sync!, "b", [n, n - 1], s2);
    await assertConverges(etcd.endpoint, "/m/", expected, 60_000);

    await assertDashboardMatches(await c.text());
    assertEquals(c.violations, [], "every /readyz answer seen inside a wait was consistent");
  } finally {
    await stopAll(sync, () => pg.close(), () => etcd.close());
  }
});

test("mysql: /metrics and /readyz of a running sync", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb();
  const port = freePort();
  let sync: Spawned | undefined;
  try {
    await db.query("CREATE DATABASE app");
    await db.query("CREATE TABLE app.a (id int PRIMARY KEY, v text)");
    await db.query("CREATE TABLE app.b (id int PRIMARY KEY, v text)");
    await db.query("INSERT INTO app.a SELECT seq, CONCAT('a', seq) FROM app.seq_1_to_3000");
    await db.query("INSERT INTO app.b SELECT seq, CONCAT('b', seq) FROM app.seq_1_to_500");
    await db.query("ANALYZE TABLE app.a, app.b");
    const watch = watchReady(port);
    sync = startSync([
      "--driver=mysql",
      `--db-url=${db.url}app`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/mm",
      "--server-id=4244",
      `--http-addr=127.0.0.1:${port}`,
      "--ready-max-lag=2s",
      "--etcd-max-txn-ops=4",
      "--etcd-timeout=120s",
    ]);
    const expected = () => expectedFromMysql(db.query, "/mm", ["app"], "app");
    await assertConverges(etcd.endpoint, "/mm/", expected, 120_000);
    const c = client(port);
    await waitFor("/readyz 200", async () => (await c.ready()).status === 200, 30_000);
    await watch.stop();
    assert(watch.seen.has("503 phase is dump"), `503 during the dump: ${[...watch.seen]}`);

    let s1 = await quietSnapshot(port, etcd.endpoint);
    assertEquals(
      val(s1.m, "sync_info", {
        version: s1.m.find((x) => x.name === "sync_info")!.labels.version,
        driver: "mysql",
      }),
      1,
    );
    assertEquals(val(s1.m, "sync_dump_rows_total", { table: "a" }), 3000);
    assertEquals(val(s1.m, "sync_dump_rows_total", { table: "b" }), 500);
    // InnoDB's TABLE_ROWS is an estimate: near, not exact.
    const est = val(s1.m, "sync_dump_rows_estimated", { table: "a" });
    assert(est > 1500 && est < 6000, `estimated ${est}`);
    assert(val(s1.m, "sync_etcd_txns_total") >= 875);
    assertHistogram(s1.m);

    await db.query("INSERT INTO app.a SELECT seq, 'new' FROM app.seq_5001_to_5010");
    await db.query("UPDATE app.a SET v = 'upd' WHERE id <= 5");
    await db.query("DELETE FROM app.b WHERE id <= 3");
    await db.query(
      "BEGIN; INSERT INTO app.b VALUES (901, 'x'), (902, 'y'); UPDATE app.b SET v = 'z' WHERE id = 10; COMMIT",
    );
    await assertConverges(etcd.endpoint, "/mm/", expected, 60_000);
    await waitFor("the changes to be counted", async () => {
      const m = await c.metrics();
      return val(m, "sync_transactions_total") - val(s1.m, "sync_transactions_total") >= 4;
    }, 30_000);
    let s2 = await quietSnapshot(port, etcd.endpoint);
    const d = (name: string, labels: Record<string, string> = {}) =>
      val(s2.m, name, labels) - val(s1.m, name, labels);
    const dc = (labels: Record<string, string>) =>
      count(s2.m, "sync_changes_total", labels) - count(s1.m, "sync_changes_total", labels);
    assertEquals(dc({ table: "a", op: "put" }), 15);
    assertEquals(dc({ table: "b", op: "delete" }), 3);
    assertEquals(dc({ table: "b", op: "put" }), 3);
    assertEquals(d("sync_transactions_total"), 4, "source transactions");
    assertEquals(d("sync_etcd_txns_total"), s2.revision - s1.revision, "etcd txns vs revision");

    // etcd paused: binlog bytes pile up behind sync's position.
    const master = async () => {
      const [r] = await db.query("SHOW MASTER STATUS");
      return { file: String(r.File), offset: Number(r.Position) };
    };
    const before = await master();
    etcd.proc.signal("SIGSTOP");
    let written = 0;
    try {
      await db.query(
        "INSERT INTO app.a SELECT seq, REPEAT(MD5(seq), 16) FROM app.seq_10001_to_12000",
      );
      const after = await master();
      assertEquals(after.file, before.file, "one binlog file (the test's arithmetic)");
      written = after.offset - before.offset;
      assert(written > 500_000, `${written} binlog bytes written`);
      await waitFor(
        "lag over the limit",
        async () => {
          const r = await c.ready();
          const m = await c.metrics();
          return r.status === 503 && val(m, "sync_lag_bytes") >= written;
        },
        60_000,
        () => sync!.output(),
      );
      assertMatch((await c.ready()).reason, /^lag \d+\.\ds over limit$/);
      const m = await c.metrics();
      assert(val(m, "sync_lag_seconds") > 2, `lag ${val(m, "sync_lag_seconds")}s`);
      // Not more than the server's position minus where sync stood before the insert.
      assert(val(m, "sync_lag_bytes") <= (await master()).offset - before.offset + 100_000);
    } finally {
      etcd.proc.signal("SIGCONT");
    }
    await assertConverges(etcd.endpoint, "/mm/", expected, 60_000);
    await waitFor("lag bytes to fall", async () => {
      const m = await c.metrics();
      return val(m, "sync_lag_bytes") < written / 10 && (await c.ready()).status === 200;
    }, 60_000);

    s1 = (await restartObserved(c, port, etcd.endpoint, sync!, db)).before;
    await db.query("INSERT INTO app.b VALUES (903, 'after restart')");
    await assertConverges(etcd.endpoint, "/mm/", expected, 60_000);
    s2 = await quietSnapshot(port, etcd.endpoint);
    const reasons = s2.m.filter((x) => x.name === "sync_reconnects_total");
    console.log(`reconnect reasons: ${reasons.map((r) => `${r.labels.reason}=${r.value}`)}`);
    assert(sum(s2.m, "sync_reconnects_total") > sum(s1.m, "sync_reconnects_total"));
    for (const r of reasons) {
      assertMatch(
        r.labels.reason,
        /^(MysqlConnectionError|MysqlError|ConnectionReset|ConnectionRefused|BrokenPipe|UnexpectedEof)$/,
      );
    }
    await db.query("ALTER TABLE app.b ADD COLUMN extra INT DEFAULT 1");
    const [{ n }] = await db.query("SELECT COUNT(*) AS n FROM app.b");
    await snapshotCounted(c, sync!, "b", [Number(n), Number(n)], s2);
    await assertConverges(etcd.endpoint, "/mm/", expected, 60_000);

    await assertDashboardMatches(await c.text());
    assertEquals(c.violations, [], "every /readyz answer seen inside a wait was consistent");
  } finally {
    await stopAll(sync, () => db.close(), () => etcd.close());
  }
});
