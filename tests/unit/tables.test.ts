/**
 * The table definitions the state records (no servers): what counts as a change, and how
 * the state's keys carry them (written only when they changed).
 */
import { assert, assertEquals, assertMatch } from "../../testing/assert.ts";
import { definitionDrift, type TableDefinitions } from "../../src/core/tables.ts";
import { StateKeys } from "../../src/etcd/state.ts";
import type { SavedState } from "../../src/core/source.ts";

const base: TableDefinitions = {
  t: { id: "16384", columns: ["id:23:-1", "v:25:-1"], key: ["id"], identity: "d" },
  u: { id: "16390", columns: ["id:23:-1"], key: ["id"], identity: "d" },
};
const none = () => Promise.resolve(false);
const all = () => Promise.resolve(true);

Deno.test("definitions: the same tables stream on", async () => {
  assertEquals(await definitionDrift(base, structuredClone(base), all), undefined);
});

Deno.test("definitions: each kind of change is named", async () => {
  const cases: [string, TableDefinitions, RegExp][] = [
    [
      "column added",
      { ...base, t: { ...base.t, columns: [...base.t.columns, "c:23:-1"] } },
      /changed: t/,
    ],
    ["type changed", { ...base, t: { ...base.t, columns: ["id:20:-1", "v:25:-1"] } }, /changed: t/],
    ["key changed", { ...base, t: { ...base.t, key: ["v"] } }, /changed: t/],
    ["identity changed", { ...base, t: { ...base.t, identity: "f" } }, /changed: t/],
    ["recreated (new id)", { ...base, t: { ...base.t, id: "20000" } }, /changed: t/],
    ["renamed", { t: base.t, u2: base.u }, /gone or renamed: u;.*new with rows: u2/],
    ["dropped", { t: base.t }, /gone or renamed: u\)/],
  ];
  for (const [what, current, want] of cases) {
    const drift = await definitionDrift(base, current, all);
    assert(drift, what);
    assertMatch(drift!, want);
  }
});

Deno.test("definitions: a new table needs a snapshot only when it holds rows", async () => {
  const current = { ...base, n: { id: "1", columns: ["id:23:-1"], key: ["id"] } };
  assertEquals(await definitionDrift(base, current, none), undefined);
  assertMatch((await definitionDrift(base, current, all))!, /new with rows: n\)/);
});

Deno.test("state keys: definitions ride along only when they changed", () => {
  const keys = new StateKeys("/p-state/src");
  const state = (tables?: TableDefinitions): SavedState => ({
    driver: "pgx",
    source: {},
    position: { lsn: "0/1" },
    dumpRevision: 1,
    updatedAt: "now",
    tables,
  });
  const first = state(base);
  const put = (s: SavedState) => keys.ops(s).ops.map((o) => "put" in o ? o.put.key : "?");
  assertEquals(put(first), ["/p-state/src", "/p-state/src/tables"]);
  keys.committed(first);
  assertEquals(put(state(base)), ["/p-state/src"], "same object: not written again");
  const changed = { ...base, n: base.u };
  assertEquals(put(state(changed)), ["/p-state/src", "/p-state/src/tables"]);
  const value = keys.ops(state(changed)).ops[0];
  assert("put" in value && !String(value.put.value).includes("columns"), "state key stays small");
  keys.forget();
  assertEquals(put(state(base)), ["/p-state/src", "/p-state/src/tables"], "after a dump starts");
});
