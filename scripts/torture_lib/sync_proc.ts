/**
 * The sync process under torture: started from source like `deno task sync`, its whole
 * output appended to a log file, killed, paused and restarted by PID. An exit nobody asked
 * for is recorded (a defect: sync retries everything a torture run does to it).
 */
import { PERMISSIONS } from "../../testing/sync.ts";
import { track } from "../../testing/process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

export class SyncProc {
  #child: Deno.ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #expectExit = false;
  #paused = false;
  starts = 0;
  /** Unexpected exits, one line each. */
  readonly crashes: string[] = [];

  constructor(readonly args: string[], readonly logPath: string) {}

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  async start(): Promise<void> {
    if (this.#child) return;
    this.starts++;
    await this.#note(`--- torture: start #${this.starts}`);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMISSIONS, `${ROOT}src/cli/main.ts`, ...this.args],
      env: { NO_COLOR: "1" },
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    track(child);
    this.#expectExit = false;
    this.#paused = false;
    const sink = async (s: ReadableStream<Uint8Array>) => {
      const f = await Deno.open(this.logPath, { append: true, create: true });
      await s.pipeTo(f.writable).catch(() => {});
    };
    const drained = Promise.all([sink(child.stdout), sink(child.stderr)]);
    this.#exited = child.status.then(async (st) => {
      // Reaped: its PID may be reused from now on, so no signal may go to it (a child
      // of sync holding the log pipes could keep `drained` pending for long).
      if (this.#child === child) this.#child = undefined;
      const line = this.#expectExit
        ? undefined
        : `sync exited by itself (code ${st.code}${st.signal ? `, ${st.signal}` : ""})`;
      if (line) this.crashes.push(line);
      await Promise.race([drained, new Promise((r) => setTimeout(r, 5_000))]);
      if (line) await this.#note(`--- torture: ${line}`);
    });
  }

  #signal(sig: Deno.Signal) {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      Deno.kill(pid, sig);
    } catch { /* gone */ }
  }

  async #note(line: string) {
    await Deno.writeTextFile(this.logPath, `${new Date().toISOString()} ${line}\n`, {
      append: true,
    });
  }

  /** SIGKILL and wait until it is gone. */
  async kill(): Promise<void> {
    if (!this.#child) return;
    this.#expectExit = true;
    await this.#note("--- torture: SIGKILL");
    this.#signal("SIGKILL");
    await this.#exited;
  }

  async pause(): Promise<void> {
    await this.#note("--- torture: SIGSTOP");
    this.#paused = true;
    this.#signal("SIGSTOP");
  }

  async resume(): Promise<void> {
    if (!this.#paused) return;
    this.#paused = false;
    this.#signal("SIGCONT");
    await this.#note("--- torture: SIGCONT");
  }

  /** SIGTERM (SIGKILL after `graceMs`), also when paused. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.#child) return;
    this.#expectExit = true;
    await this.resume();
    this.#signal("SIGTERM");
    const t = setTimeout(() => this.#signal("SIGKILL"), graceMs);
    await this.#exited;
    clearTimeout(t);
  }

  /** Last resort (exit handler): no waiting. */
  killNow(): void {
    this.#expectExit = true;
    this.#signal("SIGCONT");
    this.#signal("SIGKILL");
  }

  /** The last `n` lines of the log. */
  async tail(n = 40): Promise<string> {
    try {
      return (await Deno.readTextFile(this.logPath)).split("\n").slice(-n - 1).join("\n");
    } catch {
      return "";
    }
  }
}
