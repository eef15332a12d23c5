/**
 * A deadline for every integration test. `deno test` has none: a test that waits forever
 * (a client on a frozen connection, a wait without a bound) would hold the suite until CI
 * kills it, and no summary line would be printed. `test()` registers like `Deno.test`,
 * races the body against its deadline and, when the deadline comes first, stops every
 * process the test started (by PID), gives the body a moment to run its own clean-up, and
 * fails naming the last steps the test reached (steps.ts). The suite goes on.
 */
import { spawnMark, stopSpawnedSince } from "./process.ts";
import { lastStep, resetSteps, stepReport } from "./steps.ts";

export { step } from "./steps.ts";

/** Far above what any test takes on a loaded 2-core machine; only a hang reaches it. */
export const DEFAULT_DEADLINE_MS = 8 * 60_000;
/** After the deadline, how long the body's own `finally` may take once its servers are gone. */
const SETTLE_MS = 15_000;

export class DeadlineError extends Error {
  override name = "DeadlineError";
}

type Body = () => void | Promise<void>;

let lateErrors = false;
/**
 * A body that outlived its deadline goes on in the background, and its failures (its
 * servers were killed) must not be taken for the next test's: logged, not thrown.
 */
function tolerateLateErrors(): void {
  if (lateErrors) return;
  lateErrors = true;
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    console.error(`(late error of a test past its deadline: ${e.reason})`);
  });
}

const pause = (ms: number) => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const p = new Promise<void>((r) => timer = setTimeout(r, ms));
  return { p, cancel: () => clearTimeout(timer) };
};

/**
 * Run `body`; if it has not settled after `ms`, stop the processes it started and throw a
 * DeadlineError naming its last steps.
 */
export async function withDeadline(name: string, ms: number, body: Body): Promise<void> {
  resetSteps();
  const mark = spawnMark();
  const running = Promise.resolve().then(body);
  const timer = pause(ms);
  try {
    const first = await Promise.race([running.then(() => "done"), timer.p.then(() => "late")]);
    if (first === "done") return;
  } finally {
    timer.cancel();
  }
  running.catch(() => {}); // its failure now is a consequence of the stop below
  tolerateLateErrors();
  const report = stepReport();
  const last = lastStep() ?? "(no step recorded)";
  const stopped = await stopSpawnedSince(mark);
  const settle = pause(SETTLE_MS);
  await Promise.race([running.catch(() => {}), settle.p]);
  settle.cancel();
  throw new DeadlineError(
    `"${name}" did not finish within ${ms / 1000} s; last step: ${last}\n` +
      `recent steps:\n${report}\nstopped ${stopped.length} process(es) it had started`,
  );
}

type Fn = (t: Deno.TestContext) => void | Promise<void>;
export type TestOptions = Omit<Deno.TestDefinition, "name" | "fn"> & {
  /** Fail the test after this long (default `DEFAULT_DEADLINE_MS`). */
  deadlineMs?: number;
};

/** `Deno.test(name, [options,] fn)` with a deadline (`options.deadlineMs`). */
export function test(name: string, fn: Fn): void;
export function test(name: string, options: TestOptions, fn: Fn): void;
export function test(name: string, a: TestOptions | Fn, b?: Fn): void {
  const [options, fn] = typeof a === "function" ? [{} as TestOptions, a] : [a, b!];
  const { deadlineMs = DEFAULT_DEADLINE_MS, ...rest } = options;
  Deno.test({ ...rest, name, fn: (t) => withDeadline(name, deadlineMs, () => fn(t)) });
}
