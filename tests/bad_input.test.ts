/**
 * Bad input, table-driven: every case runs the real CLI (against real servers where it needs
 * them) and expects either one clear line and an exit status, or — where the design says to
 * keep going — the line it logs while it keeps running (a retry, a skip, a warning).
 *
 * Common to every case: no stack trace, no source location, and no password (plain or
 * URL-encoded) anywhere in the output.
 *
 * docs/bad-input.md is generated from the same list; this file fails when it is out of date
 * (`UPDATE_DOCS=1 deno test --allow-all tests/bad_input.test.ts` rewrites it).
 */
import { fmtMarkdown } from "../testing/markdown.ts";
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { type EtcdServer, startEtcd } from "../testing/etcd.ts";
import { enableEtcdAuth } from "../testing/etcd_auth.ts";
import { type PgServer, startPostgres } from "../testing/postgres.ts";
import { type MariaServer, startMariadb } from "../testing/mariadb.ts";
import { freePort, waitFor } from "../testing/process.ts";
import { launchSync } from "../testing/sync.ts";
import { assertConverges, readEtcdKvs } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DOCS = `${ROOT}docs/bad-input.md`;
const opts = { sanitizeOps: false, sanitizeResources: false };

const PG_PW = "pgpw-Q7zXa";
const MARIA_PW = "mariapw-V4kRb";
const ETCD_ROOT_PW = "etcdroot-P2mYc";
const ETCD_PW = "etcdpw-L8cWd";
const WRONG_PW = "wrongpw-H5tUe";
const PLAIN_PW = "plainpw-R3dSf";
const WEAK_PW = "weakpw-N6sTg";
const REPL_PW = "replpw-C5xZh";
// Passwords written into URLs without percent-encoding: no piece of them may show either.
const SLASH_PW = ["slashpw-K2", "tail-J9q"];
const AT_PW = ["atpw-M4", "tail-W8r"];
const ETCD_URL_PW = "etcdurlpw-T6";
const SECRETS = [
  PG_PW,
  MARIA_PW,
  ETCD_ROOT_PW,
  ETCD_PW,
  WRONG_PW,
  PLAIN_PW,
  WEAK_PW,
  REPL_PW,
  ...SLASH_PW,
  ...AT_PW,
  ETCD_URL_PW,
];

// ---------------------------------------------------------------------------------------
// Servers, started once (in parallel, on first use) and shared by the cases.

const PG_SCHEMA = `
  CREATE TABLE keyed (id int PRIMARY KEY, name text);
  INSERT INTO keyed SELECT g, 'row ' || g FROM generate_series(1, 200) g;
  CREATE TABLE nokey (v text);
  INSERT INTO nokey VALUES ('no key');
  CREATE TABLE big (id int PRIMARY KEY, v text);
  INSERT INTO big VALUES (1, 'small'), (2, repeat(md5('x'), 10000));
  CREATE ROLE plain LOGIN PASSWORD '${PLAIN_PW}';
  CREATE ROLE repl LOGIN REPLICATION PASSWORD '${REPL_PW}';
  GRANT SELECT ON ALL TABLES IN SCHEMA public TO repl;
`;

const MY_SCHEMA = `
  CREATE DATABASE app;
  USE app;
  CREATE TABLE app.keyed (id INT PRIMARY KEY, name TEXT);
  INSERT INTO app.keyed SELECT seq, CONCAT('row ', seq) FROM seq_1_to_200;
  CREATE TABLE app.nokey (v INT);
  INSERT INTO app.nokey VALUES (1);
  CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY '${WEAK_PW}';
  GRANT SELECT ON *.* TO 'weak'@'127.0.0.1';
`;

interface Fake {
  port: number;
  close(): void;
}

interface Servers {
  /** Plain etcd; --max-request-bytes 256 KiB so a 320 KB row is over its limit. */
  etcd: EtcdServer;
  /** etcd with auth on: user `sync` (readwrite on /ea/ and /ea-state/), `norole`. */
  etcdAuth: EtcdServer;
  /** etcd with a 4 MiB backend quota. */
  etcdQuota: EtcdServer;
  /** PostgreSQL with SCRAM passwords, wal_level=logical. */
  pg: PgServer;
  /** PostgreSQL with wal_level=replica. */
  pgReplica: PgServer;
  maria: MariaServer;
  /** Answers every connection with an HTTP error page. */
  junk: Fake;
  /** Speaks just enough PostgreSQL protocol to claim version 9.6. */
  oldPg: Fake;
}
type Name = keyof Servers;

const boot: { [K in Name]: () => Promise<Servers[K]> } = {
  etcd: () => startEtcd({ maxRequestBytes: 256 * 1024 }),
  etcdAuth: async () => {
    const e = await startEtcd();
    await enableEtcdAuth(e.endpoint, ETCD_ROOT_PW, [
      { name: "sync", password: ETCD_PW, prefixes: ["/ea/", "/ea-state/"] },
      { name: "norole", password: ETCD_PW, prefixes: [] },
    ]);
    return e;
  },
  etcdQuota: () => startEtcd({ quotaBytes: 4 * 1024 * 1024 }),
  pg: async () => {
    const pg = await startPostgres({ auth: "scram-sha-256", password: PG_PW });
    await pg.sql.unsafe(PG_SCHEMA);
    return pg;
  },
  pgReplica: () => startPostgres({ conf: { wal_level: "replica" } }),
  maria: async () => {
    const m = await startMariadb({ rootPassword: MARIA_PW });
    await m.query(MY_SCHEMA);
    return m;
  },
  junk: () => Promise.resolve(junkServer()),
  oldPg: () => Promise.resolve(fakeOldPostgres("9.6.24", "90624")),
};

const started = new Map<Name, Promise<unknown>>();
function server<K extends Name>(name: K): Promise<Servers[K]> {
  if (!started.has(name)) {
    const p = boot[name]();
    p.catch(() => {}); // reported by the case that awaits it
    started.set(name, p);
  }
  return started.get(name) as Promise<Servers[K]>;
}

async function closeAll() {
  for (const p of started.values()) {
    const s = await p.catch(() => undefined) as { close?: () => unknown } | undefined;
    await s?.close?.();
  }
}

/** A TCP server that answers anything with bytes of another protocol (HTTP). */
function junkServer(): Fake {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const c of l) {
      (async () => {
        await c.write(
          new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        ).catch(() => {});
        await new Promise((r) => setTimeout(r, 500));
        try {
          c.close();
        } catch { /* closed */ }
      })();
    }
  })().catch(() => {});
  return { port: (l.addr as Deno.NetAddr).port, close: () => l.close() };
}

/**
 * The PostgreSQL protocol, just enough for sync to learn the server's version: no TLS,
 * no password, a few canned answers, errors for anything else.
 */
