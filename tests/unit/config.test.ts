/** Settings: flag > env > file > default, and clear errors for bad values. */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertThrows,
} from "../../testing/assert.ts";
import {
  argText,
  defaultText,
  formatValue,
  GROUPS,
  OPTIONS,
  parseConfigFile,
  parseValue,
  resolveSettings,
  UsageError,
} from "../../src/config/options.ts";

/** `fn` must throw a UsageError whose message holds `text`. */
function refuses(fn: () => unknown, text: string) {
  const e = assertThrows(fn);
  assert(e instanceof UsageError, `a UsageError, got ${e}`);
  assert(e.message.includes(text), `"${e.message}" holds "${text}"`);
}

Deno.test("flag beats env beats file beats default", () => {
  const file = parseConfigFile("etcd-prefix: /file\nslot: fileslot\ndump-parallel: 3\n", "c.yaml");
  const s = resolveSettings(
    { "etcd-prefix": "/flag" },
    { SYNC_ETCD_PREFIX: "/env", SYNC_SLOT: "envslot" },
    file,
  );
  assertEquals(s["etcd-prefix"], "/flag");
  assertEquals(s["slot"], "envslot");
  assertEquals(s["dump-parallel"], 3);
  assertEquals(s["publication"], "sync");
  assertEquals(s["etcd-endpoints"], ["http://127.0.0.1:2379"]);
});

Deno.test("values are parsed by kind", () => {
  const s = resolveSettings(
    {
      "status-interval": "500ms",
      "etcd-max-txn-bytes": "1MiB",
      "etcd-endpoints": "http://a:1, http://b:2",
    },
    {},
    {},
  );
  assertEquals(s["status-interval"], 500);
  assertEquals(s["etcd-max-txn-bytes"], 1048576);
  assertEquals(s["etcd-endpoints"], ["http://a:1", "http://b:2"]);
});

Deno.test("bad values and unknown keys are one clear line, secrets never echoed", async () => {
  const e1 = await assertRejects(
    () => Promise.resolve().then(() => resolveSettings({ "dump-parallel": "two" }, {}, {})),
  );
  assertEquals(
    e1.message,
    'invalid value "two" for --dump-parallel: expected a whole number from 1 to 64',
  );
  const e2 = await assertRejects(
    () => Promise.resolve().then(() => parseConfigFile("db_url: x\n", "c.yaml")),
  );
  assertMatch(e2.message, /unknown key "db_url"/);
  const e3 = await assertRejects(
    () => Promise.resolve().then(() => resolveSettings({}, { SYNC_DRIVER: "oracle" }, {})),
  );
  assertMatch(e3.message, /expected one of pgx, mysql/);
  const e4 = await assertRejects(
    () => Promise.resolve().then(() => parseConfigFile("db-url: [1]\n", "c.yaml")),
  );
  assertEquals(e4.message.includes("[1]"), false);
});

Deno.test("durations take units; a number alone is seconds and must be in range", () => {
  const s = resolveSettings(
    {
      "ha-ttl": "10s",
      "etcd-timeout": "500ms",
      "ready-max-lag": "2m",
      "status-interval": "10",
    },
    {},
    parseConfigFile("shutdown-timeout: 5\n", "c.yaml"),
  );
  assertEquals(s["ha-ttl"], 10_000);
  assertEquals(s["etcd-timeout"], 500);
  assertEquals(s["ready-max-lag"], 120_000);
  assertEquals(s["status-interval"], 10_000);
  assertEquals(s["shutdown-timeout"], 5_000);
  // The old --help showed `(default: 10000)`: copying it must not give a 2.8-hour lease.
  refuses(
    () => resolveSettings({ "ha-ttl": "10000" }, {}, {}),
    'invalid value "10000" for --ha-ttl: expected a duration from 2s to 1h (a number without ' +
      "a unit is seconds)",
  );
  refuses(() => parseConfigFile("etcd-timeout: 30000\n", "c.yaml"), "10m");
  refuses(() => resolveSettings({ "ha-ttl": "1s" }, {}, {}), "from 2s to 1h");
  refuses(() => resolveSettings({}, { SYNC_READY_MAX_LAG: "2h" }, {}), "1h");
});

