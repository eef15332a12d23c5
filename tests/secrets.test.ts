/**
 * Passwords never appear in anything sync shows: logs (text and JSON, debug level), error
 * lines of failed runs, `sync status`, `sync check`, the HTTP endpoints, and the process
 * title (/proc/<pid>/cmdline) when secrets come from SYNC_* variables or a --config file.
 *
 * Every captured text is searched for every password, plain and in its URL-encoded and
 * base64 forms. (argv itself is readable by every user on the host: pass passwords through
 * the environment or a config file, as these runs do.)
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { enableEtcdAuth } from "../testing/etcd_auth.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { freePort, waitFor } from "../testing/process.ts";
import { launchSync } from "../testing/sync.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

// Distinctive, and full of characters that URL-encoding changes.
const PG_PW = "Pg:Sekr3t/@%?#zq1";
const MY_PW = "My:Sekr3t/@%&=zq2";
const ETCD_PW = "Etcd:Sekr3t/@%+zq3";
const ETCD_ROOT_PW = "EtcdRoot-Sekr3t-zq4";
const WRONG_PG_PW = "Wrong:Pg/@%-zq5";
const WRONG_ETCD_PW = "Wrong:Etcd/@%-zq6";
const SECRETS = [PG_PW, MY_PW, ETCD_PW, ETCD_ROOT_PW, WRONG_PG_PW, WRONG_ETCD_PW];

function forms(s: string): string[] {
  return [...new Set([s, encodeURIComponent(s), encodeURI(s), btoa(s), JSON.stringify(s)])];
}

/**
 * In every password: a password written into a URL without percent-encoding is cut at its
 * `/` or `@`, and any piece of it that shows is a leak.
 */
const PIECE = "Sekr3t";

/** Every capture, by where it came from; checked at the end (and after each step). */
const captured: [string, string][] = [];
function capture(what: string, text: string) {
  captured.push([what, text]);
  for (const s of SECRETS) {
    for (const f of forms(s)) {
      assert(!text.includes(f), `${what} shows a password (${JSON.stringify(f)}):\n${text}`);
    }
  }
  assert(!text.includes(PIECE), `${what} shows a piece of a password:\n${text}`);
}

/**
 * Run to its end. A run still going after 60 s fails the test: stopping it (SIGTERM, exit 0)
 * and going on would let a hang pass as a clean run.
 */
async function runToEnd(args: string[], env: Record<string, string>): Promise<[number, string]> {
  const p = launchSync(args, env);
  let hung = false;
  const t = setTimeout(() => {
    hung = true;
    p.kill("SIGKILL");
  }, 60_000);
  const code = await p.exited;
  clearTimeout(t);
  assert(!hung, `sync ${args[0]} still running after 60 s (killed):\n${p.output()}`);
  return [code, p.output()];
}

/** What another user on the host sees of the process: its command line. */
async function cmdline(pid: number): Promise<string> {
  return (await Deno.readTextFile(`/proc/${pid}/cmdline`)).replaceAll("\0", " ");
}

/** Everything the HTTP endpoints serve. */
async function scrapeHttp(addr: string, what: string) {
  for (const path of ["/", "/metrics", "/readyz", "/healthz", "/status.json"]) {
    const r = await fetch(`http://${addr}${path}`);
    capture(`${what} GET ${path}`, await r.text());
  }
}

