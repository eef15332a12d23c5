/**
 * `sync snapshot TABLE...` against real PostgreSQL and etcd (issue 14, item 7 and "Bad
 * input"): requests made while no sync runs wait in etcd, the CLI says so, and two of them
 * made back to back are both acted on at the next start; a running snapshot's progress
 * shows in `sync status`, `/status.json`, `/readyz` and the metrics (rows, chunks, seconds);
 * with `--ha` the leader alone acts on a request, once.
 */
import { step, test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { type PgServer, startPostgres } from "../testing/postgres.ts";
import { runSync, startSync, streaming } from "../testing/sync.ts";
import { assertConverges, readEtcdKvs } from "../testing/checker.ts";
import { freePort, type Spawned, waitFor } from "../testing/process.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { EtcdClient } from "../src/etcd/client.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const STATE = "/r-state/pgx-postgres";
const REQUESTS = `${STATE}/snapshot-requests/`;
const WAITS = /^no running sync took it within 5 s: the request waits in etcd for the next start/m;
const ROWS = 16_000;

interface Ctx {
  pg: PgServer;
  endpoint: string;
  etcd: EtcdClient;
  /** Flags of a sync run (with --http-addr) and of the CLI. */
  run: string[];
  cli: string[];
  http: string;
  /** The sync processes started, stopped at the end. */
  procs: Spawned[];
}

type Snap = { state: string; rows: number; requests?: string[] };

async function progress(c: Ctx): Promise<Record<string, Snap>> {
  const v = (await readEtcdKvs(c.endpoint, `${STATE}/snapshots`)).kvs.get(`${STATE}/snapshots`);
  return v ? JSON.parse(v.value) : {};
}

async function waiting(c: Ctx): Promise<string[]> {
  return [...(await readEtcdKvs(c.endpoint, REQUESTS)).kvs.keys()];
}

/** Remove some of a table's keys from etcd, as a botched restore would: a snapshot mends it. */
async function damage(c: Ctx, table: string): Promise<void> {
  for (let id = 1; id <= 10; id++) await c.etcd.deleteRange(`/r/${table}/${id}`);
}

function start(c: Ctx, args: string[]): Spawned {
  const p = startSync(args);
  c.procs.push(p);
  return p;
}

const expected = (c: Ctx) => () => expectedFromPg(c.pg.sql, "/r");
const count = (out: string, re: RegExp) => out.match(new RegExp(re, "g"))?.length ?? 0;

/** (a) While no sync runs: the CLI says the request waits; both are acted on at start. */
async function whileStopped(c: Ctx): Promise<void> {
  step("two requests while no sync runs");
  await damage(c, "a");
  await damage(c, "b");
  const asked = await Promise.all(["a", "b"].map((t) => runSync(["snapshot", t, ...c.cli])));
  for (const [i, r] of asked.entries()) {
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, new RegExp(`^snapshot of ${"ab"[i]} requested \\(${REQUESTS}`));
    assertMatch(r.stdout, WAITS);
  }
  assertEquals((await waiting(c)).length, 2, "both requests stored");

  step("sync starts: both snapshots run");
  const sync = start(c, c.run);
  await waitFor(
    "the snapshots of a and b done",
    () => {
      const out = sync.output();
      return /msg="snapshot done" table=a/.test(out) && /msg="snapshot done" table=b/.test(out);
    },
    60_000,
    () => sync.output(),
  );
  await assertConverges(c.endpoint, "/r/", expected(c), 30_000);
  const p = await progress(c);
  for (const t of ["a", "b"]) {
    assertEquals(p[t]?.state, "done", t);
    assertEquals(p[t]?.requests?.length, 1, `${t} answers one request`);
  }
  assertEquals(await waiting(c), [], "both requests taken");
  await sync.stop();
}

