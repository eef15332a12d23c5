/** Runs the `sync` CLI as its own process, from source exactly as `deno task sync` does. */
import { spawn, type Spawned, waitFor } from "./process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** The permissions of `deno task sync` and `deno task compile` (see deno.json). */
export const PERMISSIONS = [
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-write",
  "--allow-run",
  "--allow-sys",
];

export function syncCommand(args: string[]): { cmd: string; args: string[] } {
  return {
    cmd: Deno.execPath(),
    args: ["run", ...PERMISSIONS, `${ROOT}src/cli/main.ts`, ...args],
  };
}

/** Start `sync` with these arguments (and env); stop it by PID like any server. */
export function startSync(args: string[], env: Record<string, string> = {}): Spawned {
  const c = syncCommand(args);
  return spawn(c.cmd, { args: c.args, env: { NO_COLOR: "1", ...env }, cwd: ROOT });
}

/** Run `sync` to completion; returns exit code and output. */
export async function runSync(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = syncCommand(args);
  const out = await new Deno.Command(c.cmd, {
    args: c.args,
    env: { NO_COLOR: "1", ...env },
    cwd: ROOT,
    stdin: "null",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
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