Deno.test("defaults are shown as they are written", () => {
  const spec = (n: string) => OPTIONS.find((o) => o.name === n)!;
  assertEquals(formatValue(spec("ha-ttl"), spec("ha-ttl").default!), "10s");
  assertEquals(formatValue(spec("etcd-timeout"), spec("etcd-timeout").default!), "30s");
  assertEquals(formatValue(spec("etcd-max-txn-bytes"), 1536 * 1024 - 32 * 1024), "1504KiB");
  assertEquals(formatValue(spec("ha-ttl"), 500), "500ms");
  assertEquals(formatValue(spec("ha-ttl"), 120_000), "2m");
  // Every default parses back to itself from what --help shows.
  for (const o of OPTIONS) {
    if (o.default === undefined || (Array.isArray(o.default) && !o.default.length)) continue;
    assertEquals(parseValue(o, formatValue(o, o.default), `--${o.name}`), o.default, o.name);
  }
});

Deno.test("numbers out of their range and names PostgreSQL refuses are rejected", () => {
  assertEquals(resolveSettings({ "server-id": "4294967295" }, {}, {})["server-id"], 4294967295);
  for (const bad of ["0", "4294967296", "4294967297", "-1", "1e3"]) {
    refuses(
      () => resolveSettings({ "server-id": bad }, {}, {}),
      `invalid value "${bad}" for --server-id: expected a whole number from 1 to 4294967295`,
    );
  }
  refuses(() => resolveSettings({ "dump-parallel": "0" }, {}, {}), "1 to 64");
  refuses(() => resolveSettings({ "etcd-max-txn-ops": "1" }, {}, {}), "2");
  refuses(() => resolveSettings({ slot: "My-Slot" }, {}, {}), "lower-case");
  refuses(() => resolveSettings({ slot: "x".repeat(64) }, {}, {}), "63");
  assertEquals(resolveSettings({ slot: "sync_2" }, {}, {})["slot"], "sync_2");
  refuses(() => resolveSettings({ publication: "" }, {}, {}), "1 to 63");
  refuses(() => resolveSettings({ "ha-id": "" }, {}, {}), "expected a name");
  refuses(() => resolveSettings({ "source-id": "" }, {}, {}), "expected a name");
});

Deno.test("a config key with no value is an error naming the key", () => {
  for (const text of ["etcd-prefix:\n", "etcd-prefix: ~\n", "etcd-prefix: null\n"]) {
    refuses(
      () => parseConfigFile(`driver: pgx\n${text}`, "c.yaml"),
      "c.yaml: etcd-prefix has no value (give one or remove the key)",
    );
  }
  // An empty string is a value: the option's own check decides.
  assertEquals(parseConfigFile('etcd-prefix: ""\n', "c.yaml")["etcd-prefix"], "");
});

Deno.test("every setting sits under a --help heading and shows its choices or kind", () => {
  const spec = (n: string) => OPTIONS.find((o) => o.name === n)!;
  for (const o of OPTIONS) assert(o.group in GROUPS, `${o.name}: group ${o.group}`);
  for (const g of Object.keys(GROUPS)) assert(OPTIONS.some((o) => o.group === g), `${g} empty`);
  assertEquals(argText(spec("driver")), "<pgx|mysql>");
  assertEquals(argText(spec("log-format")), "<text|json>");
  assertEquals(argText(spec("oversize")), "<fail|skip>");
  assertEquals(argText(spec("etcd-timeout")), "<duration>");
  assertEquals(argText(spec("etcd-max-txn-bytes")), "<size>");
  assertEquals(argText(spec("ha")), "");
  assertEquals(defaultText(spec("ha")), undefined);
  assertEquals(defaultText(spec("exclude")), undefined);
  assertEquals(defaultText(spec("etcd-state-prefix")), "<etcd-prefix>-state");
  assertEquals(defaultText(spec("etcd-timeout")), "30s");
});
