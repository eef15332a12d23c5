/**
 * Keepalive for one HTTP/2 connection to etcd. While requests wait and nothing came back for
 * a moment:
 * - an HTTP/2 PING must be answered within a deadline, or the connection is given up (its
 *   requests fail and the client tries another member). A frozen member (SIGSTOP, a hung
 *   disk) keeps its TCP connection open and never answers: without this a request would
 *   wait out its whole deadline (--etcd-timeout).
 * - the member is asked for its raft term: requests sent before the term changed wait for
 *   a proposal the old leader took with it, which etcd answers only after its own request
 *   timeout (7 s with default flags). They are given up as "leader changed" and retried.
 *
 * Pings go only while requests wait, at most one per `minIntervalMs`: etcd's gRPC server
 * (--grpc-keepalive-min-time, default 5 s) closes connections that ping more often or with no
 * request open (`too_many_pings`).
 */

/** How often the raft term is asked while requests wait in silence. */
const TERM_EVERY_MS = 1_000;

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

/** What the watch needs of a session: an HTTP/2 `ping`, and whether it is gone. */
export interface Pingable {
  ping(callback: (err: Error | null) => void): boolean;
  readonly destroyed: boolean;
}

/** A request on the connection, as the watch sees it. */
export interface Waiting {
  readonly since: number;
  /** The raft term when it was sent (0: none heard yet on this connection). */
  term: number;
  /** Fail it with a reason to try again. */
  abandon(why: string): void;
}

export interface WatchHooks {
  /** Give the connection up (once) with the reason. */
  dead(why: string): void;
  /**
   * The member's current raft term (etcd's Status), asked on the same connection; its
   * answer must not count as heard (it would hide the silence it is asked about).
   */
  term?(): Promise<number>;
}

export class ConnectionWatch {
  readonly #session: Pingable;
  readonly #s: KeepaliveSettings;
  readonly #hooks: WatchHooks;
  readonly #waiting = new Set<Waiting>();
  /** When something last arrived, or requests started waiting on a silent connection. */
  #heardAt = 0;
  /** The highest raft term an answer on this connection carried. */
  #term = 0;
  #pingAt = -Infinity;
  #pinging = false;
  #askedAt = -Infinity;
  #asking = false;
  #timer?: ReturnType<typeof setInterval>;

  constructor(session: Pingable, hooks: WatchHooks, s: KeepaliveSettings = KEEPALIVE) {
    this.#session = session;
    this.#hooks = hooks;
    this.#s = s;
  }

  /** A request was sent. */
  begin(abandon: (why: string) => void): Waiting {
    const w: Waiting = { since: Date.now(), term: this.#term, abandon };
    if (this.#waiting.size === 0) {
      this.#heardAt = Date.now();
      const every = Math.max(100, Math.min(500, this.#s.quietMs / 2));
      this.#timer = setInterval(() => this.#tick(), every);
      Deno.unrefTimer(this.#timer);
    }
    this.#waiting.add(w);
    return w;
  }

  /** Something arrived for a request (headers, data, trailers), with its raft term if known. */
  heard(term = 0): void {
    this.#heardAt = Date.now();
    if (term > this.#term) this.#term = term;
  }

  /** A request ended. */
  end(w: Waiting): void {
    this.#waiting.delete(w);
    if (this.#waiting.size === 0) this.stop();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const now = Date.now();
    if (this.#session.destroyed) return this.stop();
    const quiet = now - this.#heardAt >= this.#s.quietMs;
    if (quiet && !this.#pinging && now - this.#pingAt >= this.#s.minIntervalMs) {
      this.#pinging = true;
      this.#pingAt = now;
      this.#ping();
    }
    // The term is judged per request (others may be answered meanwhile), and asked as an
    // ordinary request, not limited like pings: every second while a request is young, so
    // one an election left waiting goes soon after the election; then less often (a
    // campaign waits for minutes).
    const ask = this.#hooks.term;
    let oldest = now;
    for (const w of this.#waiting) oldest = Math.min(oldest, w.since);
    const age = now - oldest;
    const every = age < 10_000 ? TERM_EVERY_MS : this.#s.minIntervalMs;
    if (ask && age >= this.#s.quietMs && !this.#asking && now - this.#askedAt >= every) {
      this.#asking = true;
      this.#askedAt = now;
      this.#checkTerm(ask).finally(() => (this.#asking = false));
    }
  }

  #ping(): void {
    let answered = false;
    const late = setTimeout(() => {
      if (answered) return;
      this.stop();
      this.#hooks.dead(`no answer to a keepalive ping within ${this.#s.timeoutMs} ms`);
    }, this.#s.timeoutMs);
    Deno.unrefTimer(late);
    const settle = (err: Error | null) => {
      if (answered) return;
      answered = true;
      clearTimeout(late);
      this.#pinging = false;
      if (err && !this.#session.destroyed) {
        this.stop();
        this.#hooks.dead(`keepalive ping failed: ${err.message}`);
      }
    };
    try {
      if (!this.#session.ping(settle)) settle(new Error("ping not sent"));
    } catch (e) {
      settle(e as Error);
    }
  }

  /** Give up the requests sent before the member's raft term moved on. */
  async #checkTerm(ask: () => Promise<number>): Promise<void> {
    let term: number;
    try {
      term = await ask();
    } catch {
      return; // a member that does not answer is the ping's to judge
    }
    const now = Date.now();
    for (const w of [...this.#waiting]) {
      // Sent before any answer told the term: judged against this one from now on.
      if (w.term === 0) w.term = term;
      else if (term > w.term && now - w.since >= this.#s.quietMs) {
        w.abandon(`etcd's leader changed (raft term ${w.term} to ${term}) while it waited`);
      }
    }
    if (term > this.#term) this.#term = term;
  }
}
