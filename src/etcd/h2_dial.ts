/**
 * The connection under an HTTP/2 session: TCP (h2c, prior knowledge) or TLS with ALPN "h2",
 * and the queue its frames are written from.
 */

import { concat } from "./h2_frames.ts";

export interface H2Target {
  hostname: string;
  port: number;
  /** Present for TLS: PEM text of the CA bundle, client certificate and key. */
  tls?: { ca?: string; cert?: string; key?: string };
}

/**
 * Connect, and for TLS finish the handshake here: a certificate either side rejects then
 * fails the connection with the TLS library's reason, which explain.ts recognizes.
 */
export async function dial(target: H2Target): Promise<Deno.Conn> {
  const { hostname, port, tls } = target;
  if (!tls) {
    const conn = await Deno.connect({ hostname, port });
    conn.setNoDelay(true); // requests and answers are small: no Nagle delay
    return conn;
  }
  const conn = await Deno.connectTls({
    hostname,
    port,
    caCerts: tls.ca ? [tls.ca] : undefined,
    ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
    alpnProtocols: ["h2"],
  });
  try {
    const { alpnProtocol } = await conn.handshake();
    if (alpnProtocol !== "h2") throw new Error("the server did not agree to HTTP/2 (ALPN h2)");
  } catch (e) {
    conn.close();
    throw e;
  }
  return conn;
}

/**
 * Frames queued in one tick leave in one `write` (requests issued together, their HEADERS and
 * DATA), one batch at a time; what is queued before the connection is up waits for it.
 */
export class FrameWriter {
  readonly #failed: (e: Error) => void;
  #conn?: Deno.Conn;
  #queue: Uint8Array[] = [];
  #scheduled = false;
  #writing = false;

  constructor(failed: (e: Error) => void) {
    this.#failed = failed;
  }

  start(conn: Deno.Conn): void {
    this.#conn = conn;
    this.#pump();
  }

  send(bytes: Uint8Array): void {
    this.#queue.push(bytes);
    if (this.#scheduled || this.#writing) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  async #pump(): Promise<void> {
    const conn = this.#conn;
    if (!conn || this.#writing) return;
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const parts = this.#queue;
        this.#queue = [];
        const buf = parts.length === 1 ? parts[0] : concat(parts);
        for (let at = 0; at < buf.length;) at += await conn.write(buf.subarray(at));
      }
    } catch (e) {
      this.#queue = [];
      this.#failed(e as Error);
    }
    this.#writing = false;
  }
}
