/** Shared bits of the benchmarks: sizes, timing, tables, process memory. */

/** `--scale=0.1` (or BENCH_SCALE) shrinks every size; 1 is the sizes (1M rows). */
export const SCALE = (() => {
  const flag = Deno.args.find((a) => a.startsWith("--scale="));
  const v = Number(flag?.slice(8) ?? Deno.env.get("BENCH_SCALE") ?? 1);
  if (!(v > 0)) throw new Error(`bad --scale: ${flag}`);
  return v;
})();

export const scaled = (n: number) => Math.max(1000, Math.round(n * SCALE / 1000) * 1000);

/** Rows of the 1M-row tables (dump, decode streams, the big transaction). */
export const ROWS = scaled(1_000_000);

/** The row every benchmark writes: the same shape in PostgreSQL, MariaDB and the etcd ceiling. */
export const PAYLOAD = "x".repeat(100);
/** What sync writes to etcd for row `i` (checked against the dump's values). */
export const rowValue = (i: number) => `{"id":${i},"name":"row ${i}","payload":"${PAYLOAD}"}`;

export async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

export function timedSync(f: () => unknown): number {
  const t0 = performance.now();
  f();
  return (performance.now() - t0) / 1000;
}

export const int = (x: number) => Math.round(x).toLocaleString("en-US");
export const ratio = (x: number) => `${x.toFixed(2)}×`;
export const pct = (x: number) => `${Math.round(x * 100)}%`;

/** A markdown table (deno fmt aligns it later; the raw form is valid markdown). */
export function table(head: string[], rows: (string | number)[][]): string[] {
  const align = head.map((_, i) => (i === 0 ? "---" : "---:"));
  return [
    `| ${head.join(" | ")} |`,
    `| ${align.join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ];
}

/** Peak (VmHWM) and current (VmRSS) resident memory of a process, in MB (10^6 bytes). */
export function memoryOf(pid: number): { peakMB: number; rssMB: number } {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (k: string) => Number(s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN);
  return { peakMB: kb("VmHWM") * 1024 / 1e6, rssMB: kb("VmRSS") * 1024 / 1e6 };
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the command name; clock
  // ticks are 100 per second on Linux.
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** The nth percentile (0–100) of sorted numbers. */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Run a command to completion, returning stdout as bytes; throws with stderr on failure. */
export async function runBytes(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Uint8Array> {
  const out = await new Deno.Command(cmd, { args, env, stdin: "null" }).output();
  if (!out.success) {
    throw new Error(`${cmd} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
  return out.stdout;
}
