/** The command line: help, version, and one clear line with exit 2 for bad input. */
import { test } from "./harness/deadline.ts";
import { assert, assertEquals, assertMatch } from "./harness/assert.ts";
import { runSync } from "./harness/sync.ts";

const oneLine = (s: string) => s.trim().split("\n").length === 1;

test("--help and --version", async () => {
  const h = await runSync(["--help"]);
  assertEquals(h.code, 0);
  assertMatch(h.stdout, /check/);
  const rh = await runSync(["run", "--help"]);
  assertEquals(rh.code, 0);
  for (const f of ["--driver", "--db-url", "--etcd-endpoints", "--etcd-max-txn-ops", "--ha"]) {
    assert(rh.stdout.includes(f), `help lists ${f}`);
  }
  // Defaults as they are written (a number alone is seconds, so `10000` would mislead).
  const help = rh.stdout.replace(/\s+/g, " ");
  const durations = [
    ["--etcd-timeout", "30s"],
    ["--status-interval", "10s"],
    ["--ha-ttl", "10s"],
    ["--ready-max-lag", "30s"],
    ["--shutdown-timeout", "10s"],
  ];
  for (const [flag, def] of durations) {
    // Up to the next flag: the description, then the default.
    assertMatch(
      help,
      new RegExp(`${flag} <value> (?:(?! --[a-z-]+ <value>).)*\\(default: ${def}\\)`),
    );
  }
  assertMatch(
    help,
    /--etcd-max-txn-bytes <value> (?:(?! --[a-z-]+ <value>).)*\(default: 1504KiB\)/,
  );
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
