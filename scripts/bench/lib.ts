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

/**
 * items/s of each decoder on the same items, measured side by side: the items are cut into
 * about 100 chunks and each round feeds every decoder every chunk in turn (a fresh decoder
 * per round, so state such as relations and table maps is rebuilt; the order of decoders
 * alternates between rounds), keeping per decoder and chunk the fastest of the rounds. On a
 * shared machine a neighbour's burst then costs one chunk of one round, not a whole run,
 * and both decoders meet the same machine. Each decoder returns how many items (changes,
 * rows) a chunk held; every round must count `expect`.
 */
export function sideBySide<T>(
  items: T[],
  rounds: number,
  decoders: Record<string, () => (chunk: T[]) => number>,
  expect: number,
): Record<string, number> {
  const size = Math.max(1, Math.ceil(items.length / 100));
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  const best: Record<string, number[]> = {};
  const names = Object.keys(decoders);
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 ? [...names].reverse() : names) {
      const decode = decoders[name]();
      const times = (best[name] ??= chunks.map(() => Infinity));
      let n = 0;
      for (let c = 0; c < chunks.length; c++) {
        const t0 = performance.now();
        n += decode(chunks[c]);
        times[c] = Math.min(times[c], performance.now() - t0);
      }
      if (n !== expect) throw new Error(`${name} counted ${n} of ${expect}`);
    }
  }
  const out: Record<string, number> = {};
  for (const name of names) out[name] = expect / (best[name].reduce((a, b) => a + b, 0) / 1000);
  return out;
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
  const f = statFields(pid);
  // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the command name; clock
  // ticks are 100 per second on Linux.
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** CPU seconds its children that have ended used (cutime + cstime: mysqldump for sync). */
export function childCpuSeconds(pid: number): number {
  const f = statFields(pid);
  return (Number(f[13]) + Number(f[14])) / 100;
}

function statFields(pid: number): string[] {
  const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return s.slice(s.lastIndexOf(")") + 2).split(" ");
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