function fakeOldPostgres(version: string, versionNum: string): Fake {
  const enc = new TextEncoder();
  const msg = (type: string, ...parts: (Uint8Array | number[])[]) => {
    const body = parts.flatMap((p) => [...p]);
    const out = new Uint8Array(5 + body.length);
    out[0] = type.charCodeAt(0);
    new DataView(out.buffer).setInt32(1, body.length + 4);
    out.set(body, 5);
    return out;
  };
  const i16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
  const i32 = (n: number) => [(n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  const cstr = (s: string) => [...enc.encode(s), 0];
  const rows = (names: string[], values: string[]) => [
    msg(
      "T",
      i16(names.length),
      ...names.map((n) => [...cstr(n), ...i32(0), ...i16(0), ...i32(25), ...i16(-1), ...i32(-1)]),
      ...names.map(() => i16(0)),
    ),
    msg(
      "D",
      i16(values.length),
      ...values.map((v) => [...i32(enc.encode(v).length), ...enc.encode(v)]),
    ),
    msg("C", cstr("SELECT 1")),
  ];
  const ready = msg("Z", [0x49]);
  const answers: Record<string, Uint8Array[]> = {
    "SELECT pg_is_in_recovery()": rows(["pg_is_in_recovery"], ["f"]),
    "IDENTIFY_SYSTEM": rows(["systemid", "timeline", "xlogpos", "dbname"], [
      "7000000000000000001",
      "1",
      "0/1000000",
      "postgres",
    ]),
    "SHOW server_version_num": rows(["server_version_num"], [versionNum]),
  };
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serve = async (c: Deno.Conn) => {
    let buf = new Uint8Array(0);
    const take = async (n: number) => {
      while (buf.length < n) {
        const b = new Uint8Array(4096);
        const k = await c.read(b);
        if (k === null) throw new Error("closed");
        const next = new Uint8Array(buf.length + k);
        next.set(buf);
        next.set(b.subarray(0, k), buf.length);
        buf = next;
      }
      const out = buf.slice(0, n);
      buf = buf.slice(n);
      return out;
    };
    const len = async () => new DataView((await take(4)).buffer).getInt32(0);
    let n = await len();
    let body = await take(n - 4);
    if (new DataView(body.buffer).getInt32(0) === 80877103) { // SSLRequest: no TLS here
      await c.write(enc.encode("N"));
      n = await len();
      body = await take(n - 4);
    }
    const write = (...ms: Uint8Array[]) => c.write(new Uint8Array(ms.flatMap((m) => [...m])));
    await write(
      msg("R", i32(0)),
      msg("S", cstr("server_version"), cstr(version)),
      msg("K", i32(4242), i32(1)),
      ready,
    );
    for (;;) {
      const type = String.fromCharCode((await take(1))[0]);
      const q = new TextDecoder().decode(await take((await len()) - 4)).replace(/\0$/, "");
      if (type === "X") break;
      const a = answers[q];
      if (a) await write(...a, ready);
      else {
        await write(
          msg("E", cstr("SERROR"), cstr("C0A000"), cstr(`Mnot supported here: ${q}`), [0]),
          ready,
        );
      }
    }
  };
  (async () => {
    for await (const c of l) {
      serve(c).catch(() => {}).finally(() => {
        try {
          c.close();
        } catch { /* closed */ }
      });
    }
  })().catch(() => {});
  return { port: (l.addr as Deno.NetAddr).port, close: () => l.close() };
}

// ---------------------------------------------------------------------------------------
// The cases.

type Expect =
  /** Exits with this status; the one error line matches. */
  | { exit: number }
  /** Keeps running (retrying, or having skipped something); the line appears in its log. */
  | { runs: true };

interface Case {
  /** What is wrong (docs: input). */
  input: string;
  /** An example of the line sync prints (docs); `line` must match it. */
  says: string;
  line: RegExp;
  /** docs: exit/outcome. */
  outcome: string;
  expect: Expect;
  args: (s: Servers, id: string) => string[] | Promise<string[]>;
  needs?: Name[];
  env?: (s: Servers) => Record<string, string>;
  setup?: (s: Servers) => Promise<void>;
  /** Runs cases: more checks once the line is there (the process still runs). */
  then?: (s: Servers, id: string, out: () => string) => Promise<void>;
  after?: (s: Servers) => Promise<void>;
}

const EXIT2 = "exit 2";
const RETRY = "keeps retrying, one line per attempt (backoff)";

/** pgx against the shared PostgreSQL, with a prefix, slot and publication of its own. */
const pgArgs = (s: Servers, id: string, url = s.pg.url) => [
  "--driver=pgx",
  `--db-url=${url}`,
  `--etcd-endpoints=${s.etcd.endpoint}`,
  `--etcd-prefix=/bad/${id}`,
  `--slot=bad_${id}`,
  `--publication=bad_${id}`,
];
const myUrl = (s: Servers, user = "root", pw = MARIA_PW, query = "") =>
  `mysql://${user}:${encodeURIComponent(pw)}@127.0.0.1:${s.maria.port}/app${query}`;
const myArgs = (s: Servers, id: string, url = myUrl(s)) => [
  "--driver=mysql",
  `--db-url=${url}`,
  `--etcd-endpoints=${s.etcd.endpoint}`,
  `--etcd-prefix=/bad/${id}`,
  `--server-id=${5000 + Number(id)}`,
];
const pgNoServer = (...more: string[]) => () => [
  "--driver=pgx",
  `--db-url=postgres://u:${PG_PW}@127.0.0.1:1/db`,
  "--etcd-endpoints=http://127.0.0.1:1",
  ...more,
];

async function withConfig(text: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "sync-bad-config-" });
  await Deno.writeTextFile(`${dir}/sync.yaml`, text);
  return `${dir}/sync.yaml`;
}

/**
 * A state key for pgx case `id` (source id `s<id>`), as sync writes it, with `position` and,
 * when given, recorded table definitions; written with etcd's own CLI.
 */
