/** The command line: help, version, and one clear line with exit 2 for bad input. */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { runSync } from "../testing/sync.ts";
import { OPTIONS } from "../src/config/options.ts";

const oneLine = (s: string) => s.trim().split("\n").length === 1;

/** A help text's flag entries by heading: `{ "Source": { "--driver": "--driver <pgx|mysql> source driver" } }`. */
function helpSections(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let entries: Map<string, string> | undefined;
  let last = "";
  for (const line of text.split("\n")) {
    const head = /^(\S.*):$/.exec(line);
    const flag = /^ {2}(?:-\w, )?(--[a-z-]+)/.exec(line);
    if (head) {
      entries = new Map();
      sections.set(head[1], entries);
    } else if (flag && entries) entries.set(last = flag[1], line.trim());
    else if (/^ {4,}\S/.test(line) && entries?.has(last)) {
      entries.set(last, `${entries.get(last)} ${line.trim()}`);
    } else if (!line.trim()) entries = undefined;
  }
  return sections;
}

/** What both `sync --help` and `sync run --help` show of the run flags. */
function assertRunFlags(text: string, what: string) {
  const s = helpSections(text);
  const groups = ["Source", "Tables", "etcd", "High availability", "HTTP", "Logging"];
  const shown = [...s.keys()].filter((h) => groups.includes(h));
  assertEquals(shown, groups, `${what}: the run flags' headings, in order`);
  const where = new Map<string, [string, string]>();
  for (const [h, entries] of s) for (const [f, e] of entries) where.set(f, [h, e]);
  const expect: [string, string, RegExp][] = [
    ["--driver", "Source", /^--driver <pgx\|mysql> /],
    ["--db-url", "Source", /SYNC_DB_URL/],
    ["--slot", "Source", /default: sync\)/],
    ["--server-id", "Source", /1 to 4294967295; default: 4201\)/],
    ["--tables", "Tables", /^--tables /],
    ["--exclude", "Tables", /^--exclude /],
    ["--keys", "Tables", /^--keys /],
    ["--etcd-endpoints", "etcd", /default: http:\/\/127\.0\.0\.1:2379\)/],
    ["--etcd-transport", "etcd", /^--etcd-transport <grpc\|gateway> /],
    ["--etcd-max-txn-bytes", "etcd", /default: 1504KiB\)/],
    ["--oversize", "etcd", /^--oversize <fail\|skip> .*default: fail\)/],
    ["--ha", "High availability", /^--ha run/],
    ["--ha-id", "High availability", /^--ha-id /],
    ["--http-addr", "HTTP", /^--http-addr /],
    ["--log-level", "Logging", /debug, info, warn or error.*default: info\)/],
    ["--log-format", "Logging", /^--log-format <text\|json> .*default: text\)/],
    // Durations as they are written, with their range (a number alone is seconds, so a
    // default shown as `10000` would mislead).
    ["--etcd-timeout", "etcd", /^--etcd-timeout <duration> .*\(100ms to 10m; default: 30s\)$/],
    ["--status-interval", "Source", /<duration> .*\(100ms to 1h; default: 10s\)$/],
    ["--ha-ttl", "High availability", /<duration> .*\(2s to 1h; default: 10s\)$/],
    ["--ready-max-lag", "HTTP", /<duration> .*\(100ms to 1h; default: 30s\)$/],
    ["--shutdown-timeout", "Other", /<duration> .*\(up to 1h; default: 10s\)$/],
    ["--config", "Other", /^--config <file> /],
  ];
  for (const [flag, group, entry] of expect) {
    const [h, e] = where.get(flag) ?? ["(missing)", ""];
    assertEquals(h, group, `${what}: ${flag} is under ${group}`);
    assertMatch(e.replace(/\s+/g, " "), entry, `${what}: ${flag}`);
  }
  // Every setting is listed once, and no value is a bare number of milliseconds.
  for (const o of OPTIONS) assert(where.has(`--${o.name}`), `${what} lists --${o.name}`);
  const flags = [...s.values()].flatMap((entries) => [...entries.keys()]);
  for (const o of OPTIONS) {
    assertEquals(flags.filter((f) => f === `--${o.name}`).length, 1, `${what}: --${o.name} once`);
  }
  const all = [...where.values()].map(([, e]) => e).join("\n");
  // Whole numbers that are counts, not milliseconds: --server-id, the etcd port, and
  // --snapshot-chunk-rows's range and default.
  const counts = /4294967295|4201|2379|1 to 100000; default: 1000\b/g;
  assert(!/\b\d{4,}\b(?! ?KiB)/.test(all.replace(counts, "")), all);
}

