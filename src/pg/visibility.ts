/**
 * PostgreSQL logs a commit before the transaction becomes visible (and waits in between for
 * synchronous standbys), so the stream can pass a transaction that a query started just
 * after cannot see yet. A snapshot chunk read in that moment would write rows older than
 * the stream's: the chunk reader checks its snapshot against the transactions the stream
 * has passed, and reads again until none of them is still in progress in it.
 */

/** Transaction IDs the stream has seen commit, the most recent ones. */
export class RecentXids {
  readonly #ring: number[];
  readonly #set = new Set<number>();
  #at = 0;

  constructor(size = 8192) {
    this.#ring = new Array<number>(size).fill(-1);
  }

  add(xid: number): void {
    const old = this.#ring[this.#at];
    if (old >= 0) this.#set.delete(old);
    this.#ring[this.#at] = xid;
    this.#set.add(xid);
    this.#at = (this.#at + 1) % this.#ring.length;
  }

  has(xid: number): boolean {
    return this.#set.has(xid);
  }
}

/**
 * Whether a snapshot (`txid_current_snapshot()` text: `xmin:xmax:xip,...`, 64-bit IDs)
 * still sees as in progress a transaction the stream has seen commit.
 */
export function missesCommitted(snapshot: string, recent: RecentXids): boolean {
  const xip = snapshot.split(":")[2] ?? "";
  if (!xip) return false;
  // pgoutput carries the 32-bit ID; the snapshot the epoch-extended one.
  return xip.split(",").some((x) => recent.has(Number(BigInt(x) & 0xffffffffn)));
}
