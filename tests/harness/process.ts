/**
 * Shared plumbing for test servers: free loopback ports, temp dirs, spawning, and
 * stopping by PID (also on test failure and at process exit).
 */

/** A loopback TCP port nothing listens on right now. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

const live = new Set<number>();

// Last resort: never leave a server behind if a test file dies mid-way.
globalThis.addEventListener("unload", () => {
  for (const pid of live) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* already gone */ }
  }
});

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

/** Start a long-running process; its stdout/stderr are kept in a small ring buffer. */
export function spawn(cmd: string, opts: SpawnOptions = {}): Spawned {
  let program = cmd;
  let args = opts.args ?? [];
  if (opts.user && isRoot()) {
    args = [`--reuid=${opts.user}`, `--regid=${opts.user}`, "--init-groups", cmd, ...args];
    program = "setpriv";
  }
  const child = new Deno.Command(program, {
    args,
    env: opts.env,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const pid = child.pid;
  live.add(pid);
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
  const exited = child.status.then(async (s) => {
    live.delete(pid);
    await drained;
    return s;
  });
  // Only while the child is unreaped: after that its PID may belong to anyone.
  const signal = (sig: Deno.Signal) => {
    if (!live.has(pid)) return;
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
      if (!live.has(pid)) {
        await exited;
        return;
      }
      signal("SIGTERM");
      const t = setTimeout(() => signal("SIGKILL"), graceMs);
      await exited;
      clearTimeout(t);
    },
    output: () => lines.join("\n"),
  };
}

/** Run a command to completion; throws with its output on a non-zero exit. */
export async function run(
  cmd: string,
  opts: SpawnOptions & { stdin?: string } = {},
): Promise<string> {
  let program = cmd;
  let args = opts.args ?? [];
  if (opts.user && isRoot()) {
    args = [`--reuid=${opts.user}`, `--regid=${opts.user}`, "--init-groups", cmd, ...args];
    program = "setpriv";
  }
  const child = new Deno.Command(program, {
    args,
    env: opts.env,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}):\n${text}`);
  return text;
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
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
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
