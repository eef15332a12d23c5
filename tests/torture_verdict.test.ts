/**
 * The torture's verdict counts only what happened (issue 18): a run that changed too few
 * rows fails however equal etcd ends up, and the summary line carries the rate it judged.
 */
import { assert, assertMatch } from "../testing/assert.ts";
import { step, test } from "../testing/deadline.ts";
import { torture } from "../scripts/torture_lib/run.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, deadlineMs: 5 * 60_000 };

test("torture: a run with fewer changes per minute than required fails", opts, async () => {
  const lines: string[] = [];
  const r = await torture({
    driver: "mysql",
    seed: 7,
    durationMs: 10_000,
    faults: [],
    catchupMs: 60_000,
    // Far above what any machine does: etcd converges, the rate alone fails the run.
    minChangesPerMin: 100_000_000,
    log: (l) => {
      lines.push(l);
      step(l);
    },
  });
  const why = `${r.line}\n${lines.join("\n")}`;
  assert(r.changes > 0, why);
  assertMatch(lines.join("\n"), /etcd equals the database/, why);
  assertMatch(
    r.line,
    / changes\/min=\d+ .* result=FAIL too few changes: \d+\/min, at least 100000000$/,
    why,
  );
  assert(!r.pass, why);
});
