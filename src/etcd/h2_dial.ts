/**
 * The connection under an HTTP/2 session: TCP (h2c, prior knowledge) or TLS with ALPN "h2",
 * and the queue its frames are written from.
 */

import { concat } from "./h2_frames.ts";
import { ALPN_REFUSED, nodeTls } from "./h2_node_tls.ts";

export interface H2Target {
  hostname: string;
  port: number;
  /** Present for TLS: PEM text of the CA bundle, client certificate and key. */
  tls?: { ca?: string; cert?: string; key?: string };
}

/** What a session needs of its connection: a `Deno.Conn`, or node:tls's socket adapted. */
export interface H2Conn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
  ref(): void;
  unref(): void;
}

/**
 * Connect, and for TLS finish the handshake here: a certificate either side rejects then
 * fails the connection with the TLS library's reason, which explain.ts recognizes.
 *
 * TCP_NODELAY matters: Deno's TLS writes each record (16 KiB at most) in its own send, and
 * with Nagle's algorithm a request of two records waits for etcd's delayed ACK (40 ms on
 * loopback). `Deno.connectTls` cannot set it, so TLS starts on a TCP connection that has it;
 * `Deno.startTls` takes no client certificate, so with one node:tls (which sets it) is used.
 */
export async function dial(target: H2Target): Promise<H2Conn> {
  const { hostname, port, tls } = target;
  if (tls?.cert && tls.key) return await nodeTls(target);
  const tcp = await Deno.connect({ hostname, port });
  tcp.setNoDelay(true);
  if (!tls) return tcp;
  try {
    const conn = await Deno.startTls(tcp, {
      hostname,
      caCerts: tls.ca ? [tls.ca] : undefined,
      alpnProtocols: ["h2"],
    });
    const { alpnProtocol } = await conn.handshake();
    if (alpnProtocol !== "h2") throw new Error(ALPN_REFUSED);
    return conn;
  } catch (e) {
    tcp.close();
    throw e;
  }
}

/**
 * Frames queued in one tick leave in one `write` (requests issued together, their HEADERS and
 * DATA), one batch at a time; what is queued before the connection is up waits for it.
 */
export class FrameWriter {
  readonly #failed: (e: Error) => void;
  #conn?: H2Conn;
  #queue: Uint8Array[] = [];
  #scheduled = false;
  #writing = false;

  constructor(failed: (e: Error) => void) {
    this.#failed = failed;
  }

  start(conn: H2Conn): void {
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
        const buf = concat(parts);
        for (let at = 0; at < buf.length;) at += await conn.write(buf.subarray(at));
      }
    } catch (e) {
      this.#queue = [];
      this.#failed(e as Error);
    }
    this.#writing = false;
  }
}
