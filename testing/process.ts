/**
 * Shared plumbing for test servers: free loopback ports, temp dirs, spawning, and
 * stopping by PID (also on test failure, when a test hits its deadline, and at exit).
 * Every wait here has a deadline.
 */
import { basename } from "node:path";
import { step } from "./steps.ts";

export { freePort } from "./ports.ts";

interface Tracked {
  /** Order of starting: a test's processes are those started after its mark. */
  seq: number;
  exited: Promise<unknown>;
  /** How long a SIGTERM may take before SIGKILL (a torture run stops its own servers). */
  graceMs: number;
}

/** Children not reaped yet: only these PIDs are ours to signal. */
const live = new Map<number, Tracked>();
let seq = 0;

// Last resort: never leave a server behind if a test file dies mid-way.
globalThis.addEventListener("unload", () => {
  for (const pid of live.keys()) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* already gone */ }
  }
});

/**
 * Track a child process started outside `spawn` (sync, a torture run) so that a test's
 * deadline stops it too. Returns whether it is still unreaped, i.e. safe to signal.
 */
export function track(
  child: Deno.ChildProcess,
  opts: { graceMs?: number } = {},
): () => boolean {
  const pid = child.pid;
  let reaped = false;
  const gone = () => {
    reaped = true;
    if (live.get(pid) === entry) live.delete(pid);
  };
  const entry: Tracked = {
    seq: ++seq,
    exited: child.status.then(gone, gone),
    graceMs: opts.graceMs ?? 10_000,
  };
  live.set(pid, entry);
  // Per child, not by PID: PIDs wrap within minutes here (pid_max 32768, a poll spawns
  // a process every 100 ms), and a later child may get this one's PID.
  return () => !reaped;
}

