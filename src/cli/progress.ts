/**
 * Dump progress: on a terminal a live table per table (rows done / estimated, rate, ETA),
 * redrawn in place; off a terminal a log line per table every few seconds instead.
 */
import type { Log } from "../core/log.ts";
import type { Status } from "../service/status.ts";

interface Sample {
  rows: number;
  at: number;
}

function fmtEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  return `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, "0")}s`;
}

/**
 * The rate is taken over this much history: rows arrive in batches of hundreds, so a rate
 * over one redraw interval jumps between multiples of the batch size.
 */
const RATE_WINDOW_MS = 10_000;

/** One progress row per table: name, done/estimate, percent, rate, ETA. */
export function progressRows(
  status: Status,
  prev: Map<string, Sample[]>,
  now: number,
): string[][] {
  const rows: string[][] = [];
  for (const [table, done] of [...status.dumpRows].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const est = status.rowsEstimated.get(table);
    const seen = prev.get(table) ?? [];
    while (seen.length > 1 && seen[1].at <= now - RATE_WINDOW_MS) seen.shift();
    const p = seen[0];
    const rate = p && now > p.at ? ((done - p.rows) * 1000) / (now - p.at) : 0;
    const total = est !== undefined ? Math.max(est, done) : undefined;
    rows.push([
      table,
      total !== undefined ? `${done}/${total}` : String(done),
      total ? `${Math.floor((done / total) * 100)}%` : "",
      `${Math.round(rate)}/s`,
      total !== undefined && rate > 0 ? fmtEta((total - done) / rate) : "–",
    ]);
    seen.push({ rows: done, at: now });
    prev.set(table, seen);
  }
  return rows;
}

/** Start showing dump progress; returns a function that stops it. */
export function showProgress(status: Status, log: Log, intervalMs?: number): () => void {
  const tty = Deno.stderr.isTerminal();
  const every = intervalMs ?? (tty ? 500 : 5000);
  const prev = new Map<string, Sample[]>();
  const enc = new TextEncoder();
  let drawn = 0;
  const clear = () => {
    if (drawn) Deno.stderr.writeSync(enc.encode(`\x1b[${drawn}A\x1b[J`));
    drawn = 0;
  };
  const timer = setInterval(() => {
    if (status.phase !== "dump") {
      clear();
      return;
    }
    const rows = progressRows(status, prev, Date.now());
    if (!rows.length) return;
    if (!tty) {
      for (const [table, done, pct, rate, eta] of rows) {
        log.info("dump progress", { table, rows: done, percent: pct, rate, eta });
      }
      return;
    }
    const w = rows.map((r) => r.map((c) => c.length)).reduce(
      (a, b) => a.map((x, i) => Math.max(x, b[i])),
    );
    const lines = rows.map((r) =>
      `  ${r[0].padEnd(w[0])}  ${r[1].padStart(w[1])}  ${r[2].padStart(w[2])}  ${
        r[3].padStart(w[3])
      }  eta ${r[4]}`
    );
    clear();
    Deno.stderr.writeSync(enc.encode(`dump progress\n${lines.join("\n")}\n`));
    drawn = lines.length + 1;
  }, every);
  return () => {
    clearInterval(timer);
    clear();
  };
}
