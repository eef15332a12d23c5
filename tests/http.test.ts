/** The HTTP endpoint: liveness, readiness semantics, metrics and the status page. */
import { assert, assertEquals, assertMatch } from "./harness/assert.ts";
import { freePort } from "./harness/process.ts";
import { serveHttp } from "../src/service/http.ts";
import { Status } from "../src/service/status.ts";
import { silentLog } from "../src/core/log.ts";

Deno.test("health, readiness, metrics and status page", async () => {
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
    status.lastCommitTime = new Date(Date.now() - 1000);
    status.lastApplied = new Date();
    r = await get("/readyz");
    assertEquals(r.status, 200);
    // Over the lag limit while changes wait: not ready.
    status.lastCommitTime = new Date(Date.now() - 60_000);
    status.backlog = 5;
    r = await get("/readyz");
    assertEquals(r.status, 503);
    assertMatch(JSON.parse(r.text).reason, /^lag 60\.\d+s over limit$/);
    status.count(status.changes, "orders\tput", 7);
    const m = (await get("/metrics")).text;
    assertMatch(m, /^sync_phase\{phase="sync"\} 1$/m);
    assertMatch(m, /^sync_dump_rows_total\{table="orders"\} 40$/m);
    assertMatch(m, /^sync_dump_rows_estimated\{table="orders"\} 100$/m);
    assertMatch(m, /^sync_changes_total\{table="orders",op="put"\} 7$/m);
    assertMatch(m, /^# TYPE sync_lag_seconds gauge$/m);
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
