/**
 * What the running test is doing: the harness marks each wait and each process it starts,
 * tests may add their own marks, and a test that hits its deadline (deadline.ts) fails
 * naming the last ones.
 */

interface Mark {
  at: number;
  what: string;
}

let marks: Mark[] = [];
let since = Date.now();

/** Record that the running test has reached `what` (e.g. "waiting for etcd to converge"). */
export function step(what: string): void {
  if (marks.at(-1)?.what === what) return; // a poll repeating itself
  marks.push({ at: Date.now(), what });
  if (marks.length > 100) marks.shift();
}

/** Forget the previous test's marks (tests of one file run one after another). */
export function resetSteps(): void {
  marks = [];
  since = Date.now();
}

/** The last mark, or null before the first. */
export function lastStep(): string | null {
  return marks.at(-1)?.what ?? null;
}

/** The last `n` marks, one a line, with seconds since the test started. */
export function stepReport(n = 10): string {
  return marks.slice(-n)
    .map((m) => `  +${((m.at - since) / 1000).toFixed(1)}s ${m.what}`)
    .join("\n");
}
