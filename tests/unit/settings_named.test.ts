/**
 * Low layers name settings by id (`setting("dbUrl")`); what the user reads (the CLI's error
 * line, log lines, `sync check`, the status page) names them as flags (issue 13).
 */
import { assert, assertEquals, assertThrows } from "../../testing/assert.ts";
import { nameSettings, setting, SETTING_IDS } from "../../src/core/errors.ts";
import { nameAsGiven, settingFlag, settingName } from "../../src/config/typed.ts";
import { OPTIONS, type Origin, resolveSettings } from "../../src/config/options.ts";
import { formatJson, formatText } from "../../src/cli/logging.ts";
import { parsePgUrl } from "../../src/pg/url.ts";
import { KeyConfig } from "../../src/core/key_config.ts";
import type { LogRecord } from "@logtape/logtape";

const flag = (text: string) => nameSettings(text, settingFlag);

Deno.test("settings named by id render as their flags, values included", () => {
  assertEquals(flag(`fix ${setting("dbUrl")}`), "fix --db-url");
  assertEquals(flag(`run with ${setting("oversize", "skip")}`), "run with --oversize skip");
  assertEquals(flag(`off (${setting("slotFailover", false)})`), "off (--slot-failover=false)");
  assertEquals(flag(`${setting("serverId", 7)} clashes`), "--server-id 7 clashes");
  // Anything that only looks like a mark stays as it is.
  assertEquals(flag('{setting:nope} {"a":1}'), '{setting:nope} {"a":1}');
  const names = new Set(OPTIONS.map((o) => `--${o.name}`));
  for (const id of SETTING_IDS) assert(names.has(settingFlag(id)), `${id}: ${settingFlag(id)}`);
});

Deno.test("a low layer's error reads with the flag once the CLI names it", () => {
  const e = assertThrows(() => parsePgUrl("mysql://h/db"));
  assertEquals(flag((e as Error).message), "--db-url is not a postgres:// URL");
  const k = assertThrows(() => new KeyConfig(["a.b=c", "a.b=d"]));
  assertEquals(flag((k as Error).message), "--keys names a.b twice");
});

Deno.test("log lines name settings as flags, in text and JSON", () => {
  const record = (message: string, properties: Record<string, unknown>): LogRecord => ({
    category: ["sync"],
    level: "warning",
    message: [message],
    rawMessage: message,
    timestamp: 0,
    properties,
  });
  const reason = `bad (fix ${setting("dbUrl")} or ${setting("oversize", "skip")})`;
  const text = formatText(record("retrying", { reason, err: new Error(reason) }));
  assertEquals(
    text.trimEnd().split(" msg=")[1],
    'retrying reason="bad (fix --db-url or --oversize skip)" ' +
      'err="bad (fix --db-url or --oversize skip)"',
  );
  const json = JSON.parse(formatJson(record(reason, { reason })));
  assertEquals(json.msg, "bad (fix --db-url or --oversize skip)");
  assertEquals(json.reason, json.msg);
});

Deno.test("a setting given as a variable or in the config file is named so", () => {
  const origins = new Map<string, Origin>();
  resolveSettings(
    { "etcd-username": "u" },
    { SYNC_ETCD_PASSWORD: "pw", SYNC_OVERSIZE: "fail" },
    { "db-url": "postgres://h/db" },
    origins,
  );
  const text = `check ${setting("etcdUsername")} and ${setting("etcdPassword")}; fix ` +
    `${setting("dbUrl")}; run with ${setting("oversize", "skip")}; ${setting("slot")}`;
  try {
    nameAsGiven(origins, "/etc/sync.yaml");
    assertEquals(
      nameSettings(text, settingName),
      "check --etcd-username and SYNC_ETCD_PASSWORD; fix db-url in /etc/sync.yaml; run with " +
        "SYNC_OVERSIZE=skip; --slot",
    );
    assertEquals(settingName("serverId", "7"), "--server-id 7");
    nameAsGiven(new Map([["server-id", "file"]]), "s.yaml");
    assertEquals(settingName("serverId", "7"), "server-id: 7 in s.yaml");
  } finally {
    nameAsGiven(new Map());
  }
  assertEquals(nameSettings(text, settingName), flag(text));
});
