/**
 * The status page in a real browser: sync replicates real PostgreSQL into real etcd with
 * `--http-addr`, changes are made for a while, and headless Chromium loads `GET /`, runs
 * its script and renders the phase, position, tables and chart; the DOM it produced is
 * checked against `/status.json`. A screenshot is taken too; with `UPDATE_SCREENSHOT=1`
 * it replaces docs/status-page.png (scripts/screenshot-status-page does that).
 *
 * Chromium is required (scripts/lib.sh installs Debian's `chromium`): without it this test
 * fails, it does not skip.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startSync } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { freePort, tempDir } from "../testing/process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("../", import.meta.url).pathname;
const SCREENSHOT = `${ROOT}docs/status-page.png`;

/** The Chromium binary, or a failure that says how to get one. */
async function chromium(): Promise<string> {
  const candidates = [Deno.env.get("CHROMIUM"), "chromium", "chromium-browser"].filter(
    (c): c is string => !!c,
  );
  for (const c of candidates) {
    try {
      const out = await new Deno.Command(c, { args: ["--version"], stdout: "piped" }).output();
      if (out.success) return c;
    } catch { /* not this one */ }
  }
  throw new Error(
    "headless Chromium is needed for the status page test and was not found: run " +
      "scripts/test (its ensure_servers installs Debian's `chromium`) or " +
      "`apt-get install chromium`, or set CHROMIUM to the binary",
  );
}

/** Run headless Chromium on `url` with `extra` flags; returns stdout. */
async function headless(bin: string, url: string, extra: string[]): Promise<string> {
  const profile = await tempDir("chromium");
  try {
    const cmd = new Deno.Command(bin, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        `--user-data-dir=${profile}`,
        // Virtual time: timers run ahead without waiting, fetches still complete; the
        // page polls every second, so it has rendered several times by the end.
        "--virtual-time-budget=5000",
        ...extra,
        url,
      ],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    });
    const child = cmd.spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    const out = await child.output();
    clearTimeout(timer);
    const d = new TextDecoder();
    if (!out.success) {
      throw new Error(`chromium failed (${out.code}):\n${d.decode(out.stderr).slice(-2000)}`);
    }
    return d.decode(out.stdout);
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** The text inside the element with this id (tags stripped). */
function textOf(dom: string, id: string): string {
  const m = new RegExp(`<(\\w+)[^>]*\\bid="${id}"[^>]*>([\\s\\S]*?)</\\1>`).exec(dom);
  assert(m, `no element #${id} in the rendered page`);
  return m[2].replace(/<[^>]+>/g, "").replace(/&amp;/g, "&").replace(/&lt;/g, "<").trim();
}

/** PNG width and height from its IHDR chunk. */
function pngSize(b: Uint8Array): [number, number] {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  assert(sig.every((v, i) => b[i] === v), "a PNG file");
  const v = new DataView(b.buffer, b.byteOffset);
  return [v.getUint32(16), v.getUint32(20)];
}

const int = (s: string) => Number(s.replace(/[^0-9]/g, ""));