async function saveState(
  s: Servers,
  id: string,
  position: Record<string, string>,
  tables?: Record<string, unknown>,
): Promise<void> {
  const [sys] = await s.pg.sql.unsafe(
    "SELECT system_identifier::text AS id FROM pg_control_system()",
  );
  const key = `/bad/${id}-state/s${id}`;
  const state = {
    driver: "pgx",
    source: { system: sys.id, database: "postgres", slot: `bad_${id}`, timeline: 1 },
    position,
    dumpRevision: 1,
    updatedAt: new Date().toISOString(),
  };
  const put = async (k: string, v: unknown) => {
    const r = await new Deno.Command("etcdctl", {
      args: [`--endpoints=${s.etcd.endpoint}`, "put", k, JSON.stringify(v)],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert(r.success, new TextDecoder().decode(r.stderr));
  };
  await put(key, state);
  if (tables) await put(`${key}/tables`, tables);
}

/**
 * etcd under case `id`'s prefix (on `endpoint`, the plain etcd by default) holds exactly
 * these PostgreSQL tables, value for value, as the independent checker renders them; keys
 * `skip` names are expected absent.
 */
function pgRowsIn(
  s: Servers,
  id: string,
  tables: string[],
  { endpoint = s.etcd.endpoint, skip = [] as string[] } = {},
): Promise<void> {
  const expected = async () => {
    const m = await expectedFromPg(
      s.pg.sql,
      `/bad/${id}`,
      tables.map((table) => ({ schema: "public", table })),
    );
    for (const k of skip) assert(m.delete(k), `${k} is a row of the database`);
    return m;
  };
  return assertConverges(endpoint, `/bad/${id}/`, expected, 60_000);
}

/** Every row of `keyed`, and nothing else, reached etcd under case `id`'s prefix. */
function keyedRows(s: Servers, id: string): Promise<void> {
  return pgRowsIn(s, id, ["keyed"]);
}

let listener: Deno.Listener | undefined;

export const CASES: Case[] = [
  // --- command line and config file -------------------------------------------------
  {
    input: "unknown flag (`--bogus`)",
    says: "sync: unknown option '--bogus'",
    line: /^sync: unknown option '--bogus'/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => ["--bogus"],
  },
  {
    input: "unknown driver (`--driver=oracle`)",
    says: 'sync: invalid value "oracle" for --driver: expected one of pgx, mysql',
    line: /invalid value "oracle" for --driver: expected one of pgx, mysql/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => ["--driver=oracle", `--db-url=postgres://u:${PG_PW}@h/db`],
  },
  {
    input: "no `--db-url`",
    says: "sync: missing --db-url (or SYNC_DB_URL)",
    line: /missing --db-url/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => ["--driver=pgx"],
  },
  {
    input: "URL of another scheme (`http://...`)",
    says: "sync: --db-url must start with postgres:// (pgx) or mysql:// (mysql)",
    line: /--db-url must start with postgres:\/\/ \(pgx\) or mysql:\/\//,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => ["--driver=pgx", `--db-url=http://u:${PG_PW}@h/db`],
  },
  {
    input: "URL without a scheme (`u:pw@host:5432/db`)",
    says: "sync: --db-url must start with postgres:// (pgx) or mysql:// (mysql)",
    line: /--db-url must start with postgres:\/\//,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => ["--driver=pgx", `--db-url=u:${PG_PW}@127.0.0.1:5432/db`],
  },
  {
    input: "URL scheme does not match the driver (`--driver=mysql`, `postgres://`)",
    says: "sync: --driver mysql needs a mysql:// --db-url, not postgres://",
    line: /--driver mysql needs a mysql:\/\/ --db-url, not postgres:\/\//,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => ["--driver=mysql", `--db-url=postgres://u:${PG_PW}@127.0.0.1/db`],
  },
  {
    input: "PostgreSQL URL with a port out of range (`:99999`)",
    says: "sync: --db-url has a bad port",
    line: /--db-url has a bad port/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => ["--driver=pgx", `--db-url=postgres://u:${PG_PW}@127.0.0.1:99999/db`],
  },
  {
    input: "PostgreSQL URL with an empty host in its host list",
    says: 'sync: --db-url has a bad host ":5433"',
    line: /--db-url has a bad host ":5433"/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => ["--driver=pgx", `--db-url=postgres://u:${PG_PW}@h1:5432,:5433/db`],
  },
  {
    input: "password with broken percent-encoding (`%zz`)",
    says: "sync: --db-url has bad percent-encoding",
    line: /--db-url has bad percent-encoding/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => ["--driver=pgx", `--db-url=postgres://u:${PG_PW}%zz@127.0.0.1/db`],
  },
  {
    input: "unknown `sslmode`",
    says: "sync: --db-url sslmode=sometimes is not one of disable, allow, prefer, require, " +
      "verify-ca, verify-full",
    line: /--db-url sslmode=sometimes is not one of disable, allow, prefer/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => [
      "--driver=pgx",
      `--db-url=postgres://u:${PG_PW}@127.0.0.1/db?sslmode=sometimes`,
    ],
  },
  {
    input: "MySQL URL with an unknown `ssl-mode`",
    says: "sync: --db-url ssl-mode=SOMETIMES is not one of DISABLED, PREFERRED, REQUIRED, " +
      "VERIFY_CA, VERIFY_IDENTITY",
    line: /--db-url ssl-mode=SOMETIMES is not one of DISABLED/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => [
      "--driver=mysql",
      `--db-url=mysql://u:${MARIA_PW}@127.0.0.1/app?ssl-mode=sometimes`,
    ],
  },
  {
    input: "MySQL URL with port 0",
    says: "sync: --db-url has a bad port",
    line: /--db-url has a bad port/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => ["--driver=mysql", `--db-url=mysql://u:${MARIA_PW}@127.0.0.1:0/app`],
  },
  {
    input: "not a duration (`--etcd-timeout=soon`)",
    says: 'sync: invalid value "soon" for --etcd-timeout: expected a duration such as 500ms, ' +
      "10s or 1m",
    line: /invalid value "soon" for --etcd-timeout: expected a duration/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: pgNoServer("--etcd-timeout=soon"),
  },
  {
    input: "negative number (`--dump-parallel=-1`)",
    says: 'sync: invalid value "-1" for --dump-parallel: expected a whole number from 1 to 64',
    line: /invalid value "-1" for --dump-parallel: expected a whole number from 1 to 64/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: pgNoServer("--dump-parallel=-1"),
  },
  {
    input: "not a size (`--etcd-max-txn-bytes=lots`)",
    says: 'sync: invalid value "lots" for --etcd-max-txn-bytes: expected a size such as ' +
      "1048576 or 1MiB",
    line: /invalid value "lots" for --etcd-max-txn-bytes: expected a size/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: pgNoServer("--etcd-max-txn-bytes=lots"),
  },
  {
    input: "unknown choice (`--oversize=truncate`)",
    says: 'sync: invalid value "truncate" for --oversize: expected one of fail, skip',
    line: /invalid value "truncate" for --oversize: expected one of fail, skip/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: pgNoServer("--oversize=truncate"),
  },
  {
    input: "bad value in the environment (`SYNC_LOG_LEVEL=loud`)",
    says: 'sync: invalid value "loud" for --log-level (from SYNC_LOG_LEVEL): expected one of ' +
      "debug, info, warn, error",
    line: /invalid value "loud" for --log-level \(from SYNC_LOG_LEVEL\)/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: pgNoServer(),
    env: () => ({ SYNC_LOG_LEVEL: "loud" }),
  },
  {
    input: "`--etcd-max-txn-ops=1` (the state key needs room)",
    says: 'sync: invalid value "1" for --etcd-max-txn-ops: expected a whole number of at least 2',
    line: /invalid value "1" for --etcd-max-txn-ops: expected a whole number of at least 2/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: pgNoServer("--etcd-max-txn-ops=1"),
  },
  {
    input: "empty `--etcd-endpoints`",
    says: "sync: --etcd-endpoints is empty: give at least one URL",
    line: /--etcd-endpoints is empty/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => ["--driver=pgx", `--db-url=postgres://u:${PG_PW}@h/db`, "--etcd-endpoints="],
  },
  {
    input: "etcd endpoint that is not a URL (`etcd:2379`)",
    says: 'sync: invalid value "etcd:2379" in --etcd-endpoints: expected http://HOST:PORT or ' +
      "https://HOST:PORT",
    line: /invalid value "etcd:2379" in --etcd-endpoints: expected http:\/\/HOST:PORT/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => [
      "--driver=pgx",
      `--db-url=postgres://u:${PG_PW}@h/db`,
      "--etcd-endpoints=etcd:2379",
    ],
  },
  {
    input: "state prefix inside the data prefix",
    says: "sync: --etcd-state-prefix must be outside --etcd-prefix",
    line: /--etcd-state-prefix must be outside --etcd-prefix/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: pgNoServer("--etcd-prefix=/a", "--etcd-state-prefix=/a/state"),
  },
  {
    input: "`--http-addr` without a port",
    says: "sync: --http-addr must be HOST:PORT, got localhost",
    line: /--http-addr must be HOST:PORT, got localhost/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: pgNoServer("--http-addr=localhost"),
  },
  {
    input: "`--http-addr` port already in use",
    says: "sync: cannot serve --http-addr 127.0.0.1:41234: Address already in use (os error 98)",
    line: /cannot serve --http-addr 127\.0\.0\.1:\d+: Address already in use/,
    outcome: EXIT2,
    expect: { exit: 2 },
    setup: () => {
      listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      return Promise.resolve();
    },
    args: () => pgNoServer(`--http-addr=127.0.0.1:${(listener!.addr as Deno.NetAddr).port}`)(),
    after: () => Promise.resolve(listener?.close()),
  },
  {
    input: "unreadable `--etcd-ca` file",
    says: "sync: cannot read etcd CA file /nonexistent/ca.pem: No such file or directory " +
      "(os error 2): readfile '/nonexistent/ca.pem'",
    line: /cannot read etcd CA file \/nonexistent\/ca\.pem: No such file/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: pgNoServer("--etcd-ca=/nonexistent/ca.pem"),
  },
  {
    input: "missing config file",
    says: "sync: cannot read config file /nonexistent/sync.yaml: No such file or directory " +
      "(os error 2): readfile '/nonexistent/sync.yaml'",
    line: /cannot read config file \/nonexistent\/sync\.yaml: No such file/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => ["--config=/nonexistent/sync.yaml"],
  },
  {
    input: "config file with an unknown key (`slots:`)",
    says: 'sync: /tmp/sync.yaml: unknown key "slots" (keys are the flag names)',
    line: /sync\.yaml: unknown key "slots" \(keys are the flag names\)/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: async () => [`--config=${await withConfig(`driver: pgx\nslots: x\n`)}`],
  },
  {
    input: "config file that is not YAML",
    says: "sync: /tmp/sync.yaml: not valid YAML: Flow sequence in block collection must be " +
      "sufficiently indented and end with a ]",
    line: /sync\.yaml: not valid YAML: /,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: async () => [`--config=${await withConfig(`driver: [pgx\ndb-url: x\n`)}`],
  },
  {
    input: "config file value of the wrong type (a list for `db-url`); the value is not echoed",
    says: "sync: invalid value for --db-url (from /tmp/sync.yaml): expected a string",
    line: /invalid value for --db-url \(from \S+sync\.yaml\): expected a string/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: async () => [
      `--config=${await withConfig(`driver: pgx\ndb-url: [postgres://u:${PG_PW}@h/db]\n`)}`,
    ],
  },
  {
    input: "password with an unencoded `/` in the URL (`postgres://u:pa/ss@host/db`)",
    says: "sync: --db-url: the user name and password must be percent-encoded: / → %2F",
    line: /^sync: --db-url: the user name and password must be percent-encoded: \/ → %2F$/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => [
      "--driver=pgx",
      `--db-url=postgres://u:${SLASH_PW.join("/")}@127.0.0.1:5432/postgres`,
      "--etcd-endpoints=http://127.0.0.1:1",
    ],
  },
  {
    input: "password with an unencoded `@` in the URL (`mysql://u:p@ss@host/db`)",
    says: "sync: --db-url: the user name and password must be percent-encoded: @ → %40",
    line: /^sync: --db-url: the user name and password must be percent-encoded: @ → %40$/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => [
      "--driver=mysql",
      `--db-url=mysql://u:${AT_PW.join("@")}@127.0.0.1:3306/app`,
      "--etcd-endpoints=http://127.0.0.1:1",
    ],
  },
  {
    input: "etcd endpoint with a user name and password in it (`http://u:pw@host:2379`)",
    says: "sync: --etcd-endpoints must not hold a user name or password: give " +
      "--etcd-username and --etcd-password (SYNC_ETCD_PASSWORD)",
    line: /^sync: --etcd-endpoints must not hold a user name or password: give --etcd-username/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: pgNoServer(`--etcd-endpoints=http://sync:${ETCD_URL_PW}@127.0.0.1:2379`),
  },
  {
    input: "replication slot name PostgreSQL refuses (`--slot=My-Slot`)",
    says: 'sync: invalid value "My-Slot" for --slot: expected lower-case letters, digits and ' +
      "underscores (at most 63)",
    line: /invalid value "My-Slot" for --slot: expected lower-case letters, digits and underscores/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: pgNoServer("--slot=My-Slot"),
  },
  {
    input: "`--server-id` beyond 2³²−1 (`4294967297`)",
    says: 'sync: invalid value "4294967297" for --server-id: expected a whole number from 1 to ' +
      "4294967295",
    line:
      /invalid value "4294967297" for --server-id: expected a whole number from 1 to 4294967295/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => [
      "--driver=mysql",
      `--db-url=mysql://u:${MARIA_PW}@127.0.0.1:1/app`,
      "--server-id=4294967297",
    ],
  },
  {
    input: "duration without a unit out of range (`--ha-ttl=10000`, read as seconds)",
    says: 'sync: invalid value "10000" for --ha-ttl: expected a duration from 2s to 1h (a number ' +
      "without a unit is seconds)",
    line: /invalid value "10000" for --ha-ttl: expected a duration from 2s to 1h \(a number/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: pgNoServer("--ha", "--ha-ttl=10000"),
  },
  {
    input: "config file key with no value (`etcd-prefix:`)",
    says: "sync: /tmp/sync.yaml: etcd-prefix has no value (give one or remove the key)",
    line: /sync\.yaml: etcd-prefix has no value \(give one or remove the key\)/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: async () => [`--config=${await withConfig("driver: pgx\netcd-prefix:\n")}`],
  },
  {
    input: "`sslrootcert` file missing",
    says: "cannot read sslrootcert /nonexistent/ca.pem: No such file or directory (os error 2)" +
      ": readfile '/nonexistent/ca.pem'",
    line: /cannot read sslrootcert \/nonexistent\/ca\.pem: No such file/,
    outcome: EXIT2,
    expect: { exit: 2 },
    args: () => [
      "--driver=pgx",
      `--db-url=postgres://u:${PG_PW}@127.0.0.1:1/db?sslmode=verify-full&sslrootcert=` +
      "/nonexistent/ca.pem",
      "--etcd-endpoints=http://127.0.0.1:1",
    ],
  },

  // --- unreachable servers: retried forever (design: Failure rules) -------------------
  {
    input: "PostgreSQL unreachable (nothing listens on the port)",
    says: 'level=warn msg=retrying attempt=1 reason="cannot connect to 127.0.0.1:41234: ' +
      'Connection refused (os error 111)" retry_in_ms=412',
    line: /msg=retrying attempt=\d+ reason="cannot connect to 127\.0\.0\.1:\d+: Connection refused/,
    outcome: RETRY,
    expect: { runs: true },
    needs: ["etcd"],
    args: (s, id) => pgArgs(s, id, `postgres://postgres:${PG_PW}@127.0.0.1:${freePort()}/postgres`),
  },
  {
    input: "MySQL unreachable",
    says: 'level=warn msg=retrying attempt=1 reason="cannot connect to 127.0.0.1:41234: ' +
      'Connection refused (os error 111)" retry_in_ms=412',
    line: /msg=retrying attempt=\d+ reason="cannot connect to 127\.0\.0\.1:\d+: Connection refused/,
    outcome: RETRY,
    expect: { runs: true },
    needs: ["etcd"],
    args: (s, id) => [
      "--driver=mysql",
      `--db-url=mysql://root:${MARIA_PW}@127.0.0.1:${freePort()}/app`,
      `--etcd-endpoints=${s.etcd.endpoint}`,
      `--etcd-prefix=/bad/${id}`,
    ],
  },
  {
    input: "etcd unreachable",
    says: 'level=warn msg=retrying attempt=1 reason="etcd unreachable at http://127.0.0.1:41234' +
      ': error sending request for url (...)" retry_in_ms=412',
    line: /msg=retrying attempt=\d+ reason="etcd unreachable at http:\/\/127\.0\.0\.1:\d+/,
    outcome: RETRY,
    expect: { runs: true },
    needs: ["pg"],
    args: (s, id) => [
      ...pgArgs({ ...s, etcd: { endpoint: `http://127.0.0.1:${freePort()}` } as EtcdServer }, id),
    ],
  },

  {
    input: "database host that does not resolve",
    says: 'level=warn msg=retrying attempt=1 reason="cannot resolve nosuch.invalid (failed to ' +
      'lookup address information: Name or service not known)" retry_in_ms=412',
    line: /msg=retrying attempt=\d+ reason="cannot resolve nosuch\.invalid \(/,
    outcome: RETRY,
    expect: { runs: true },
    needs: ["etcd"],
    args: (s, id) => pgArgs(s, id, `postgres://postgres:${PG_PW}@nosuch.invalid:5432/postgres`),
  },
  {
    input: "etcd host that does not resolve",
    says: 'level=warn msg=retrying attempt=1 reason="etcd unreachable at ' +
      'http://nosuch.invalid:2379: cannot resolve nosuch.invalid (getaddrinfo ENOTFOUND)" ' +
      "retry_in_ms=412",
    line:
      /msg=retrying .*reason="etcd unreachable at http:\/\/nosuch\.invalid:2379: cannot resolve nosuch\.invalid/,
    outcome: RETRY,
    expect: { runs: true },
    needs: ["pg"],
    args: (s, id) => [
      ...pgArgs({ ...s, etcd: { endpoint: "http://nosuch.invalid:2379" } as EtcdServer }, id),
    ],
  },

  {
    input: "`sync status` (or `check`, `drop`) with etcd unreachable",
    says: "sync: etcd unreachable at http://127.0.0.1:41234: error sending request for url (...)",
    line: /^sync: etcd unreachable at http:\/\/127\.0\.0\.1:\d+/,
    outcome: "exit 1",
    expect: { exit: 1 },
    needs: ["pg"],
    args: (s, id) => [
      "status",
      ...pgArgs({ ...s, etcd: { endpoint: `http://127.0.0.1:${freePort()}` } as EtcdServer }, id),
    ],
  },

  {
    input: "`sync snapshot` naming a table this source does not replicate",
    says: "sync: not replicated by this source: nope (name tables as in keys; replicated: keyed)",
    line:
      /^sync: not replicated by this source: nope \(name tables as in keys; replicated: keyed\)$/,
    outcome: EXIT2 + "; nothing requested",
    expect: { exit: 2 },
    needs: ["pg", "etcd"],
    args: async (s, id) => {
      await saveState(s, id, { lsn: "0/1" }, {
        keyed: { id: "1", columns: ["id:23:-1"], key: ["id"], identity: "d" },
      });
      return ["snapshot", "nope", ...pgArgs(s, id), `--source-id=s${id}`];
    },
  },

  // --- not the protocol ---------------------------------------------------------------
  {
    input: "pgx pointed at a server that is not PostgreSQL (an HTTP server)",
    says:
      '127.0.0.1:41234 is not speaking the PostgreSQL protocol (it answered the SSL request with 0x48 ("H")): check the host and port in --db-url',
    line:
      /127\.0\.0\.1:\d+ is not speaking the PostgreSQL protocol \(it answered the SSL request with 0x48/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["junk", "etcd"],
    args: (s, id) => pgArgs(s, id, `postgres://postgres:${PG_PW}@127.0.0.1:${s.junk.port}/db`),
  },
  {
    input: "same, with `sslmode=disable` (junk where the startup answer belongs)",
    says:
      '127.0.0.1:41234 is not speaking the PostgreSQL protocol (it sent 0x48 ("H") where a startup message belongs): check the host and port in --db-url',
    line: /is not speaking the PostgreSQL protocol \(it sent 0x48 \("H"\) where a startup message/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["junk", "etcd"],
    args: (s, id) =>
      pgArgs(s, id, `postgres://postgres:${PG_PW}@127.0.0.1:${s.junk.port}/db?sslmode=disable`),
  },
  {
    input: "mysql pointed at a server that is not MySQL (an HTTP server)",
    says:
      "127.0.0.1:41234 is not speaking the MySQL protocol (it sent 48 54 54 50 2f): check the host and port in --db-url",
    line: /127\.0\.0\.1:\d+ is not speaking the MySQL protocol \(it sent 48 54 54 50 2f\)/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["junk", "etcd"],
    args: (s, id) => [
      "--driver=mysql",
      `--db-url=mysql://root:${MARIA_PW}@127.0.0.1:${s.junk.port}/app`,
      `--etcd-endpoints=${s.etcd.endpoint}`,
      `--etcd-prefix=/bad/${id}`,
    ],
  },
  {
    input: "etcd endpoint that is an HTTP server, not etcd",
    says: "etcd endpoint http://127.0.0.1:41234 is not an etcd server (it answered GET /version " +
      "with HTTP 400): fix --etcd-endpoints",
    line:
      /etcd endpoint http:\/\/127\.0\.0\.1:\d+ is not an etcd server \(it answered GET \/version with HTTP 400\)/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["pg", "junk"],
    args: (s, id) =>
      pgArgs({ ...s, etcd: { endpoint: `http://127.0.0.1:${s.junk.port}` } as EtcdServer }, id),
  },
  {
    input: "etcd endpoint that is the PostgreSQL port",
    says: "etcd endpoint http://127.0.0.1:41234 is not an etcd server (it closed the connection " +
      "without answering GET /version): fix --etcd-endpoints",
    line:
      /etcd endpoint http:\/\/127\.0\.0\.1:\d+ is not an etcd server \(it closed the connection/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["pg"],
    args: (s, id) =>
      pgArgs({ ...s, etcd: { endpoint: `http://127.0.0.1:${s.pg.port}` } as EtcdServer }, id),
  },
  {
    input: "PostgreSQL older than 10 (a fake server claiming 9.6)",
    says: "PostgreSQL 9.6.24 is too old: 10 or later needed",
    line: /PostgreSQL 9\.6\.24 is too old: 10 or later needed/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["oldPg", "etcd"],
    args: (s, id) => pgArgs(s, id, `postgres://postgres@127.0.0.1:${s.oldPg.port}/postgres`),
  },

  // --- TLS, credentials, privileges, server settings -----------------------------------
  {
    input: "`sslmode=require` against a PostgreSQL without TLS",
    says: "127.0.0.1:41234 does not accept TLS but --db-url has sslmode=require",
    line: /127\.0\.0\.1:\d+ does not accept TLS but --db-url has sslmode=require/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["pg", "etcd"],
    args: (s, id) => pgArgs(s, id, `${s.pg.url}?sslmode=require`),
  },
  {
    input: "`ssl-mode=REQUIRED` against a MariaDB without TLS",
    says: "127.0.0.1:41234 does not offer TLS but --db-url has ssl-mode=REQUIRED",
    line: /127\.0\.0\.1:\d+ does not offer TLS but --db-url has ssl-mode=REQUIRED/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["maria", "etcd"],
    args: (s, id) => myArgs(s, id, myUrl(s, "root", MARIA_PW, "?ssl-mode=REQUIRED")),
  },
  {
    input: "wrong PostgreSQL password",
    says: 'PostgreSQL at 127.0.0.1:41234 refused user "postgres": password authentication ' +
      'failed for user "postgres" (check the user and password in --db-url, and pg_hba.conf)',
    line: /refused user "postgres": password authentication failed for user "postgres"/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["pg", "etcd"],
    args: (s, id) => pgArgs(s, id, s.pg.url.replace(PG_PW, WRONG_PW)),
  },
  {
    input: "wrong MySQL password",
    says: "MySQL error 1045 (28000): Access denied for user 'root'@'localhost' (using " +
      "password: YES) (check the user and password in --db-url)",
    line: /MySQL error 1045 \(28000\): Access denied for user 'root'.*check the user and password/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["maria", "etcd"],
    args: (s, id) => myArgs(s, id, myUrl(s, "root", WRONG_PW)),
  },
  {
    input: "PostgreSQL role without `REPLICATION`",
    says: "PostgreSQL: must be superuser or replication role to start walsender (grant the " +
      "REPLICATION attribute " +
      'and SELECT on the tables: ALTER ROLE "plain" REPLICATION)',
    line: /REPLICATION attribute .*ALTER ROLE "plain" REPLICATION/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["pg", "etcd"],
    args: (s, id) => pgArgs(s, id, `postgres://plain:${PLAIN_PW}@127.0.0.1:${s.pg.port}/postgres`),
  },
  {
    input:
      "PostgreSQL role with `REPLICATION` that may not create the `FOR ALL TABLES` publication",
    says: "PostgreSQL: permission denied for database postgres (sync creates the publication " +
      "when it is missing, which REPLICATION does not allow: create it once as a superuser " +
      "(CREATE PUBLICATION name FOR ALL TABLES, named by --publication), or run sync as a " +
      "superuser; with --tables, CREATE on the database and owning those tables is enough)",
    line: /PostgreSQL: .*\(sync creates the publication when it is missing, .*superuser/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["pg", "etcd"],
    args: (s, id) => pgArgs(s, id, `postgres://repl:${REPL_PW}@127.0.0.1:${s.pg.port}/postgres`),
  },
  {
    input: "MySQL user without replication privileges",
    says: "MySQL error 1227 (42000): Access denied; you need (at least one of) the SUPER, " +
      "BINLOG MONITOR privilege(s) for this operation (grant REPLICATION SLAVE, REPLICATION " +
      "CLIENT and SELECT to weak)",
    line: /MySQL error 1227 .*privilege.*grant REPLICATION SLAVE, REPLICATION CLIENT and SELECT/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["maria", "etcd"],
    args: (s, id) => myArgs(s, id, myUrl(s, "weak", WEAK_PW)),
  },
  {
    input: "PostgreSQL database that does not exist",
    says: 'PostgreSQL at 127.0.0.1:41234: database "nope" does not exist (fix the database ' +
      "in --db-url)",
    line: /database "nope" does not exist \(fix the database in --db-url\)/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["pg", "etcd"],
    args: (s, id) => pgArgs(s, id, s.pg.url.replace(/\/postgres$/, "/nope")),
  },
  {
    input: "`wal_level=replica`",
    says: "wal_level is replica: set wal_level = logical in postgresql.conf and restart " +
      "PostgreSQL",
    line: /wal_level is replica: set wal_level = logical/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["pgReplica", "etcd"],
    args: (s, id) => pgArgs(s, id, s.pgReplica.url),
  },
  {
    input: "`binlog_format=STATEMENT`",
    says: "binlog_format is STATEMENT: set binlog_format = ROW in the server configuration",
    line: /binlog_format is STATEMENT: set binlog_format = ROW/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["maria", "etcd"],
    setup: async (s) => void await s.maria.query("SET GLOBAL binlog_format = 'STATEMENT'"),
    args: (s, id) => myArgs(s, id),
    after: async (s) => void await s.maria.query("SET GLOBAL binlog_format = 'ROW'"),
  },
  {
    input: "`binlog_row_image=MINIMAL`",
    says: "binlog_row_image is MINIMAL: set binlog_row_image = FULL in the server configuration",
    line: /binlog_row_image is MINIMAL: set binlog_row_image = FULL/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["maria", "etcd"],
    setup: async (s) => void await s.maria.query("SET GLOBAL binlog_row_image = 'MINIMAL'"),
    args: (s, id) => myArgs(s, id),
    after: async (s) => void await s.maria.query("SET GLOBAL binlog_row_image = 'FULL'"),
  },

  {
    input: "`--server-id` equal to the MySQL server's own `server_id`",
    says: "--server-id 1 is the server's own server_id: give sync an id no server or replica " +
      "uses (1 to 4294967295)",
    line: /--server-id 1 is the server's own server_id: give sync an id no server or replica uses/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["maria", "etcd"],
    args: (
      s,
      id,
    ) => [...myArgs(s, id).filter((a) => !a.startsWith("--server-id")), "--server-id=1"],
  },
  // --- etcd credentials and limits -----------------------------------------------------
  {
    input: "wrong etcd password",
    says: 'etcd refused user "sync": etcdserver: authentication failed, invalid user ID or ' +
      "password (check --etcd-username and SYNC_ETCD_PASSWORD)",
    line:
      /etcd refused user "sync": etcdserver: auth.*check --etcd-username and SYNC_ETCD_PASSWORD/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["pg", "etcdAuth"],
    args: (s, id) => [
      ...pgArgs({ ...s, etcd: s.etcdAuth }, id),
      "--etcd-prefix=/ea",
      "--etcd-username=sync",
    ],
    env: () => ({ SYNC_ETCD_PASSWORD: WRONG_PW }),
  },
  {
    input: "wrong etcd password with `--ha` (the election is the first request)",
    says: 'etcd refused user "sync": etcdserver: authentication failed, invalid user ID or ' +
      "password (check --etcd-username and SYNC_ETCD_PASSWORD)",
    line:
      /etcd refused user "sync": etcdserver: auth.*check --etcd-username and SYNC_ETCD_PASSWORD/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["pg", "etcdAuth"],
    args: (s, id) => [
      ...pgArgs({ ...s, etcd: s.etcdAuth }, id),
      "--etcd-prefix=/ea",
      "--etcd-username=sync",
      "--ha",
    ],
    env: () => ({ SYNC_ETCD_PASSWORD: WRONG_PW }),
  },
  {
    input: "etcd with auth on, no etcd user given",
    says: "etcd requires authentication: etcdserver: user name is empty (set --etcd-username " +
      "and --etcd-password)",
    line: /etcd requires authentication: .*set --etcd-username and --etcd-password/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["pg", "etcdAuth"],
    args: (s, id) => [...pgArgs({ ...s, etcd: s.etcdAuth }, id), "--etcd-prefix=/ea"],
  },
  {
    input: "etcd user without a role on the prefix",
    says: 'etcd: etcdserver: permission denied for user "norole" (grant its role readwrite on ' +
      "--etcd-prefix and the state prefix)",
    line: /etcd: etcdserver: permission denied for user "norole" \(grant its role readwrite/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["pg", "etcdAuth"],
    args: (s, id) => [
      ...pgArgs({ ...s, etcd: s.etcdAuth }, id),
      "--etcd-prefix=/ea",
      "--etcd-username=norole",
      `--etcd-password=${ETCD_PW}`,
    ],
  },
  {
    input: "row larger than `--etcd-max-txn-bytes` (default `--oversize fail`)",
    says: "row too large for etcd: table big key 2 needs 320042 bytes, over the 204800-byte " +
      "request limit; raise etcd's --max-request-bytes and --etcd-max-txn-bytes, or run with " +
      "--oversize skip",
    line: /row too large for etcd: table big key 2 needs \d+ bytes, over the 204800-byte/,
    outcome: "exit 1 (stops before writing anything past that row)",
    expect: { exit: 1 },
    needs: ["pg", "etcd"],
    args: (s, id) => [...pgArgs(s, id), "--tables=public.big", "--etcd-max-txn-bytes=200KiB"],
  },
  {
    input: "same with `--oversize skip`",
    says: 'level=warn msg="row too large for etcd; skipped" table=big key=2 bytes=320042',
    line: /msg="row too large for etcd; skipped" table=big key=2 bytes=\d+/,
    outcome: "skipped: logged, counted in sync_oversize_rows_skipped_total, the rest replicated",
    expect: { runs: true },
    needs: ["pg", "etcd"],
    args: (s, id) => [
      ...pgArgs(s, id),
      "--tables=public.big",
      "--etcd-max-txn-bytes=200KiB",
      "--oversize=skip",
      `--http-addr=127.0.0.1:${httpPort}`,
    ],
    then: async (s, id) => {
      await pgRowsIn(s, id, ["big"], { skip: [`/bad/${id}/big/2`] });
      const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      assertMatch(metrics, /^sync_oversize_rows_skipped_total(\{[^}]*\})? 1$/m);
    },
  },
  {
    input: "row under `--etcd-max-txn-bytes` but over etcd's `--max-request-bytes`",
    says: "etcd refused a 320075-byte transaction as too large (largest op: key /bad/50/big/2, " +
      "320042 bytes): set --etcd-max-txn-bytes below etcd's --max-request-bytes",
    line: /etcd refused a \d+-byte transaction as too large \(largest op: key \/bad\/\d+\/big\/2/,
    outcome: EXIT2,
    expect: { exit: 2 },
    needs: ["pg", "etcd"],
    args: (s, id) => [...pgArgs(s, id), "--tables=public.big"],
  },
  {
    input: "etcd out of space (`mvcc: database space exceeded`, tiny `--quota-backend-bytes`)",
    says: 'level=warn msg=retrying attempt=1 reason="etcd is out of space (etcdserver: mvcc: ' +
      "database space exceeded): nothing was written; free space (compact, defragment, then " +
      '\\"etcdctl alarm disarm\\") or raise etcd\'s --quota-backend-bytes" retry_in_ms=412',
    line:
      /msg=retrying .*reason="etcd is out of space \(etcdserver: mvcc: database space exceeded\)/,
    outcome: "keeps retrying; once etcd has room again the dump completes, nothing lost",
    expect: { runs: true },
    needs: ["pg", "etcdQuota"],
    setup: (s) => fillEtcd(s.etcdQuota.endpoint),
    args: (s, id) => [...pgArgs({ ...s, etcd: s.etcdQuota }, id), "--tables=public.keyed"],
    then: async (s, id) => {
      await freeEtcd(s.etcdQuota.endpoint);
      // Nothing lost: every row, value for value, once etcd has room again.
      await pgRowsIn(s, id, ["keyed"], { endpoint: s.etcdQuota.endpoint });
      // The rows are covered by a saved state: written with the last of them, or later.
      const dir = `/bad/${id}-state/`;
      const { kvs } = await readEtcdKvs(s.etcdQuota.endpoint, dir);
      const states = [...kvs].filter(([k]) => !k.slice(dir.length).includes("/"));
      assertEquals(states.map(([k]) => k).length, 1, `one state key: ${[...kvs.keys()]}`);
      const [key, state] = states[0];
      assertEquals(JSON.parse(state.value).driver, "pgx", key);
      const rows = (await readEtcdKvs(s.etcdQuota.endpoint, `/bad/${id}/`)).kvs;
      const lastRow = Math.max(...[...rows.values()].map((kv) => kv.modRevision));
      assert(state.modRevision >= lastRow, `${key} at ${state.modRevision}, a row at ${lastRow}`);
    },
  },

  // --- a history etcd holds that the server does not ---------------------------------
  {
    input: "the saved position is past the server's WAL end (a restored backup, a clone)",
    says: 'level=warn msg="dump starting" reason="the saved position FF/0 is past this ' +
      "server's WAL end 0/1A2B3C8: etcd holds another history (a restored backup or a clone " +
      'of the database?)"',
    line:
      /level=warn msg="dump starting" reason="the saved position FF\/0 is past this server's WAL end/,
    outcome: "dumps again and never confirms that position; nothing lost",
    expect: { runs: true },
    needs: ["pg", "etcd"],
    args: async (s, id) => {
      await saveState(s, id, { lsn: "FF/0" });
      return [...pgArgs(s, id), "--tables=public.keyed", `--source-id=s${id}`];
    },
    then: (s, id) => keyedRows(s, id),
  },
  {
    input: "a table altered, renamed or dropped while sync was stopped",
    says: 'level=warn msg="snapshotting tables again" reason="tables changed while sync was ' +
      'stopped (changed: keyed)"',
    line:
      /level=warn msg="snapshotting tables again" reason="tables changed while sync was stopped \(changed: keyed\)"/,
    outcome: "reads that table again online while streaming (the stream cannot show what " +
      "changed); nothing lost",
    expect: { runs: true },
    needs: ["pg", "etcd"],
    args: async (s, id) => {
      // A slot and publication as sync leaves them, and a recorded definition of `keyed`
      // that is not today's (another OID: the table was dropped and created again).
      const [slot] = await s.pg.sql.unsafe(
        `SELECT lsn::text FROM pg_create_logical_replication_slot('bad_${id}', 'pgoutput')`,
      );
      await s.pg.sql.unsafe(`CREATE PUBLICATION bad_${id} FOR TABLE keyed`);
      await saveState(s, id, { lsn: slot.lsn }, {
        keyed: { id: "1", columns: ["id:23:-1", "name:25:-1"], key: ["id"], identity: "d" },
      });
      return [...pgArgs(s, id), "--tables=public.keyed", `--source-id=s${id}`];
    },
    then: (s, id) => keyedRows(s, id),
  },

  // --- what the design says to skip ---------------------------------------------------
  {
    input: "PostgreSQL table without a primary key",
    says: 'level=warn msg="tables without a primary key are not replicated" tables=public.nokey',
    line: /msg="tables without a primary key are not replicated" tables=public\.nokey/,
    outcome: "skipped with a warning at start; other tables replicated",
    expect: { runs: true },
    needs: ["pg", "etcd"],
    args: (s, id) => [...pgArgs(s, id), "--tables=public.nokey,public.keyed"],
    then: (s, id) => keyedRows(s, id),
  },
  {
    input: "MySQL table without a primary key",
    says: 'level=warn msg="tables without a primary key are not replicated" tables=app.nokey',
    line: /msg="tables without a primary key are not replicated" tables=\S*nokey/,
    outcome: "skipped with a warning at start; other tables replicated",
    expect: { runs: true },
    needs: ["maria", "etcd"],
    args: (s, id) => myArgs(s, id),
    // The checker renders every keyed table of `app` (nokey has none): exactly `keyed`.
    then: (s, id) =>
      assertConverges(
        s.etcd.endpoint,
        `/bad/${id}/`,
        () => expectedFromMysql(s.maria.query, `/bad/${id}`, ["app"], "app"),
        60_000,
      ),
  },
  {
    input: "`--tables` pattern that matches no table",
    says: 'level=warn msg="no table is replicated: check --tables and --exclude (and primary ' +
      'keys)"',
    line: /msg="no table is replicated: check --tables and --exclude/,
    outcome: "warning; keeps running (streams whatever comes to match)",
    expect: { runs: true },
    needs: ["pg", "etcd"],
    args: (s, id) => [...pgArgs(s, id), "--tables=public.no_such_table*"],
  },
];

const httpPort = freePort();

/** Fill an etcd with a small quota until it raises its NOSPACE alarm. */
async function fillEtcd(endpoint: string): Promise<void> {
  const value = btoa("x".repeat(700 * 1024));
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${endpoint}/v3/kv/put`, {
      method: "POST",
      body: JSON.stringify({ key: btoa(`/filler/${i}`), value }),
    });
    const text = await r.text();
    if (/database space exceeded/.test(text)) return;
  }
  throw new Error("etcd never ran out of space");
}

/** Free the space again: delete, compact, defragment, disarm. */
async function freeEtcd(endpoint: string): Promise<void> {
  const post = async (path: string, body: unknown) => {
    const r = await fetch(`${endpoint}${path}`, { method: "POST", body: JSON.stringify(body) });
    const j = await r.json();
    if (!r.ok) throw new Error(`${path}: ${JSON.stringify(j)}`);
    return j;
  };
  const d = await post("/v3/kv/deleterange", {
    key: btoa("/filler/"),
    range_end: btoa("/filler0"),
  });
  await post("/v3/kv/compaction", { revision: d.header.revision, physical: true });
  await post("/v3/maintenance/defragment", {});
  const alarms = await post("/v3/maintenance/alarm", { action: "GET" });
  for (const a of alarms.alarms ?? []) {
    await post("/v3/maintenance/alarm", {
      action: "DEACTIVATE",
      memberID: a.memberID,
      alarm: a.alarm,
    });
  }
}

// ---------------------------------------------------------------------------------------
// Running a case.

const STACK = /^\s+at\s|\bfile:\/\/|\.ts:\d+/m;
const ERROR_LINE = /^sync: |level=error|"level":"error"/;

/** The message of a `key=value` log line (unquoted), or the line itself. */
function messageOf(line: string): string {
  const m = /\bmsg=("(?:[^"\\]|\\.)*"|\S+)/.exec(line);
  if (!m) return line;
  return m[1].startsWith('"') ? JSON.parse(m[1]) : m[1];
}

function assertNoSecret(what: string, text: string) {
  for (const s of SECRETS) {
    for (const form of new Set([s, encodeURIComponent(s)])) {
      assert(!text.includes(form), `${what}: a password appears in the output:\n${text}`);
    }
  }
}

/**
 * A case that starts the service (it needs a server, and is no subcommand) and must exit
 * runs with `--http-addr` too: a fatal error must end the process even while its HTTP
 * server is up (it used to log the error and keep serving /healthz for ever).
 */
function withHttp(c: Case, args: string[]): string[] {
  const service = c.needs?.length && !["status", "check", "drop", "snapshot"].includes(args[0]);
  if (!("exit" in c.expect) || !service || args.some((a) => a.startsWith("--http-addr"))) {
    return args;
  }
  return [...args, `--http-addr=127.0.0.1:${freePort()}`];
}

async function runCase(c: Case, s: Servers, id: string) {
  await c.setup?.(s);
  const args = withHttp(c, await c.args(s, id));
  const p = launchSync(args, c.env?.(s) ?? {});
  try {
    if ("exit" in c.expect) {
      let hung = false;
      const t = setTimeout(() => {
        hung = true;
        p.kill("SIGKILL");
      }, 45_000);
      const code = await p.exited;
      clearTimeout(t);
      const out = p.output();
      assert(!hung, `still running after 45 s (killed), output:\n${out}`);
      assertEquals(code, c.expect.exit, `exit status, output:\n${out}`);
      if (args.some((a) => a.startsWith("--http-addr")) && c.needs?.length) {
        assertMatch(out, /msg="http listening"/, "the HTTP server was up before the error");
      }
      const errors = out.split("\n").filter((l) => ERROR_LINE.test(l));
      assertEquals(errors.length, 1, `one error line expected in:\n${out}`);
      assertMatch(messageOf(errors[0]), c.line, `the error line, output:\n${out}`);
    } else {
      await waitFor(
        "the expected line",
        () => {
          if (p.done) throw new Error("sync exited");
          return c.line.test(p.output());
        },
        45_000,
        p.output,
      );
      await c.then?.(s, id, p.output);
      assert(!p.done, `sync should keep running:\n${p.output()}`);
      const errors = p.output().split("\n").filter((l) => ERROR_LINE.test(l));
      assertEquals(errors, [], "no error lines");
    }
  } finally {
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
    await p.exited;
    clearTimeout(t);
    await c.after?.(s);
  }
  const out = p.output();
  assert(!STACK.test(out), `stack trace or source location in:\n${out}`);
  assertNoSecret(c.input, out);
}

test(
  "bad input: each case says one clear thing (or keeps going as designed)",
  opts,
  async (t) => {
    // Boot every server the cases need at once.
    const only = Deno.env.get("BAD_INPUT_CASES");
    for (const c of CASES) {
      if (only && !new RegExp(only).test(c.input)) continue;
      for (const n of c.needs ?? []) server(n);
    }
    try {
      // BAD_INPUT_CASES=<regex> runs only the cases whose input matches (while working on them).
      let i = 0;
      for (const c of CASES) {
        const id = String(++i);
        if (only && !new RegExp(only).test(c.input)) continue;
        await t.step(`${id}. ${c.input}`, async () => {
          const s = {} as Record<Name, unknown>;
          for (const n of c.needs ?? []) s[n] = await server(n);
          await runCase(c, s as unknown as Servers, id);
        });
      }
    } finally {
      await closeAll();
    }
  },
);

// ---------------------------------------------------------------------------------------
// docs/bad-input.md, generated from CASES.

function cell(s: string): string {
  return s.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function code(s: string): string {
  return s.includes("`") ? "`` " + s + " ``" : "`" + s + "`";
}

export function renderDocs(): string {
  const lines = [
    "# Bad input",
    "",
    "What sync does with bad input, one row per case of `tests/bad_input.test.ts`, which runs",
    "each against real servers and generates this page (do not edit it by hand; run",
    "`UPDATE_DOCS=1 deno test --allow-all tests/bad_input.test.ts`).",
    "",
    "A case that cannot work prints one line and exits: lines starting `sync:` come before",
    "anything starts (flags, config file, URL syntax); the others are the `level=error` log line",
    "of the failed start. Where the design says to keep going (a server that is down, a row",
    "etcd cannot hold with `--oversize skip`, a table without a key), sync logs the line and",
    "keeps running. Passwords never appear, plain or URL-encoded. Ports, sizes and times in the",
    "examples vary.",
    "",
    "Bad input met by an online snapshot (a table whose key columns change, or that is dropped",
    "or renamed away, in the middle of its snapshot; a chunk row etcd cannot hold) takes several",
    "steps to set up: `tests/snapshot_bad_input.test.ts` runs those cases, and",
    '`docs/snapshots.md` ("Bad input during a snapshot") says what sync does.',
    "",
    "Passwords on the command line (`--db-url postgres://u:pw@...`, `--etcd-password`) are",
    "visible to every user of the host (`ps`, `/proc/<pid>/cmdline`); give them as",
    "`SYNC_DB_URL` / `SYNC_ETCD_PASSWORD` or in a `--config` file readable only by sync's user.",
    "`tests/secrets.test.ts` checks that sync itself never shows them: not in logs, errors,",
    "`sync status`, `sync check`, the HTTP endpoints, or the process title.",
    "",
    "| input | what sync says (example line) | exit/outcome |",
    "| --- | --- | --- |",
  ];
  for (const c of CASES) {
    lines.push(`| ${cell(c.input)} | ${cell(code(c.says))} | ${cell(c.outcome)} |`);
  }
  return lines.join("\n") + "\n";
}

test("bad input: every example line matches its case's pattern", () => {
  assert(CASES.length >= 30, `${CASES.length} cases`);
  for (const c of CASES) {
    assertMatch(c.says, c.line, `example of "${c.input}"`);
    assertNoSecret(c.input, c.says);
  }
});

test("bad input: docs/bad-input.md is generated from the cases", async () => {
  const want = await fmtMarkdown(renderDocs());
  if (Deno.env.get("UPDATE_DOCS") === "1") await Deno.writeTextFile(DOCS, want);
  const have = await Deno.readTextFile(DOCS).catch(() => "");
  const stale = "is out of date: run UPDATE_DOCS=1 deno test --allow-all tests/bad_input.test.ts";
  assert(have === want, `docs/bad-input.md ${stale}`);
});