/** Parse the Prometheus text: one value per `name{table="t"}`. */
function metric(text: string, name: string, table: string): number {
  const m = new RegExp(`^${name}\\{table="${table}"\\} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
}

/** (b) A request taken by the running sync, its progress shown everywhere while it runs. */
async function whileRunning(c: Ctx): Promise<void> {
  step("a request while sync runs, the table held mid-snapshot");
  const sync = start(c, c.run);
  await streaming(sync);
  const asked = runSync(["snapshot", "big", ...c.cli]);
  await waitFor(
    "big's snapshot under way",
    async () => {
      const s = (await progress(c)).big;
      return s?.state === "running" && s.rows > 0;
    },
    30_000,
    () => sync.output(),
  );
  // The next chunk read waits for this lock: the snapshot stays running while it is looked at.
  let release = () => {};
  const held = new Promise<void>((r) => release = r);
  let locked = () => {};
  const isLocked = new Promise<void>((r) => locked = r);
  const lock = c.pg.sql.begin(async (tx) => {
    await tx`LOCK TABLE big IN ACCESS EXCLUSIVE MODE`;
    locked();
    await held;
  });
  try {
    await Promise.race([isLocked, lock]);
    const r = await asked;
    assertEquals(r.code, 0, r.stderr);
    assertMatch(r.stdout, /^the running sync took it: big running \(\d+ rows read\)/m);
    await shownWhileRunning(c);
  } finally {
    release();
    await lock;
  }
  // Logged once its state is in etcd, just before it stops counting its seconds.
  const done = () => /msg="snapshot done" table=big/.test(sync.output());
  await waitFor("big's snapshot done", done, 60_000, () => sync.output());
  await assertConverges(c.endpoint, "/r/", expected(c), 30_000);
  const m = await (await fetch(`${c.http}/metrics`)).text();
  await new Promise((r) => setTimeout(r, 1100));
  const later = await (await fetch(`${c.http}/metrics`)).text();
  const [s1, s2] = [m, later].map((t) => metric(t, "sync_snapshot_seconds", "big"));
  assertEquals(s2, s1, "a finished snapshot's seconds stay");
  assertEquals(metric(later, "sync_snapshot_rows_total", "big"), ROWS, "every row read");
  await sync.stop();
}

async function shownWhileRunning(c: Ctx): Promise<void> {
  const status = await runSync(["status", "--json", ...c.cli]);
  assertEquals(status.code, 0, status.stderr);
  const big = JSON.parse(status.stdout).snapshots?.big;
  assertEquals(big?.state, "running", `sync status: ${status.stdout}`);
  assert(big.rows > 0 && big.rows < ROWS, `sync status rows: ${big.rows}`);

  const json = await (await fetch(`${c.http}/status.json`)).json();
  const row = json.tables.find((t: { table: string }) => t.table === "big");
  assertEquals(row?.snapshot?.state, "running", JSON.stringify(row));
  assert(row.snapshot.rows > 0, `status.json rows: ${row.snapshot.rows}`);
  // The page renders that field so: the text is in its script.
  const page = await (await fetch(`${c.http}/`)).text();
  assert(page.includes('"snapshot, " + fmtInt(t.snapshot.rows) + " rows read"'), "page text");
  const ready = await fetch(`${c.http}/readyz`);
  assertEquals(ready.status, 503);
  assertEquals((await ready.json()).reason, "snapshot running: big");

  const m1 = await (await fetch(`${c.http}/metrics`)).text();
  await new Promise((r) => setTimeout(r, 1100));
  const m2 = await (await fetch(`${c.http}/metrics`)).text();
  assert(metric(m2, "sync_snapshot_rows_total", "big") > 0, "rows metric");
  assert(metric(m2, "sync_snapshot_chunks_total", "big") > 0, "chunks metric");
  const [s1, s2] = [m1, m2].map((t) => metric(t, "sync_snapshot_seconds", "big"));
  assert(s1 > 0 && s2 >= s1 + 1, `a running snapshot's seconds grow: ${s1}, then ${s2}`);
}

/** (c) Two `--ha` processes: the leader alone takes the request, once. */
async function withHa(c: Ctx): Promise<void> {
  step("--ha: a request acted on once, by the leader");
  const ha = (id: string) => [...c.cli, "--ha", "--ha-ttl=2s", `--ha-id=${id}`];
  const [x, y] = [start(c, ha("x")), start(c, ha("y"))];
  const leads = (p: Spawned) => /msg=leader /.test(p.output());
  await waitFor(
    "a leader streaming",
    () => {
      return (leads(x) && /msg=streaming/.test(x.output())) ||
        (leads(y) && /msg=streaming/.test(y.output()));
    },
    30_000,
    () => x.output() + y.output(),
  );
  const [leader, standby] = leads(x) ? [x, y] : [y, x];
  assert(!leads(standby), "one leader");
  await damage(c, "a");
  const r = await runSync(["snapshot", "a", ...c.cli]);
  assertEquals(r.code, 0, r.stderr);
  assertMatch(r.stdout, /^the running sync took it: a (running|done)/m);
  const id = /requested \(\S+\/snapshot-requests\/(\S+)\)/.exec(r.stdout)?.[1];
  await waitFor(
    "a's snapshot done",
    () => {
      return /msg="snapshot done" table=a/.test(leader.output());
    },
    30_000,
    () => leader.output(),
  );
  await assertConverges(c.endpoint, "/r/", expected(c), 30_000);
  // Another poll or two: a request already taken is not taken again.
  await new Promise((r) => setTimeout(r, 4500));
  assertEquals(count(leader.output(), /msg="snapshot requested" tables=a/), 1, leader.output());
  assertEquals(count(leader.output(), /msg="snapshot done" table=a/), 1, leader.output());
  assertEquals(count(standby.output(), /msg="snapshot/), 0, standby.output());
  assertEquals(await waiting(c), [], "the request taken");
  assert(id && (await progress(c)).a?.requests?.includes(id), `a answers ${id}`);
}

test("sync snapshot: requests wait, are all taken, once, and show progress", opts, async () => {
  const etcdServer = await startEtcd();
  const pg = await startPostgres();
  await pg.psql(`CREATE TABLE a (id int PRIMARY KEY, v text);
    CREATE TABLE b (id int PRIMARY KEY, v text);
    CREATE TABLE big (id int PRIMARY KEY, v text);
    INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 200) g;
    INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 200) g;
    INSERT INTO big SELECT g, 'big ' || g FROM generate_series(1, ${ROWS}) g;`);
  const cli = [
    "--driver=pgx",
    `--db-url=${pg.url}`,
    `--etcd-endpoints=${etcdServer.endpoint}`,
    "--etcd-prefix=/r",
    "--snapshot-chunk-rows=20",
  ];
  const port = freePort();
  const c: Ctx = {
    pg,
    endpoint: etcdServer.endpoint,
    etcd: new EtcdClient({ endpoints: [etcdServer.endpoint], timeoutMs: 10_000 }),
    run: [...cli, `--http-addr=127.0.0.1:${port}`],
    cli,
    http: `http://127.0.0.1:${port}`,
    procs: [],
  };
  try {
    step("first start: the dump");
    const first = start(c, c.run);
    await streaming(first);
    await assertConverges(c.endpoint, "/r/", expected(c), 60_000);
    await first.stop();
    await whileStopped(c);
    await whileRunning(c);
    await withHa(c);
  } finally {
    for (const p of c.procs) await p.stop();
    c.etcd.close();
    await pg.close();
    await etcdServer.close();
  }
});