test("secrets: no password in logs, errors, status, check, HTTP or argv", opts, async () => {
  const [etcd, pg, db] = await Promise.all([
    startEtcd(),
    startPostgres({ auth: "scram-sha-256", password: PG_PW }),
    startMariadb({ rootPassword: MY_PW }),
  ]);
  const dir = await Deno.makeTempDir({ prefix: "sync-secrets-" });
  try {
    await enableEtcdAuth(etcd.endpoint, ETCD_ROOT_PW, [
      { name: "syncer", password: ETCD_PW, prefixes: ["/sp", "/sm"] },
    ]);
    await pg.sql.unsafe(`CREATE TABLE t (id int PRIMARY KEY, v text);
      INSERT INTO t VALUES (1, 'one'), (2, 'two');`);
    await db.query(`CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT);
      INSERT INTO app.t VALUES (1, 'one');`);
    assert(pg.url.includes(encodeURIComponent(PG_PW)), "the harness URL carries the password");

    // pgx: secrets through SYNC_* variables, debug logs, HTTP endpoints.
    const pgEnv = {
      SYNC_DB_URL: pg.url,
      SYNC_ETCD_USERNAME: "syncer",
      SYNC_ETCD_PASSWORD: ETCD_PW,
    };
    const pgArgs = [
      "--driver=pgx",
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/sp",
      "--log-level=debug",
    ];
    const pgAddr = `127.0.0.1:${freePort()}`;
    const pgRun = launchSync([...pgArgs, `--http-addr=${pgAddr}`], pgEnv);
    try {
      await waitFor(
        "pgx streaming",
        () => /msg=streaming/.test(pgRun.output()),
        60_000,
        () => pgRun.output(),
      );
      await pg.sql`INSERT INTO t VALUES (3, 'three')`;
      await waitFor(
        "/readyz",
        async () => {
          const r = await fetch(`http://${pgAddr}/readyz`);
          await r.body?.cancel();
          return r.ok;
        },
        30_000,
        () => pgRun.output(),
      );
      await scrapeHttp(pgAddr, "pgx");
      const argv = await cmdline(pgRun.pid);
      assertMatch(argv, /--driver=pgx/, "read the right process");
      capture("pgx /proc/<pid>/cmdline", argv);

      const [sc, status] = await runToEnd(["status", ...pgArgs], pgEnv);
      assertEquals(sc, 0, status);
      assertMatch(status, /stateKey/);
      capture("pgx sync status", status);
      const [jc, statusJson] = await runToEnd(["status", "--json", ...pgArgs], pgEnv);
      assertEquals(jc, 0, statusJson);
      capture("pgx sync status --json", statusJson);
      const [, check] = await runToEnd(["check", ...pgArgs], pgEnv);
      assertMatch(check, /PASS\s+etcd reachable/);
      capture("pgx sync check", check);
    } finally {
      await pgRun.stop();
    }
    capture("pgx run log", pgRun.output());

    // mysql: secrets in a --config file, JSON logs, HTTP endpoints.
    const config = `${dir}/sync.yaml`;
    await Deno.writeTextFile(
      config,
      [
        `db-url: "${db.url}app"`,
        "etcd-username: syncer",
        `etcd-password: "${ETCD_PW}"`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const myArgs = [
      "--driver=mysql",
      `--config=${config}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/sm",
      "--server-id=4601",
      "--log-level=debug",
      "--log-format=json",
    ];
    const myAddr = `127.0.0.1:${freePort()}`;
    const myRun = launchSync([...myArgs, `--http-addr=${myAddr}`], {});
    try {
      await waitFor(
        "mysql streaming",
        () => /"msg":"streaming"/.test(myRun.output()),
        60_000,
        () => myRun.output(),
      );
      await db.query("INSERT INTO app.t VALUES (2, 'two')");
      await scrapeHttp(myAddr, "mysql");
      const argv = await cmdline(myRun.pid);
      assertMatch(argv, /--driver=mysql/, "read the right process");
      capture("mysql /proc/<pid>/cmdline", argv);
      const [sc, status] = await runToEnd(["status", ...myArgs], {});
      assertEquals(sc, 0, status);
      capture("mysql sync status", status);
      const [, check] = await runToEnd(["check", ...myArgs], {});
      assertMatch(check, /PASS\s+etcd reachable/);
      capture("mysql sync check", check);
    } finally {
      await myRun.stop();
    }
    capture("mysql run log", myRun.output());

    // Failing runs: a wrong database password, a wrong etcd password; check says FAIL.
    const badPg = {
      ...pgEnv,
      SYNC_DB_URL: pg.url.replace(encodeURIComponent(PG_PW), encodeURIComponent(WRONG_PG_PW)),
    };
    const [c1, o1] = await runToEnd(pgArgs, badPg);
    assertEquals(c1, 2, o1);
    assertMatch(o1, /password authentication failed/);
    capture("pgx run, wrong database password", o1);
    const [, o1c] = await runToEnd(["check", ...pgArgs], badPg);
    assertMatch(o1c, /FAIL/);
    capture("pgx check, wrong database password", o1c);
    const badEtcd = { ...pgEnv, SYNC_ETCD_PASSWORD: WRONG_ETCD_PW };
    const [c2, o2] = await runToEnd(pgArgs, badEtcd);
    assertEquals(c2, 2, o2);
    assertMatch(o2, /etcd refused user \\?"syncer/);
    capture("pgx run, wrong etcd password", o2);
    const [, o2s] = await runToEnd(["status", ...pgArgs], badEtcd);
    capture("pgx status, wrong etcd password", o2s);
    const [c3, o3] = await runToEnd(
      myArgs.map((a) =>
        a === `--config=${config}`
          ? `--db-url=${db.url.replace(encodeURIComponent(MY_PW), "x")}app`
          : a
      ),
      { SYNC_ETCD_USERNAME: "syncer", SYNC_ETCD_PASSWORD: ETCD_PW },
    );
    assertEquals(c3, 2, o3);
    assertMatch(o3, /Access denied/);
    capture("mysql run, wrong database password", o3);

    // Passwords not percent-encoded in the URLs: refused by shape, nothing of them shown,
    // and the process ends although its HTTP server is up.
    const raw = `postgres://postgres:${PG_PW}@127.0.0.1:${pg.port}/postgres`;
    const [c4, o4] = await runToEnd([...pgArgs, `--http-addr=127.0.0.1:${freePort()}`], {
      ...pgEnv,
      SYNC_DB_URL: raw,
    });
    assertEquals(c4, 2, o4);
    assertMatch(o4, /must be percent-encoded: \/ → %2F, \? → %3F, # → %23, @ → %40/);
    capture("pgx run, password not percent-encoded", o4);
    const [, o4s] = await runToEnd(["status", ...pgArgs], { ...pgEnv, SYNC_DB_URL: raw });
    capture("pgx status, password not percent-encoded", o4s);
    const rawMy = `mysql://root:${MY_PW}@127.0.0.1:${db.port}/app`;
    const [c5, o5] = await runToEnd(myArgs.filter((a) => !a.startsWith("--config")), {
      SYNC_DB_URL: rawMy,
    });
    assertEquals(c5, 2, o5);
    capture("mysql run, password not percent-encoded", o5);
    // An etcd endpoint carrying credentials is refused without echoing them.
    const withUser = etcd.endpoint.replace("//", `//syncer:${encodeURIComponent(ETCD_PW)}@`);
    const [c6, o6] = await runToEnd(
      ["--driver=pgx", `--etcd-endpoints=${withUser}`, "--etcd-prefix=/sp"],
      pgEnv,
    );
    assertEquals(c6, 2, o6);
    assertMatch(o6, /--etcd-endpoints must not hold a user name or password/);
    capture("pgx run, etcd endpoint with credentials", o6);

    // The checks above cannot pass vacuously: the captures are real and non-trivial.
    assert(captured.length >= 24, `${captured.length} captures`);
    assert(captured.every(([, t]) => t.length > 0), "every capture has content");
  } finally {
    await Promise.all([pg.close(), db.close(), etcd.close()]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
