/**
 * Keepalive for one HTTP/2 connection to etcd: while requests wait and nothing came back for
 * a moment, an HTTP/2 PING must be answered within a deadline, or the connection is given up
 * (its requests fail and the client tries another member). A frozen member (SIGSTOP, a hung
 * disk, a partition) keeps its TCP connection open and never answers: without this a request
 * would wait out its whole deadline (--etcd-timeout).
 *
 * Pings go only while requests wait, at most one per `minIntervalMs`: etcd's gRPC server
 * (--grpc-keepalive-min-time, default 5 s) closes connections that ping more often or with no
 * request open (`too_many_pings`).
 */

export interface KeepaliveSettings {
  /** Requests waiting this long with nothing received: ping. */
  quietMs: number;
  /** A ping unanswered this long: the connection is dead. */
  timeoutMs: number;
  /** Never two pings closer than this (etcd's minimum). */
  minIntervalMs: number;
}

/** The defaults: a frozen member is given up within quiet + timeout (5 s), or 8 s at worst. */
export const KEEPALIVE: KeepaliveSettings = {
  quietMs: 2_000,
  timeoutMs: 3_000,
  minIntervalMs: 5_000,
};

/** What the watch needs of a session: node:http2's `ping`, and a way to give it up. */
export interface Pingable {
  ping(callback: (err: Error | null) => void): boolean;
  readonly destroyed: boolean;
}

export class ConnectionWatch {
  readonly #session: Pingable;
  readonly #s: KeepaliveSettings;
  readonly #dead: (why: string) => void;
  #waiting = 0;
  /** When something last arrived, or requests started waiting on a silent connection. */
  #heardAt = 0;
  #pingAt = -Infinity;
  #pinging = false;
  #timer?: ReturnType<typeof setInterval>;

  /** `dead` gives the connection up (once) with the reason. */
  constructor(session: Pingable, dead: (why: string) => void, s: KeepaliveSettings = KEEPALIVE) {
    this.#session = session;
    this.#dead = dead;
    this.#s = s;
  }

  /** A request was sent. */
  begin(): void {
    if (this.#waiting++ === 0) {
      this.#heardAt = Date.now();
      const every = Math.max(100, Math.min(500, this.#s.quietMs / 2));
      this.#timer = setInterval(() => this.#tick(), every);
      Deno.unrefTimer(this.#timer);
    }
  }

  /** Something arrived for a request (headers, data, trailers). */
  heard(): void {
    this.#heardAt = Date.now();
  }

  /** A request ended. */
  end(): void {
    if (--this.#waiting > 0) return;
    this.#waiting = 0;
    this.stop();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const now = Date.now();
    if (this.#session.destroyed) return this.stop();
    if (this.#pinging || now - this.#heardAt < this.#s.quietMs) return;
    if (now - this.#pingAt < this.#s.minIntervalMs) return;
    this.#pinging = true;
    this.#pingAt = now;
    let answered = false;
    const late = setTimeout(() => {
      if (answered) return;
      this.stop();
      this.#dead(`no answer to a keepalive ping within ${this.#s.timeoutMs} ms`);
    }, this.#s.timeoutMs);
    Deno.unrefTimer(late);
    const settle = (err: Error | null) => {
      if (answered) return;
      answered = true;
      clearTimeout(late);
      this.#pinging = false;
      if (err && !this.#session.destroyed) {
        this.stop();
        this.#dead(`keepalive ping failed: ${err.message}`);
      } else if (!err) this.#heardAt = Date.now();
    };
    try {
      if (!this.#session.ping(settle)) settle(new Error("ping not sent"));
    } catch (e) {
      settle(e as Error);
    }
  }
}