test("--help and --version", async () => {
  const h = await runSync(["--help"]);
  assertEquals(h.code, 0);
  for (const c of ["run", "check", "status", "drop"]) {
    assertMatch(h.stdout, new RegExp(`^ {2}${c} \\[options\\]`, "m"), `sync --help lists ${c}`);
  }
  assertRunFlags(h.stdout, "sync --help");
  const rh = await runSync(["run", "--help"]);
  assertEquals(rh.code, 0);
  assertRunFlags(rh.stdout, "sync run --help");
  const dh = await runSync(["drop", "--help"]);
  assertEquals(dh.code, 0);
  assertRunFlags(dh.stdout, "sync drop --help");
  assertMatch(dh.stdout, /^Drop:\n {2}--yes .*\n {2}--purge-data /m);
  const v = await runSync(["--version"]);
  assertEquals(v.code, 0);
  assertMatch(v.stdout.trim(), /^\d+\.\d+\.\d+$/);
});

test("bad input: one line, exit status 2, no password", async () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["--bogus"], {}, /unknown option '--bogus'/],
    [["--driver=pgx"], {}, /missing --db-url/],
    [["--driver=oracle", "--db-url=postgres://x/y"], {}, /expected one of pgx, mysql/],
    [["--driver=pgx", "--db-url=http://u:secretpw@x/y"], {}, /--db-url must start with/],
    [["--driver=pgx", "--db-url=postgres://u:secretpw@x/y", "--dump-parallel=x"], {}, /whole/],
    [
      ["--driver=pgx"],
      { SYNC_DB_URL: "postgres://u:secretpw@h/d", SYNC_ETCD_TIMEOUT: "soon" },
      /SYNC_ETCD_TIMEOUT/,
    ],
    [["--config=/nonexistent/sync.yaml"], {}, /cannot read config file/],
    [
      [
        "--driver=pgx",
        "--db-url=postgres://u:secretpw@h/d",
        "--etcd-prefix=/a",
        "--etcd-state-prefix=/a/s",
      ],
      {},
      /outside --etcd-prefix/,
    ],
    [
      ["--driver=pgx", "--db-url=postgres://u:secretpw@h/d", "--etcd-state-prefix=/"],
      {},
      /--etcd-state-prefix must not be empty/,
    ],
  ];
  for (const [args, env, want] of cases) {
    const r = await runSync(args, env);
    assertEquals(r.code, 2, `${args.join(" ")}: exit ${r.code}\n${r.stderr}`);
    assert(oneLine(r.stderr), `one line for ${args.join(" ")}:\n${r.stderr}`);
    assertMatch(r.stderr, want);
    assert(!r.stderr.includes("secretpw"), "password leaked");
  }
});

test("config file: unknown keys are rejected, known keys used", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/bad.yaml`, "driver: pgx\nslots: x\n");
    const r = await runSync([`--config=${dir}/bad.yaml`]);
    assertEquals(r.code, 2);
    assertMatch(r.stderr, /unknown key "slots"/);
    await Deno.writeTextFile(`${dir}/ok.yaml`, "driver: pgx\n");
    const r2 = await runSync([`--config=${dir}/ok.yaml`]);
    assertEquals(r2.code, 2);
    assertMatch(r2.stderr, /missing --db-url/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
