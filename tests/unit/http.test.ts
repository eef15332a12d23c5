/** The HTTP endpoint: liveness, readiness semantics, metrics and the status page. */
import { test } from "../../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../../testing/assert.ts";
import { freePort } from "../../testing/process.ts";
import { serveHttp } from "../../src/service/http.ts";
import { Status } from "../../src/service/status.ts";
import { silentLog } from "../../src/core/log.ts";

test("health, readiness, metrics and status page", async () => {
  const status = new Status();
  const stop = new AbortController();
  const port = freePort();
  const server = serveHttp({
    addr: `127.0.0.1:${port}`,
    status,
    log: silentLog,
    readyMaxLagMs: 30_000,
    signal: stop.signal,
  });
  const get = async (path: string) => {
    const r = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: r.status, text: await r.text() };
  };
  try {
    assertEquals((await get("/healthz")).status, 200);
    status.phase = "dump";
    status.dumped("orders", 40);
    status.rowsEstimated.set("orders", 100);
    let r = await get("/readyz");
    assertEquals(r.status, 503);
    assertEquals(JSON.parse(r.text), { ready: false, reason: "phase is dump", phase: "dump" });
    status.phase = "sync";
    status.transactionRead(new Date(Date.now() - 1000));
    r = await get("/readyz");
    assertEquals(r.status, 200);
    assertEquals(JSON.parse(r.text).reason, "streaming");
    // Over the lag limit while a transaction committed a minute ago waits: not ready.
    status.transactionsApplied(1);
    status.transactionRead(new Date(Date.now() - 60_000));
    status.transactionRead(new Date(Date.now() - 1000));
    status.backlog = 5;
    r = await get("/readyz");
    assertEquals(r.status, 503);
    assertMatch(JSON.parse(r.text).reason, /^lag 60\.\d+s over limit$/);
    // Once it is in etcd the lag is the next waiting one's; with nothing waiting, none.
    status.transactionsApplied(1);
    assert(status.lagSeconds() < 30);
    status.transactionsApplied(1);
    status.backlog = 0;
    assertEquals(status.lagSeconds(), 0);
    assertEquals((await get("/readyz")).status, 200);
    status.count(status.changes, "orders\tput", 7);
    const m = (await get("/metrics")).text;
    assertMatch(m, /^sync_phase\{phase="sync"\} 1$/m);
    assertMatch(m, /^sync_dump_rows_total\{table="orders"\} 40$/m);
    assertMatch(m, /^sync_dump_rows_estimated\{table="orders"\} 100$/m);
    assertMatch(m, /^sync_changes_total\{table="orders",op="put"\} 7$/m);
    assertMatch(m, /^# TYPE sync_lag_seconds gauge$/m);
    // Unknown until the source was polled: no sample rather than a made-up 0.
    assert(!/^sync_lag_bytes /m.test(m));
    status.lagBytes = 4096;
    status.observeTxn(0.003);
    status.observeTxn(0.2);
    const m2 = (await get("/metrics")).text;
    assertMatch(m2, /^sync_lag_bytes 4096$/m);
    assertMatch(m2, /^# TYPE sync_etcd_txn_duration_seconds histogram$/m);
    assertMatch(m2, /^sync_etcd_txn_duration_seconds_bucket\{le="0\.0025"\} 0$/m);
    assertMatch(m2, /^sync_etcd_txn_duration_seconds_bucket\{le="0\.005"\} 1$/m);
    assertMatch(m2, /^sync_etcd_txn_duration_seconds_bucket\{le="0\.25"\} 2$/m);
    assertMatch(m2, /^sync_etcd_txn_duration_seconds_bucket\{le="\+Inf"\} 2$/m);
    assertMatch(m2, /^sync_etcd_txn_duration_seconds_count 2$/m);
    assertMatch(m2, /^sync_etcd_txns_total 2$/m);
    const page = await get("/");
    assert(page.text.includes('<canvas id="chart"'));
    assert(!/https?:\/\//.test(page.text), "the page loads nothing from elsewhere");
    const js = JSON.parse((await get("/status.json")).text);
    assertEquals(js.tables, [{ table: "orders", dumped: 40, estimated: 100, changes: 7 }]);
    assertEquals((await get("/nope")).status, 404);
  } finally {
    stop.abort();
    await server.finished;
  }
});
