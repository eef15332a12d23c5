/**
 * Loopback ports for test servers that no other test process on the machine can be handed.
 *
 * A port read from `listen(0)` and closed is free only for a moment: the suite runs test
 * files in parallel processes, and a server that binds seconds later (after `initdb`), or
 * binds again after a restart, could find another test's server there and take it for its
 * own (its readiness check passes against the stranger). So ports are
 * - drawn below the kernel's ephemeral range (32768–60999), where outgoing connections
 *   never take them while a server is down or not yet started, and
 * - reserved for the life of the process by a file in a directory every test process
 *   shares, holding the owner's PID and start time (a dead owner's reservations are
 *   swept, a reused PID does not keep them).
 */

const DIR = "/tmp/sync-test-ports";
const LOW = 20_000;
const HIGH = 32_000;

/** The start time of a process (field 22 of /proc/PID/stat), or null when it is gone. */
function startTime(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

const me = `${Deno.pid} ${startTime(Deno.pid)}`;
const mine = new Set<number>();
let swept = false;

/** Remove reservations whose owner is gone (killed test processes leave them behind). */
function sweep(): void {
  try {
    Deno.mkdirSync(DIR, { recursive: true, mode: 0o777 });
    for (const e of Deno.readDirSync(DIR)) {
      const path = `${DIR}/${e.name}`;
      try {
        const [pid, started] = Deno.readTextFileSync(path).trim().split(" ");
        if (startTime(Number(pid)) !== started) Deno.removeSync(path);
      } catch { /* another process swept it, or it is being written */ }
    }
  } catch { /* no shared directory: reservations still work within this process */ }
}

function reserve(port: number): boolean {
  if (mine.has(port)) return false;
  try {
    Deno.writeTextFileSync(`${DIR}/${port}`, me, { createNew: true });
    mine.add(port);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return false;
    // No shared directory (read-only /tmp): fall back to this process's own bookkeeping.
    mine.add(port);
    return true;
  }
}

globalThis.addEventListener("unload", () => {
  for (const port of mine) {
    try {
      Deno.removeSync(`${DIR}/${port}`);
    } catch { /* already swept */ }
  }
});

/** A loopback TCP port nothing listens on, reserved for this process. */
export function freePort(): number {
  if (!swept) {
    sweep();
    swept = true;
  }
  for (let i = 0; i < 2000; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (!reserve(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch { /* in use by something outside the suite: keep it reserved, try another */ }
  }
  throw new Error(`no free port in ${LOW}-${HIGH} (reservations in ${DIR})`);
}
