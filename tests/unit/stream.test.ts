/**
 * The change path both drivers share (no servers): chunks of a large transaction, the
 * position only on the last, resync marks, idle heartbeats, key changes, dump batches.
 */
import { assert, assertEquals, assertRejects } from "../../testing/assert.ts";
import { ChangeStream, DumpBatches, KeylessWarning } from "../../src/core/stream.ts";
import type { ChangeBatch } from "../../src/core/change.ts";
import { ResyncNeeded } from "../../src/core/source.ts";
import type { Log } from "../../src/core/log.ts";

function collect() {
  const batches: ChangeBatch[] = [];
  return { batches, out: (b: ChangeBatch) => (batches.push(b), Promise.resolve()) };
}

Deno.test("stream: a large transaction goes in chunks, the position with the last", async () => {
  const { batches, out } = collect();
  const cs = new ChangeStream(out, 3);
  cs.begin();
  for (let i = 0; i < 7; i++) {
    cs.put("t", String(i), ["id"], [String(i)]);
    await cs.settle();
  }
  assertEquals(batches.map((b) => b.changes.length), [3, 3]);
  assert(batches.every((b) => !b.commit), "no position before the end");
  await cs.commit({ lsn: "0/10" }, new Date(0));
  assertEquals(batches.length, 3);
  assertEquals(batches[2].changes.length, 1);
  assertEquals(batches[2].commit?.position, { lsn: "0/10" });
  assert(!cs.open);
});

Deno.test("stream: a resync is saved with its mark, then the stream stops", async () => {
  const { batches, out } = collect();
  const cs = new ChangeStream(out);
  cs.truncate("old");
  await assertRejects(() => cs.commit({ lsn: "0/20" }, undefined, "t"), ResyncNeeded);
  assertEquals(batches[0].commit?.position, { lsn: "0/20", resync: "t" });
  assertEquals(batches[0].changes, [{ op: "truncate", table: "old" }]);
});

Deno.test("stream: heartbeats move an idle position only", async () => {
  const { batches, out } = collect();
  const cs = new ChangeStream(out);
  cs.begin();
  assertEquals(await cs.heartbeat({ lsn: "0/30" }), false);
  await cs.commit({ lsn: "0/31" });
  assertEquals(await cs.heartbeat({ lsn: "0/40" }), true);
  assertEquals(batches.map((b) => b.commit?.position.lsn), ["0/31", "0/40"]);
  assertEquals(batches[1].commit?.time, undefined, "a heartbeat is no transaction");
});

Deno.test("stream: a key change is the new row, then the old key's delete", async () => {
  const { batches, out } = collect();
  const cs = new ChangeStream(out);
  cs.move("t", "1", "2", ["id"], ["2"]);
  cs.delete("t", "3");
  await cs.commit({ lsn: "0/1" });
  assertEquals(batches[0].changes, [
    { op: "put", table: "t", key: "2", columns: ["id"], cells: ["2"], fillFrom: "1" },
    { op: "delete", table: "t", key: "1" },
    { op: "delete", table: "t", key: "3" },
  ]);
});

Deno.test("dump batches: full batches go out at once, the rest on flush", async () => {
  const { batches, out } = collect();
  const ctl = new AbortController();
  const d = new DumpBatches(out, ctl.signal, 2);
  assertEquals(d.put("t", "1", ["id"], ["1"]), undefined);
  await d.put("t", "2", ["id"], ["2"]);
  d.put("t", "3", ["id"], ["3"]);
  await d.flush();
  await d.flush();
  assertEquals(batches.map((b) => b.changes.map((c) => "key" in c && c.key)), [["1", "2"], ["3"]]);
  ctl.abort();
  d.put("t", "4", ["id"], ["4"]);
  let threw = false;
  try {
    d.put("t", "5", ["id"], ["5"]);
  } catch {
    threw = true;
  }
  assert(threw, "an aborted dump stops at its next batch");
});

Deno.test("keyless warning: each table once", () => {
  const lines: string[] = [];
  const log = { warn: (_m: string, f?: Record<string, unknown>) => lines.push(String(f?.tables)) };
  const w = new KeylessWarning(log as unknown as Log);
  w.warn(["a", "b"]);
  w.warn(["b", "c"]);
  w.warn(["a"]);
  assertEquals(lines, ["a,b", "c"]);
});
