/**
 * A TCP proxy between sync and the database that can break connections on demand: drop
 * them all at once, or forward only part of the next server chunk and then close (a
 * connection cut mid-message).
 */
interface Pair {
  client: Deno.TcpConn;
  upstream: Deno.TcpConn | undefined;
  /** Cut after forwarding part of the next server→client chunk. */
  truncate: boolean;
  closed: boolean;
}

export class FaultProxy {
  readonly port: number;
  #listener: Deno.TcpListener;
  #pairs = new Set<Pair>();
  #targetPort: number;
  #cutRandom: () => number;
  /** Connections accepted (for the log). */
  accepted = 0;

  /** `random` decides where a truncated chunk ends (seeded by the caller). */
  constructor(targetPort: number, random: () => number) {
    this.#targetPort = targetPort;
    this.#cutRandom = random;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accept();
  }

  /** Point at another server port (the database restarted elsewhere). */
  retarget(port: number): void {
    this.#targetPort = port;
  }

  get connections(): number {
    return this.#pairs.size;
  }

  async #accept() {
    try {
      for await (const client of this.#listener) {
        this.accepted++;
        const pair: Pair = { client, upstream: undefined, truncate: false, closed: false };
        this.#pairs.add(pair);
        Deno.connect({ hostname: "127.0.0.1", port: this.#targetPort }).then((up) => {
          if (pair.closed) return up.close();
          pair.upstream = up;
          this.#pump(pair, client, up, false);
          this.#pump(pair, up, client, true);
        }, () => this.#close(pair));
      }
    } catch { /* listener closed */ }
  }

  async #pump(pair: Pair, from: Deno.TcpConn, to: Deno.TcpConn, fromServer: boolean) {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null || pair.closed) break;
        if (fromServer && pair.truncate && n > 1) {
          const keep = 1 + Math.floor(this.#cutRandom() * (n - 1));
          await writeAll(to, buf.subarray(0, keep));
          break;
        }
        await writeAll(to, buf.subarray(0, n));
      }
    } catch { /* either side went away */ }
    this.#close(pair);
  }

  #close(pair: Pair) {
    if (pair.closed) return;
    pair.closed = true;
    this.#pairs.delete(pair);
    for (const c of [pair.client, pair.upstream]) {
      try {
        c?.close();
      } catch { /* already closed */ }
    }
  }

  /** Drop every connection now; returns how many. */
  cutAll(): number {
    const n = this.#pairs.size;
    for (const p of [...this.#pairs]) this.#close(p);
    return n;
  }

  /** Cut every open connection in the middle of the next chunk the server sends. */
  truncateAll(): number {
    for (const p of this.#pairs) p.truncate = true;
    return this.#pairs.size;
  }

  close(): void {
    try {
      this.#listener.close();
    } catch { /* closed */ }
    this.cutAll();
  }
}

async function writeAll(c: Deno.TcpConn, b: Uint8Array) {
  let off = 0;
  while (off < b.length) off += await c.write(b.subarray(off));
}
