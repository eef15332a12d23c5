/** Settings: flag > env > file > default, and clear errors for bad values. */
import { assertEquals, assertMatch, assertRejects } from "./harness/assert.ts";
import { parseConfigFile, resolveSettings, UsageError } from "../src/config/options.ts";

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
    UsageError,
  );
  assertEquals(
    e1.message,
    'invalid value "two" for --dump-parallel: expected a whole number',
  );
  const e2 = await assertRejects(
    () => Promise.resolve().then(() => parseConfigFile("db_url: x\n", "c.yaml")),
    UsageError,
  );
  assertMatch(e2.message, /unknown key "db_url"/);
  const e3 = await assertRejects(
    () => Promise.resolve().then(() => resolveSettings({}, { SYNC_DRIVER: "oracle" }, {})),
    UsageError,
  );
  assertMatch(e3.message, /expected one of pgx, mysql/);
  const e4 = await assertRejects(
    () => Promise.resolve().then(() => parseConfigFile("db-url: [1]\n", "c.yaml")),
    UsageError,
  );
  assertEquals(e4.message.includes("[1]"), false);
});
