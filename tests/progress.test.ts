/** Dump progress rows: done/estimate, percent, rate and ETA from two samples. */
import { assertEquals } from "./harness/assert.ts";
import { progressRows } from "../src/cli/progress.ts";
import { Status } from "../src/service/status.ts";

Deno.test("progress rows", () => {
  const s = new Status();
  const prev = new Map();
  s.dumped("orders", 100);
  s.rowsEstimated.set("orders", 1000);
  s.dumped("users", 5);
  assertEquals(progressRows(s, prev, 10_000), [
    ["orders", "100/1000", "10%", "0/s", "–"],
    ["users", "5", "", "0/s", "–"],
  ]);
  s.dumped("orders", 200);
  // 200 rows in 2 s = 100/s; 700 left = 7 s.
  assertEquals(progressRows(s, prev, 12_000)[0], ["orders", "300/1000", "30%", "100/s", "7s"]);
});