test("status page renders live state in headless Chromium", opts, async () => {
  const bin = await chromium();
  const etcd = await startEtcd();
  const pg = await startPostgres();
  const port = freePort();
  const page = `http://127.0.0.1:${port}/`;
  let sync: ReturnType<typeof startSync> | undefined;
  const shots = await tempDir("shot");
  try {
    await pg.sql`CREATE TABLE orders (id int PRIMARY KEY, customer int, total numeric)`;
    await pg.sql`CREATE TABLE customers (id int PRIMARY KEY, name text)`;
    await pg.sql`INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 500) g`;
    await pg.sql`INSERT INTO orders SELECT g, g % 500 + 1, g * 1.5
      FROM generate_series(1, 20000) g`;
    await pg.sql`ANALYZE`;
    sync = startSync([
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/page",
      `--http-addr=127.0.0.1:${port}`,
      "--status-interval=1s",
    ]);
    const expected = () => expectedFromPg(pg.sql, "/page");
    await assertConverges(etcd.endpoint, "/page/", expected, 60_000);

    // Some seconds of changes at a varying rate, so the chart has a shape.
    const until = Date.now() + 15_000;
    let rounds = 0;
    for (let i = 0; Date.now() < until; i++, rounds++) {
      const n = 20 + Math.round(200 * Math.abs(Math.sin(i / 8)));
      await pg.sql`UPDATE orders SET total = total + 1 WHERE id % 97 = ${i % 97} AND id <= ${
        n * 97
      }`;
      await pg.sql`INSERT INTO orders VALUES (${100_000 + i}, ${(i % 500) + 1}, ${i})`;
      await new Promise((r) => setTimeout(r, 200));
    }
    await assertConverges(etcd.endpoint, "/page/", expected, 60_000);
    // Idle for a while: the slot's heartbeats (every --status-interval) move the position
    // but are no transactions; with nothing waiting for etcd the lag is 0, and it must not
    // grow with the idle time.
    await new Promise((r) => setTimeout(r, 6_000));
    const status = await (await fetch(`${page}status.json`)).json();
    assert(status.history.length > 10, `samples: ${status.history.length}`);
    assert(status.lagSeconds < 5, `lag ${status.lagSeconds}s after 6s idle`);

    const dom = await headless(bin, page, ["--dump-dom"]);
    // The script ran: every placeholder was replaced with what status.json says.
    assertEquals(textOf(dom, "phase"), "sync");
    assertMatch(textOf(dom, "position"), /^lsn [0-9A-F]+\/[0-9A-F]+$/);
    assertEquals(textOf(dom, "error"), "", "no error shown");
    assertMatch(textOf(dom, "updated"), /^updated \d\d:\d\d:\d\d UTC$/);
    assertMatch(textOf(dom, "about"), /^pgx · state \/page-state\/pgx-postgres · v/);
    // Idle since: the page shows what status.json said, and status.json counts what the
    // test did (two source transactions a round; the first dump adds none).
    assertEquals(int(textOf(dom, "txns")), status.transactions, "transactions shown");
    assert(status.transactions >= 2 * rounds, `${status.transactions} txns, ${rounds} rounds`);
    // One row per table: name, a finished dump, and the changes streamed.
    for (const t of status.tables as { table: string; dumped: number; changes: number }[]) {
      const row = new RegExp(`<tr data-table="${t.table}">([\\s\\S]*?)</tr>`).exec(dom);
      assert(row, `a row for ${t.table}`);
      const cells = [...row[1].matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((c) =>
        c[1].replace(/<[^>]+>/g, "")
      );
      assertEquals(cells[0], t.table);
      assertEquals(cells[1], "100%", `${t.table} dump complete`);
      assertEquals(int(cells[2]), t.dumped);
      assertEquals(int(cells[3]), t.changes, `${t.table} changes shown`);
    }
    assert(/<tr data-table="orders">/.test(dom) && /<tr data-table="customers">/.test(dom));
    const dumped = Object.fromEntries(
      status.tables.map((t: { table: string; dumped: number }) => [t.table, t.dumped]),
    );
    assertEquals(dumped, { customers: 500, orders: 20000 });
    const changes = Object.fromEntries(
      status.tables.map((t: { table: string; changes: number }) => [t.table, t.changes]),
    );
    assertEquals(changes.customers, 0, "customers never changed");
    assert(changes.orders >= 2 * rounds, `orders: ${changes.orders} changes, ${rounds} rounds`);
    // The chart was drawn from the server's history.
    const points = Number(/<canvas id="chart" data-points="(\d+)"/.exec(dom)?.[1]);
    assert(points > 10, `chart points: ${points}`);
    assertMatch(textOf(dom, "chart-title"), /^Lag and throughput, last \d+ minutes?$/);
    assertMatch(textOf(dom, "lag"), /^\d+\.\d+ s$/);
    assertMatch(
      textOf(dom, "chart-note"),
      /^\d+ samples over .* · peak [\d,]+ writes\/s · max lag/,
    );

    const shot = `${shots}/status-page.png`;
    await headless(bin, page, [`--screenshot=${shot}`, "--window-size=1200,900"]);
    const png = await Deno.readFile(shot);
    assertEquals(pngSize(png), [1200, 900]);
    assert(png.length > 10_000, `a page, not a blank image (${png.length} bytes)`);
    if (Deno.env.get("UPDATE_SCREENSHOT") === "1") {
      await Deno.mkdir(`${ROOT}docs`, { recursive: true });
      await Deno.copyFile(shot, SCREENSHOT);
      console.log(`wrote ${SCREENSHOT}`);
    }
  } finally {
    await sync?.stop();
    await pg.close();
    await etcd.close();
    await Deno.remove(shots, { recursive: true }).catch(() => {});
  }
});
