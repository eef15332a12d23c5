/** Assertions used by the tests (node:assert underneath, with Deno-style names). */
import nodeAssert from "node:assert/strict";

export function assert(cond: unknown, msg?: string): asserts cond {
  nodeAssert.ok(cond, msg as string);
}

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg as string);
}

export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  nodeAssert.match(actual, re, msg as string);
}

/** Await `fn`, which must reject (with `Cls` when given); returns the error. */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  Cls?: new (...args: any[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    if (Cls && !(e instanceof Cls)) {
      throw new Error(`expected ${Cls.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
    return e as E;
  }
  throw new Error("expected a rejection, got none");
}

/** Call `fn`, which must throw; returns the error. */
export function assertThrows(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an exception, got none");
}
