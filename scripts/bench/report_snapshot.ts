/** BENCHMARKS.md's section on online snapshots (issue 14). */
import type { Results } from "./report.ts";
import { int, table } from "./lib.ts";
import { cores, missing, ms, verdict } from "./report.ts";

export function snapshotSection(r: Results): string[] {
  const out = ["## 8. Online snapshot while another table streams", ""];
  const s = r.snapshot;
  if (!s) return [...out, ...missing(r, "snapshot"), ...chunkSweep(r)];
  out.push(
    `An \`ALTER TABLE ... ADD COLUMN ... DEFAULT\` of a ${int(s.rows)}-row table (every row ` +
      "changes, none is streamed) makes sync read it again in chunks while another table " +
      "takes one single-row INSERT per millisecond; that stream's latency is timed from the " +
      "INSERT being sent to its key's PUT on an etcd watch, first with no snapshot running, " +
      "then during the snapshot.",
    "",
    ...table(["", "value"], [
      ["snapshot rows", int(s.rows)],
      ["snapshot time", `${s.seconds.toFixed(1)} s`],
      ["snapshot rate", `${int(s.rowsPerSec)} rows/s`],
      ["sync CPU during the snapshot", cores(s.syncCpu)],
    ]),
    "",
    ...table(["other table's stream", "p50 ms", "p99 ms", "max ms", "tx/s"], [
      ["no snapshot", ms(s.quiet.p50), ms(s.quiet.p99), ms(s.quiet.max), int(s.quiet.txPerSec)],
      [
        "during the snapshot",
        ms(s.during.p50),
        ms(s.during.p99),
        ms(s.during.max),
        int(s.during.txPerSec),
      ],
    ]),
    "",
    `Target: the stream's p99 stays at or under 1 s during the snapshot: ${
      verdict(s.during.p99 <= 1000, `${ms(s.during.p99)} ms`)
    }.`,
    "",
    ...chunkSweep(r),
  );
  return out;
}

/** The same snapshot at several `--snapshot-chunk-rows`: what the default rests on. */
function chunkSweep(r: Results): string[] {
  const runs = r.chunkSweep;
  if (!runs?.length) return r.errors.chunks ? [`Chunk sizes: ${r.errors.chunks}.`, ""] : [];
  const best = runs.reduce((a, b) => (b.rowsPerSec > a.rowsPerSec ? b : a));
  return [
    `The same snapshot of ${int(runs[0].rows)} rows at each \`--snapshot-chunk-rows\` ` +
    "(one after the other, same servers), with the other table's stream beside it:",
    "",
    ...table(
      ["chunk rows", "rows/s", "vs fastest", "stream p99 ms", "stream max ms", "sync CPU"],
      runs.map((x) => [
        int(x.chunkRows ?? 0),
        int(x.rowsPerSec),
        `${(x.rowsPerSec / best.rowsPerSec * 100).toFixed(0)}%`,
        ms(x.during.p99),
        ms(x.during.max),
        cores(x.syncCpu),
      ]),
    ),
    "",
  ];
}
