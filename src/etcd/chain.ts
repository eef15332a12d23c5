/**
 * The stream's etcd transactions, a few in flight and still applied in order (design:
 * Ordering and atomicity). etcd does not promise to apply concurrent requests in the order
 * sent, so each transaction compares the state key's incarnation and version with those its
 * predecessor leaves (`StateKeys.chain`): one that overtakes its predecessor is refused,
 * changing nothing, and is sent again once the predecessor landed. With one in flight
 * sync's share of a transaction and etcd's took turns; with two they overlap.
 */

/** Stream transactions in flight at once (BENCHMARKS.md, section 5). */
export const STREAM_IN_FLIGHT = 2;

/**
 * A transaction not applied because its predecessor failed: the predecessor's error is
 * the one reported.
 */
export class Superseded extends Error {
  override name = "Superseded";
}

export class Chain {
  readonly #depth: number;
  /** In send order; each settles true once its transaction landed, false if it failed. */
  #flight: Promise<boolean>[] = [];
  #failed?: { error: unknown };

  constructor(depth = STREAM_IN_FLIGHT) {
    this.#depth = depth;
  }

  /**
   * Start `send` once fewer than `depth` are in flight, without waiting for it. `send` gets
   * its predecessor's outcome (true: landed) and is started synchronously after it, so what
   * it reads before its first `await` sees every earlier one sent.
   */
  async next(send: (prev: Promise<boolean>) => Promise<void>): Promise<void> {
    while (this.#flight.length >= this.#depth) {
      await this.#flight[0];
      this.#flight.shift();
    }
    this.#throwFailed();
    const prev = this.#flight.at(-1) ?? Promise.resolve(true);
    const done = send(prev).then(() => true, (error) => {
      if (!(error instanceof Superseded)) this.#failed ??= { error };
      return false;
    });
    this.#flight.push(done);
  }

  /** Resolves once nothing is in flight; throws what the first that failed threw. */
  async landed(): Promise<void> {
    await this.idle();
    this.#throwFailed();
  }

  /** Wait until nothing is in flight, whatever the outcome. */
  async idle(): Promise<void> {
    while (this.#flight.length) {
      await this.#flight[0];
      this.#flight.shift();
    }
  }

  #throwFailed(): void {
    const f = this.#failed;
    this.#failed = undefined;
    if (f) throw f.error;
  }
}

/** Independent transactions (a dump's rows, a snapshot chunk's parts), `max` at once. */
export class InFlight {
  readonly #max: number;
  readonly #running = new Set<Promise<void>>();
  #failed?: { error: unknown };

  constructor(max: number) {
    this.#max = max;
  }

  /** Start `send` once fewer than `max` run, without waiting for it; throws a failure. */
  async add(send: () => Promise<void>): Promise<void> {
    while (this.#running.size >= this.#max) await Promise.race(this.#running);
    this.#throwFailed();
    const t: Promise<void> = send()
      .catch((error) => void (this.#failed ??= { error }))
      .finally(() => this.#running.delete(t));
    this.#running.add(t);
  }

  /** Wait until none runs; throw the first failure since the last throw. */
  async settle(): Promise<void> {
    while (this.#running.size) await Promise.all(this.#running);
    this.#throwFailed();
  }

  #throwFailed(): void {
    const f = this.#failed;
    this.#failed = undefined;
    if (f) throw f.error;
  }
}
