/** Runs the `sync` CLI as its own process, from source exactly as `deno task sync` does. */
import { spawn, type Spawned, track, waitFor } from "./process.ts";
import { step } from "./steps.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/**
 * The permissions of `deno task sync` and `deno task compile` (see deno.json and the README):
 * net for the database, etcd and --http-addr; env for SYNC_* only, every other variable
 * reading as unset (`--ignore-env`: commander and yaml look at NO_COLOR, LOG_TOKENS, ...);
 * read for the config file and certificates (paths known only at run time); sys for
 * the --ha id's host name. No write, and no program run.
 */
export const PERMISSIONS = [
  "--allow-net",
  "--allow-env=SYNC_*",
  "--ignore-env",
  "--allow-read",
  "--allow-sys=hostname",
];

/**
 * V8 settings of `deno task sync` and `deno task compile` (README, Permissions): smaller
 * young-generation semi-spaces and a heap that grows in smaller steps keep a 1M-row dump's
 * peak RSS near 115 MB instead of 165 MB, at about the same speed (measured).
 */
export const RUNTIME_FLAGS = ["--v8-flags=--max-semi-space-size=8,--heap-growing-percent=20"];

export function syncCommand(args: string[]): { cmd: string; args: string[] } {
  return {
    cmd: Deno.execPath(),
    args: ["run", ...PERMISSIONS, ...RUNTIME_FLAGS, `${ROOT}src/cli/main.ts`, ...args],
  };
}

/** Start `sync` with these arguments (and env); stop it by PID like any server. */
export function startSync(args: string[], env: Record<string, string> = {}): Spawned {
  const c = syncCommand(args);
  const p = spawn(c.cmd, { args: c.args, env: { NO_COLOR: "1", ...env }, cwd: ROOT });
  step(`started sync (pid ${p.pid})`);
  return p;
}

/**
 * Run `sync` to completion; returns exit code and output. A run still going after
 * `timeoutMs` is killed and reported as code -1, so a sync that fails to exit fails the
 * test instead of hanging it.
 */
export async function runSync(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = launchSync(args, env);
  step(`running sync ${args.filter((a) => !a.startsWith("-")).join(" ")}`.trimEnd());
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    p.kill("SIGKILL");
  }, timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  const stderr = p.stderr() +
    (timedOut ? `\n(test harness: sync still running after ${timeoutMs} ms, killed)` : "");
  return { code: timedOut ? -1 : code, stdout: p.stdout(), stderr };
}

/**
 * Wait until sync has logged how it started (resuming, or a dump) and return its output:
 * etcd may already equal the database before that line when there was nothing to catch up.
 */
export async function startLog(p: Spawned, timeoutMs = 60_000): Promise<string> {
  await waitFor(
    "sync to log how it starts",
    () => /msg=resuming|msg="dump starting"/.test(p.output()),
    timeoutMs,
    () => p.output(),
  );
  return p.output();
}

/**
 * Wait until sync streams: its dump (if any) is done and its state saved. etcd can equal
 * the database before that (the last chunk is in, the sweep and the state key are not),
 * and a sync stopped then dumps again on its next start.
 */
export async function streaming(p: { output(): string }, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    "sync to stream (dump done, state saved)",
    () => /msg=streaming/.test(p.output()),
    timeoutMs,
    () => p.output(),
  );
}

/** A sync process whose whole output is kept (tests that grep all of it). */
export interface SyncRun {
  readonly pid: number;
  /** Everything it printed so far, stdout and stderr, in the order it arrived. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Its exit code, once its output is read to the end. */
  readonly exited: Promise<number>;
  /** True once it exited. */
  readonly done: boolean;
  kill(sig: Deno.Signal): void;
  /** SIGTERM, then SIGKILL after 10 s; resolves once it exited. */
  stop(): Promise<void>;
}

export function launchSync(args: string[], env: Record<string, string> = {}): SyncRun {
  const c = syncCommand(args);
  const child = new Deno.Command(c.cmd, {
    args: c.args,
    env: { NO_COLOR: "1", ...env },
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  track(child);
  step(`started sync (pid ${child.pid})`);
  let text = "";
  const streams = { out: "", err: "" };
  const pump = async (s: ReadableStream<Uint8Array>, which: "out" | "err") => {
    const dec = new TextDecoder();
    for await (const chunk of s) {
      const t = dec.decode(chunk, { stream: true });
      text += t;
      streams[which] += t;
    }
  };
  const pumped = Promise.all([pump(child.stdout, "out"), pump(child.stderr, "err")]);
  let done = false;
  const exited = child.status.then(async (st) => {
    done = true;
    await pumped;
    return st.code;
  });
  // Only while unreaped: after that its PID may belong to anyone.
  const kill = (sig: Deno.Signal) => {
    if (done) return;
    try {
      child.kill(sig);
    } catch { /* gone */ }
  };
  return {
    pid: child.pid,
    output: () => text,
    stdout: () => streams.out,
    stderr: () => streams.err,
    exited,
    get done() {
      return done;
    },
    kill,
    async stop() {
      kill("SIGTERM");
      const t = setTimeout(() => kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
