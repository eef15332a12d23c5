/**
 * `--ha` against real servers: fencing (a data transaction of a leader that lost its lease,
 * as a paused process does, is refused with nothing written, while the new leader's commit
 * goes through), and two mysql processes where the paused leader is replaced and, resumed,
 * writes nothing (etcd says so: every key's version and mod_revision, the state key's
 * history).
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertRejects } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import {
  assertConverges,
  keyWrites,
  readEtcd,
  readEtcdKvs,
  unexpectedWrites,
} from "../testing/checker.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { startSync } from "../testing/sync.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";
import { freePort, waitFor } from "../testing/process.ts";
import { EtcdClient } from "../src/etcd/client.ts";
import { EtcdSink, FencedError } from "../src/etcd/sink.ts";
import { campaign, type Leadership } from "../src/service/ha.ts";
import { silentLog } from "../src/core/log.ts";
import type { ChangeBatch, Position } from "../src/core/change.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function etcdctl(endpoint: string, ...args: string[]): Promise<string> {
  const r = await new Deno.Command("etcdctl", {
    args: [`--endpoints=${endpoint}`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert(r.success, `etcdctl ${args.join(" ")}: ${err}`);
  return new TextDecoder().decode(r.stdout);
}

function batch(key: string, v: string, lsn: string): ChangeBatch {
  return {
    changes: [{ op: "put", table: "t", key, columns: ["id", "v"], cells: [key, `"${v}"`] }],
    commit: { position: { lsn }, time: new Date() },
  };
}

const stateAt = (position: Position) => ({
  driver: "pgx",
  source: { system: "test" },
  position,
  dumpRevision: 0,
  updatedAt: new Date().toISOString(),
});

test("--ha: a leader that lost its lease cannot write", opts, async () => {
  const etcd = await startEtcd();
  const clients: EtcdClient[] = [];
  const stop = new AbortController();
  const member = (id: string) => {
    const client = new EtcdClient({ endpoints: [etcd.endpoint], timeoutMs: 10_000 });
    clients.push(client);
    let lead: Leadership | undefined;
    const sink = new EtcdSink(client, {
      prefix: "/f",
      stateKey: "/f-state/src",
      fence: () => lead?.fence() ?? [],
    });
    return {
      client,
      sink,
      async lead() {
        lead = await campaign({
          client,
          name: "/f-state/src/leader",
          id,
          ttlSeconds: 2,
          log: silentLog,
          signal: stop.signal,
        });
        return lead;
      },
    };
  };
  try {
    const a = member("a");
    const b = member("b");
    const leaderA = await a.lead();
    assertEquals(await a.sink.apply([batch("1", "from a", "0/10")], stateAt), { lsn: "0/10" });

    // b campaigns and waits while a holds the lease.
    let bLeads = false;
    const bCampaign = b.lead().then((l) => {
      bLeads = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 3_000));
    assert(!bLeads, "one leader at a time: b waits while a keeps its lease alive");

    // a's lease ends behind its back (a paused process cannot keep it alive): b takes over.
    // (etcd's own CLI: the election's first key under its name is the leader's.)
    const got = await etcdctl(
      etcd.endpoint,
      "get",
      "--prefix",
      "/f-state/src/leader/",
      "-w",
      "json",
    );
    assertEquals(atob(JSON.parse(got).kvs[0].value), "a");
    // Lease IDs are 64-bit: read the digits, not a rounded JSON number.
    const lease = /"lease":(\d+)/.exec(got)![1];
    await etcdctl(etcd.endpoint, "lease", "revoke", BigInt(lease).toString(16));
    const leaderB = await bCampaign;
    assert(bLeads);

    // a still believes it leads: its transaction fails on the fence and writes nothing.
    const before = await readEtcd(etcd.endpoint, "/f");
    await assertRejects(
      () => a.sink.apply([batch("1", "stale from a", "0/20"), batch("2", "x", "0/20")], stateAt),
      FencedError,
    );
    assertEquals(await readEtcd(etcd.endpoint, "/f"), before, "the fenced txn wrote nothing");

    // The new leader's commit goes through, state key included.
    assertEquals(await b.sink.apply([batch("1", "from b", "0/30")], stateAt), { lsn: "0/30" });
    const after = await readEtcd(etcd.endpoint, "/f");
    assertEquals(JSON.parse(after.get("/f/t/1")!).v, "from b");
    assertEquals(JSON.parse(after.get("/f-state/src")!).position, { lsn: "0/30" });
    assert(!after.has("/f/t/2"));
    await leaderB.resign();
    await leaderA.resign();
  } finally {
    stop.abort();
    for (const c of clients) c.close();
    await etcd.close();
  }
});

test("mysql --ha: a paused leader is replaced and commits nothing after", opts, async () => {
  const etcd = await startEtcd();
  const db = await startMariadb();
  const ports = { a: freePort(), b: freePort() };
  const args = (id: "a" | "b") => [
    "--driver=mysql",
    `--db-url=${db.url}app`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/mha",
    "--server-id=4260",
    "--ha",
    "--ha-ttl=2s",
    `--ha-id=${id}`,
    `--http-addr=127.0.0.1:${ports[id]}`,
  ];
  await db.query("CREATE DATABASE app");
  await db.query("CREATE TABLE app.t (id int PRIMARY KEY, v text)");
  await db.query("INSERT INTO app.t SELECT seq, 'v' FROM app.seq_1_to_100");
  await db.query("CREATE TABLE app.big (id int PRIMARY KEY, v text)");
  const a = startSync(args("a"));
  const b = startSync(args("b"));
  const expected = () => expectedFromMysql(db.query, "/mha", ["app"], "app");
  try {
    await assertConverges(etcd.endpoint, "/mha/", expected, 90_000);
    const leading = (p: typeof a) => /msg=leader /.test(p.output());
    await waitFor("a leader", () => leading(a) || leading(b), 30_000);
    const [leader, standby] = leading(a) ? [a, b] : [b, a];
    const port = leader === a ? ports.a : ports.b;
    assert(!leading(standby), "only one leader");

    // Paused in the middle of a large transaction, with chunks of it not yet written: it
    // goes on writing them the moment it wakes up, before it can learn it lost its lease.
    await db.query("INSERT INTO app.big SELECT seq, 'v' FROM app.seq_1_to_100000");
    await waitFor("the leader to be writing the transaction", async () => {
      return (await readEtcd(etcd.endpoint, "/mha/big/20000")).size > 0;
    }, 60_000);
    leader.signal("SIGSTOP");
    const held = (await readEtcdKvs(etcd.endpoint, "/mha/big/")).kvs.size;
    assert(held < 100000, "paused before the whole transaction was written");
    await db.query("UPDATE app.t SET v = 'while paused' WHERE id <= 10");
    await waitFor(
      "the standby to take over",
      () => leading(standby),
      30_000,
      () => standby.output(),
    );
    await assertConverges(etcd.endpoint, "/mha/", expected, 60_000).catch((e) => {
      throw new Error(`${e.message}\n--- standby:\n${standby.output()}`);
    });
    const paused = await readEtcdKvs(etcd.endpoint, "/mha/");

    leader.signal("SIGCONT");
    await waitFor(
      "the old leader to step down",
      () => /leadership lost|no longer the leader/.test(leader.output()),
      30_000,
      () => leader.output(),
    );
    // And it becomes a standby: not ready.
    await waitFor("the old leader to be a standby", async () => {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      const j = await r.json();
      return r.status === 503 && j.reason === "phase is standby";
    }, 30_000);
    await db.query("UPDATE app.t SET v = 'after resume' WHERE id > 90");
    await assertConverges(etcd.endpoint, "/mha/", expected, 60_000);
    // From etcd: since the standby converged, only the rows changed after the resume were
    // written, once each (the old leader's rest of the transaction would show) ...
    const now = await readEtcdKvs(etcd.endpoint, "/mha/");
    const changed = (k: string) => k.startsWith("/mha/t/") && Number(k.slice(7)) > 90;
    assertEquals(unexpectedWrites(paused.kvs, now.kvs, (k) => (changed(k) ? 1 : 0)), null);
    // ... and the state key's binlog position never went back (a stale leader's would).
    const stateKey = [...(await readEtcdKvs(etcd.endpoint, "/mha-state/")).kvs.keys()]
      .find((k) => !k.includes("/leader"))!;
    const at = (await keyWrites(etcd.endpoint, stateKey, paused.revision, now.revision))
      .map((w) => JSON.parse(w.value).position as { file: string; offset: number })
      .map((p) => `${p.file}:${String(p.offset).padStart(20, "0")}`);
    assert(at.length > 0, "the new leader saved its position");
    for (let i = 1; i < at.length; i++) assert(at[i] >= at[i - 1], `position went back: ${at}`);
  } finally {
    a.signal("SIGCONT");
    b.signal("SIGCONT");
    await a.stop();
    await b.stop();
    await db.close();
    await etcd.close();
  }
});
