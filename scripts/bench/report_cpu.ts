/**
 * BENCHMARKS.md section 7 (issue 16): sync's CPU-seconds per 1,000,000 changes streamed
 * and per 1,000,000 rows dumped, per driver, with etcd's CPU beside it, from the phases of
 * sections 4 and 5 (PostgreSQL) and the MariaDB run of mysql_e2e.ts.
 */
import type { Phase } from "./sync_e2e.ts";
import { int, table } from "./lib.ts";
// A cycle with report.ts, which renders these sections: only used at call time.
import { missing, type Results, verdict } from "./report.ts";

/**
 * The run before issue 16's work (2026-12-02, BENCHMARKS.md at 0ff06a1), which had no CPU
 * figure: CPU-seconds per 1,000,000 derived from its rates and CPU per wall second (pgx
 * only; MySQL had no end-to-end run). Sync [cores, per second], etcd cores.
 */
const BEFORE: Record<string, { sync: number; etcd: number }> = {
  "pgx dump": { sync: (0.59 / 51_940) * 1e6, etcd: (1.04 / 51_940) * 1e6 },
  "pgx stream, transactions of 10": { sync: (0.46 / 25_453) * 1e6, etcd: (0.69 / 25_453) * 1e6 },
  "pgx stream, one big transaction": {
    sync: (0.37 / 28_315) * 1e6,
    etcd: (0.66 / 28_315) * 1e6,
  },
};

const perMillion = (cpu: number, n: number) => (cpu / n) * 1e6;
const cpuS = (x: number) => `${x.toFixed(1)} s`;

export function cpuSection(r: Results): string[] {
  const out: string[] = ["## 7. CPU per change", ""];
  const rows: [string, Phase, number][] = [];
  if (r.dump) rows.push(["pgx dump", r.dump, r.dump.rows]);
  if (r.stream) {
    rows.push(["pgx stream, transactions of 10", r.stream.sustained, r.stream.sustained.changes]);
    rows.push(["pgx stream, one big transaction", r.stream.bigTxn, r.stream.bigTxn.rows]);
  }
  if (r.mysqlE2e) {
    const m = r.mysqlE2e;
    rows.push(["mysql dump", m.dump, m.dump.rows]);
    rows.push(["mysql stream, transactions of 10", m.sustained, m.sustained.changes]);
  }
  if (!rows.length) return [...out, ...missing(r, "stream")];
  out.push(
    "CPU-seconds (user + system, /proc/<pid>/stat) per 1,000,000 rows dumped or changes " +
      "streamed, read around each phase of sections 4 and 5 for PostgreSQL (the pgx driver), " +
      "and for MySQL (the mysql driver) around the same runs against MariaDB: the " +
      `${int(r.sizes.rows)}-row table of section 3 dumped, then ${int(r.sizes.sustained)} ` +
      "inserts in transactions of 10 streamed, every row's value checked at the end. sync " +
      "reads the mysql dump itself (no mysqldump child any more; a child's CPU would be shown " +
      "apart). Before: the " +
      "run of 2026-12-02 (this file at 0ff06a1), derived from its rates and CPU per second.",
    "",
    ...table(
      [
        "",
        "rows/s",
        "sync CPU-s per 1M",
        "before",
        "etcd CPU-s per 1M",
        "before",
        "sync cores",
        "etcd cores",
      ],
      rows.map(([name, p, n]) => [
        name,
        int(p.perSec),
        cpuS(perMillion(p.syncCpuSeconds, n)) +
        (p.childCpuSeconds > 0 ? ` (+ ${cpuS(perMillion(p.childCpuSeconds, n))} mysqldump)` : ""),
        BEFORE[name] ? cpuS(BEFORE[name].sync) : "",
        cpuS(perMillion(p.etcdCpuSeconds, n)),
        BEFORE[name] ? cpuS(BEFORE[name].etcd) : "",
        p.syncCpu.toFixed(2),
        p.etcdCpu.toFixed(2),
      ]),
    ),
    "",
    `Target: halve sync's CPU per change. ${verdicts(rows)}`,
    "",
    PROFILE,
    "",
  );
  return out;
}

/**
 * Where sync's CPU per change goes: one profile, not re-measured by each run (it needs a
 * sync started with --cpu-prof), so it carries its date.
 */
const PROFILE = "Where it goes (2026-12-02 16:55 UTC, `deno run --cpu-prof` on a sync dumping " +
  "300,000 rows from PostgreSQL and then streaming 200,000 inserts in transactions of 10, " +
  "after the HTTP/2 client and the overlapped stream transactions; 8.6 CPU-s busy on its main " +
  "thread, idle 45% of the run): garbage collection 18%, socket writes (`op_write`) 10%, the " +
  "sink's transaction budget (src/etcd/pending.ts: the check of each new key string against " +
  "the transaction's map 7%, its UTF-8 length 3%) 12%, the rest of src/etcd/ about 11%, the " +
  "HTTP/2 client itself about 3.5% (node:http2 took about 40% before), src/pg/ about 10%, " +
  "text decoding and encoding 4%. What is left per change is allocation (the key and JSON " +
  "strings, the change objects: GC) and the unavoidable socket writes.";

function verdicts(rows: [string, Phase, number][]): string {
  const judged = rows.filter(([name]) => BEFORE[name]);
  if (!judged.length) return "Not judged: no pgx phase ran.";
  return judged.map(([name, p, n]) => {
    const now = perMillion(p.syncCpuSeconds, n), before = BEFORE[name].sync;
    return `${name}: ${
      verdict(now <= before / 2, `${cpuS(now)}, ${(now / before * 100).toFixed(0)}% of before`)
    }`;
  }).join("; ") + ". MySQL has no earlier figure: this run is its first.";
}
