/**
 * TLS with a client certificate through node:tls, adapted to what the HTTP/2 session reads
 * and writes: Deno's own TLS takes a client certificate only in `Deno.connectTls`, which
 * cannot turn Nagle's algorithm off (see h2_dial.ts).
 */

import { isIP } from "node:net";
import tls from "node:tls";
import type { H2Conn, H2Target } from "./h2_dial.ts";

export const ALPN_REFUSED = "the server did not agree to HTTP/2 (ALPN h2)";

/** Connect and finish the handshake (its errors are node's, which explain.ts knows). */
export function nodeTls(target: H2Target): Promise<H2Conn> {
  const { hostname, port } = target;
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: hostname,
      port,
      // SNI takes names only (RFC 6066); an IP address is still verified against the cert.
      servername: isIP(hostname) ? undefined : hostname,
      ca: target.tls?.ca,
      cert: target.tls?.cert,
      key: target.tls?.key,
      ALPNProtocols: ["h2"],
    });
    socket.setNoDelay(true);
    socket.once("error", reject);
    socket.once("secureConnect", () => {
      socket.off("error", reject);
      if (socket.alpnProtocol !== "h2") {
        socket.destroy();
        return reject(new Error(ALPN_REFUSED));
      }
      resolve(new NodeConn(socket));
    });
  });
}

class NodeConn implements H2Conn {
  readonly #socket: tls.TLSSocket;
  #chunks: Uint8Array[] = [];
  #ended = false;
  #error?: Error;
  #wake?: () => void;

  constructor(socket: tls.TLSSocket) {
    this.#socket = socket;
    const wake = () => this.#wake?.();
    socket.on("data", (b: Uint8Array) => {
      this.#chunks.push(b);
      wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      wake();
    });
    socket.on("error", (e: Error) => {
      this.#error ??= e;
      wake();
    });
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
    let n = 0;
    while (n < p.length && this.#chunks.length > 0) {
      const c = this.#chunks[0];
      const take = Math.min(c.length, p.length - n);
      p.set(c.subarray(0, take), n);
      n += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#socket.write(p, (err) => (err ? reject(err) : resolve(p.length)));
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }
}
