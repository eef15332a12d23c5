/** The check a PostgreSQL snapshot read makes before trusting its snapshot (no servers). */
import { assert, assertEquals } from "../../testing/assert.ts";
import { missesCommitted, RecentXids } from "../../src/pg/visibility.ts";

Deno.test("a snapshot that still runs a transaction the stream saw commit is refused", () => {
  const recent = new RecentXids(4);
  recent.add(1000);
  // Epoch 1: the snapshot's 64-bit IDs carry it in the high half.
  assert(missesCommitted(`${2n ** 32n + 990n}:${2n ** 32n + 1010n}:${2n ** 32n + 1000n}`, recent));
  assert(!missesCommitted("990:1010:995,1001", recent));
  assert(!missesCommitted("1001:1001:", recent));
});

Deno.test("only the most recent transaction IDs are kept", () => {
  const recent = new RecentXids(3);
  for (const x of [1, 2, 3, 4]) recent.add(x);
  assertEquals([1, 2, 3, 4].map((x) => recent.has(x)), [false, true, true, true]);
});
