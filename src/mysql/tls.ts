/**
 * TLS for the MySQL client: Deno's own when the certificate is to be checked, node:tls
 * over the same socket when it is not (Deno.startTls always checks the chain).
 */
import * as nodeTls from "node:tls";
import { Duplex } from "node:stream";
import { ConfigError, setting } from "../core/errors.ts";
import type { MysqlSslMode } from "./url.ts";

/** What the client reads and writes: a TCP connection, or TLS over it. */
export interface Transport {
  read(b: Uint8Array): Promise<number | null>;
  write(b: Uint8Array): Promise<number>;
  close(): void;
}

/**
 * TLS over the connected socket. VERIFY_IDENTITY checks the chain and the host name,
 * VERIFY_CA the chain only (both with ssl-ca added to the system roots); PREFERRED and
 * REQUIRED encrypt without checking the certificate, as MySQL clients do (Deno.startTls
 * always checks the chain, so those go through node:tls).
 */
export async function startTls(
  tcp: Deno.TcpConn,
  o: { host: string; port: number; sslMode: MysqlSslMode; sslCa?: string },
): Promise<Transport> {
  let caCerts: string[] | undefined;
  if (o.sslCa) {
    try {
      caCerts = [await Deno.readTextFile(o.sslCa)];
    } catch (e) {
      throw new ConfigError(`cannot read ssl-ca ${o.sslCa}: ${(e as Error).message}`);
    }
  }
  try {
    if (o.sslMode === "VERIFY_CA" || o.sslMode === "VERIFY_IDENTITY") {
      const tls = await Deno.startTls(tcp, {
        hostname: o.host,
        caCerts,
        unsafelyDisableHostnameVerification: o.sslMode === "VERIFY_CA",
      });
      await tls.handshake();
      return tls;
    }
    return await NodeTlsTransport.start(tcp);
  } catch (e) {
    throw new ConfigError(
      `TLS to ${o.host}:${o.port} failed: ${(e as Error).message.split("\n")[0]} ` +
        `(give the CA with ssl-ca=<file> in ${setting("dbUrl")}, or ssl-mode=DISABLED)`,
    );
  }
}

/** node:tls without certificate checks, over a Deno TCP connection. */
class NodeTlsTransport implements Transport {
  #chunks: Uint8Array[] = [];
  #ended = false;
  #error?: Error;
  #wake?: () => void;

  private constructor(readonly tls: nodeTls.TLSSocket, readonly tcp: Deno.TcpConn) {
    tls.on("data", (b: Uint8Array) => {
      this.#chunks.push(b);
      this.#notify();
    });
    tls.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    tls.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
    tls.on("error", (e: Error) => {
      this.#error ??= e;
      this.#notify();
    });
  }

  #notify() {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  static async start(tcp: Deno.TcpConn): Promise<NodeTlsTransport> {
    const duplex = new Duplex({
      read() {
        const b = new Uint8Array(64 * 1024);
        tcp.read(b).then(
          (n) => this.push(n === null ? null : b.subarray(0, n)),
          (e) => this.destroy(e),
        );
      },
      write(chunk: Uint8Array, _enc, cb) {
        (async () => {
          let w = 0;
          while (w < chunk.length) w += await tcp.write(chunk.subarray(w));
        })().then(() => cb(), cb);
      },
    });
    const tls = nodeTls.connect({ socket: duplex, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      tls.once("secureConnect", () => resolve());
      tls.once("error", reject);
    });
    return new NodeTlsTransport(tls, tcp);
  }

  async read(b: Uint8Array): Promise<number | null> {
    while (!this.#chunks.length) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((r) => this.#wake = r);
    }
    const c = this.#chunks[0];
    const n = Math.min(c.length, b.length);
    b.set(c.subarray(0, n));
    if (n === c.length) this.#chunks.shift();
    else this.#chunks[0] = c.subarray(n);
    return n;
  }

  write(b: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    const copy = b.slice();
    return new Promise((resolve, reject) => {
      this.tls.write(copy, (e?: Error | null) => e ? reject(e) : resolve(copy.length));
    });
  }

  close(): void {
    this.#ended = true;
    this.tls.destroy();
    try {
      this.tcp.close();
    } catch { /* closed */ }
    this.#notify();
  }
}