/** A mark: the processes started after it are `stopSpawnedSince(mark)`'s to stop. */
export function spawnMark(): number {
  return seq;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stop every process started after `mark` that is still running: SIGCONT (a test may have
 * paused it) and SIGTERM, SIGKILL after its grace. Returns the PIDs it signalled.
 */
export async function stopSpawnedSince(mark: number): Promise<number[]> {
  const mine = [...live].filter(([, t]) => t.seq > mark);
  const send = (pid: number, sig: Deno.Signal) => {
    if (!mine.some(([p, t]) => p === pid && live.get(p) === t)) return;
    try {
      Deno.kill(pid, sig);
    } catch { /* gone */ }
  };
  await Promise.all(mine.map(async ([pid, t]) => {
    send(pid, "SIGCONT");
    send(pid, "SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([t.exited, new Promise((r) => timer = setTimeout(r, t.graceMs))]);
    clearTimeout(timer);
    send(pid, "SIGKILL");
    await Promise.race([t.exited, sleep(5_000)]);
  }));
  return mine.map(([pid]) => pid);
}

export interface Spawned {
  readonly pid: number;
  readonly child: Deno.ChildProcess;
  /** Resolves when the process exits. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** Send a signal; ignored if the process is gone. */
  signal(sig: Deno.Signal): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** Last lines of the process's output, for failure messages. */
  output(): string;
}

export interface SpawnOptions {
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Run as this system user (via setpriv) when we are root. */
  user?: string;
}

function isRoot(): boolean {
  return Deno.uid() === 0;
}

function command(cmd: string, opts: SpawnOptions): { program: string; args: string[] } {
  const args = opts.args ?? [];
  if (opts.user && isRoot()) {
    return {
      program: "setpriv",
      args: [`--reuid=${opts.user}`, `--regid=${opts.user}`, "--init-groups", cmd, ...args],
    };
  }
  return { program: cmd, args };
}

/** Start a long-running process; its stdout/stderr are kept in a small ring buffer. */
export function spawn(cmd: string, opts: SpawnOptions = {}): Spawned {
  const { program, args } = command(cmd, opts);
  const child = new Deno.Command(program, {
    args,
    env: opts.env,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const pid = child.pid;
  const alive = track(child);
  step(`started ${basename(cmd)} (pid ${pid})`);
  const lines: string[] = [];
  const keep = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoderStream();
    let buf = "";
    for await (const chunk of stream.pipeThrough(dec)) {
      buf += chunk;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      for (const p of parts) {
        lines.push(p);
        if (lines.length > 200) lines.shift();
      }
    }
    if (buf) lines.push(buf);
  };
  const drained = Promise.all([keep(child.stdout), keep(child.stderr)]).catch(() => {});
  // A grandchild holding the pipes must not hold `exited`: the drain gets a few seconds.
  const exited = child.status.then(async (s) => {
    await Promise.race([drained, sleep(5_000)]);
    return s;
  });
  // Only while the child is unreaped: after that its PID may belong to anyone.
  const signal = (sig: Deno.Signal) => {
    if (!alive()) return;
    try {
      Deno.kill(pid, sig);
    } catch { /* gone */ }
  };
  return {
    pid,
    child,
    exited,
    signal,
    async stop(graceMs = 10_000) {
      if (!alive()) {
        await exited;
        return;
      }
      signal("SIGCONT");
      signal("SIGTERM");
      const t = setTimeout(() => signal("SIGKILL"), graceMs);
      await exited;
      clearTimeout(t);
    },
    output: () => lines.join("\n"),
  };
}

/**
 * Run a command to completion; throws with its output on a non-zero exit, and kills it
 * after `timeoutMs` (a client stuck on a frozen server must not hold the test).
 */
export async function run(
  cmd: string,
  opts: SpawnOptions & { stdin?: string; timeoutMs?: number } = {},
): Promise<string> {
  const { program, args } = command(cmd, opts);
  const timeoutMs = opts.timeoutMs ?? 600_000;
  step(`running ${basename(cmd)}`);
  const child = new Deno.Command(program, {
    args,
    env: opts.env,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const alive = track(child);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    if (alive()) child.kill("SIGKILL");
  }, timeoutMs);
  try {
    if (opts.stdin !== undefined) {
      const w = child.stdin.getWriter();
      // A killed child closes the pipe: the error is the timeout's, reported below.
      await w.write(new TextEncoder().encode(opts.stdin)).catch(() => {});
      await w.close().catch(() => {});
    }
    const out = await child.output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    if (timedOut) throw new Error(`${cmd} ${args.join(" ")} still running after ${timeoutMs} ms`);
    if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}):\n${text}`);
    return text;
  } finally {
    clearTimeout(timer);
  }
}

/** A temp dir, readable by `user` when given (servers that refuse to run as root). */
export async function tempDir(prefix: string, user?: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: `sync-test-${prefix}-` });
  if (user && isRoot()) await run("chown", { args: [user, dir] });
  return dir;
}

/** Poll `check` until it resolves true, or throw after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 30_000,
  detail?: () => string,
): Promise<void> {
  step(`waiting for ${what}`);
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    // A check stuck on a frozen server must not outlast the deadline either.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("a check was still running")),
        deadline - Date.now(),
      );
    });
    try {
      if (await Promise.race([Promise.resolve().then(check), late])) return;
    } catch (e) {
      last = e;
    } finally {
      clearTimeout(timer);
    }
    await sleep(100);
  }
  throw new Error(
    `timed out waiting for ${what}${last ? `: ${last}` : ""}${detail ? "\n" + detail() : ""}`,
  );
}

/** Wait until a TCP port accepts connections. */
export function waitForPort(port: number, what: string, detail?: () => string): Promise<void> {
  return waitFor(
    what,
    async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return true;
    },
    60_000,
    detail,
  );
}

/**
 * SIGKILL a process we did not spawn (a postmaster, from its pid file), but only if its
 * command line still holds `marker` (its data directory): a stale pid file's PID may since
 * have been reused by an unrelated process, such as another test's etcd.
 */
export async function killByPidFile(pidFile: string, marker: string): Promise<void> {
  let pid: number;
  try {
    pid = Number((await Deno.readTextFile(pidFile)).split("\n")[0]);
  } catch {
    return; // no pid file: not running
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  try {
    const cmdline = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).replaceAll("\0", " ");
    if (!cmdline.includes(marker)) return;
    Deno.kill(pid, "SIGKILL");
  } catch { /* gone */ }
}
