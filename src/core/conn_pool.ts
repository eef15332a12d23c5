/**
 * A few connections for reads that run at once (the snapshot engine's parallel table
 * jobs): a connection carries one transaction and one reply at a time, so each read holds
 * one of its own. Idle ones are reused; there are never more than reads at once, which
 * the engine keeps to `--snapshot-parallel`.
 */

/** What the pool needs of a connection. */
export interface PooledConn {
  readonly closed: boolean;
  close(): void;
}

export class ConnPool<C extends PooledConn> {
  readonly #open: () => Promise<C>;
  readonly #idle: C[] = [];
  readonly #busy = new Set<C>();
  /** Bumped by close(): a connection taken before it is closed when given back. */
  #epoch = 0;

  constructor(open: () => Promise<C>) {
    this.#open = open;
  }

  /**
   * `fn` on a connection no other read uses meanwhile. A connection `fn` threw on is
   * closed, not reused: it may be mid-transaction or mid-reply.
   */
  async use<T>(fn: (conn: C) => Promise<T>): Promise<T> {
    const epoch = this.#epoch;
    const conn = await this.#take();
    let ok = false;
    try {
      const out = await fn(conn);
      ok = true;
      return out;
    } finally {
      this.#busy.delete(conn);
      if (ok && !conn.closed && epoch === this.#epoch) this.#idle.push(conn);
      else conn.close();
    }
  }

  async #take(): Promise<C> {
    for (let c = this.#idle.pop(); c; c = this.#idle.pop()) {
      if (c.closed) continue;
      this.#busy.add(c);
      return c;
    }
    const c = await this.#open();
    this.#busy.add(c);
    return c;
  }

  /** How many connections are open (idle or in use). */
  get size(): number {
    return this.#idle.length + this.#busy.size;
  }

  /** Close every connection, the ones in use too (their reads fail: the attempt ended). */
  close(): void {
    this.#epoch++;
    for (const c of this.#idle.splice(0)) c.close();
    for (const c of this.#busy) c.close();
    this.#busy.clear();
  }
}
