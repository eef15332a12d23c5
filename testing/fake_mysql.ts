/**
 * A hand-built MySQL server for one connection, for what no server here speaks (MySQL 8's
 * caching_sha2_password, COM_BINLOG_DUMP_GTID). Packets follow the MySQL protocol
 * documentation: Protocol::HandshakeV10, HandshakeResponse41, OK and ERR packets.
 */
const enc = new TextEncoder();

/** The 20-byte nonce every handshake here sends. */
export const NONCE: Uint8Array = enc.encode("abcdefghijklmnopqrst");

export function packet(seq: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  out[0] = body.length & 0xff;
  out[1] = (body.length >> 8) & 0xff;
  out[2] = body.length >> 16;
  out[3] = seq;
  out.set(body, 4);
  return out;
}

/** Protocol::HandshakeV10 offering `plugin` (caching_sha2_password by default), no TLS. */
export function handshake(plugin = "caching_sha2_password"): Uint8Array {
  const caps = 0x1 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x20000 | 0x80000 | 0x200000;
  return new Uint8Array([
    10,
    ...enc.encode("8.0.36"),
    0,
    1,
    0,
    0,
    0, // connection id
    ...NONCE.subarray(0, 8),
    0, // filler
    caps & 0xff,
    (caps >> 8) & 0xff,
    255, // utf8mb4_0900_ai_ci
    2,
    0, // status: autocommit
    (caps >> 16) & 0xff,
    (caps >> 24) & 0xff,
    21, // auth-plugin-data length
    ...new Uint8Array(10),
    ...NONCE.subarray(8),
    0,
    ...enc.encode(plugin),
    0,
  ]);
}

export const OK: Uint8Array = new Uint8Array([0x00, 0, 0, 2, 0, 0, 0]);

export function err1045(): Uint8Array {
  return new Uint8Array([
    0xff,
    0x15,
    0x04,
    ...enc.encode("#28000"),
    ...enc.encode("Access denied for user 'app'@'localhost' (using password: YES)"),
  ]);
}

/** Reads whole packets from one accepted connection. */
export class Peer {
  #buf: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  constructor(readonly conn: Deno.Conn) {}
  async read(): Promise<{ seq: number; body: Uint8Array<ArrayBuffer> }> {
    for (;;) {
      if (this.#buf.length >= 4) {
        const len = this.#buf[0] | (this.#buf[1] << 8) | (this.#buf[2] << 16);
        if (this.#buf.length >= 4 + len) {
          const p = { seq: this.#buf[3], body: this.#buf.slice(4, 4 + len) };
          this.#buf = this.#buf.slice(4 + len);
          return p;
        }
      }
      const chunk = new Uint8Array(65536);
      const n = await this.conn.read(chunk);
      if (n === null) throw new Error("client closed");
      const next = new Uint8Array(this.#buf.length + n);
      next.set(this.#buf);
      next.set(chunk.subarray(0, n), this.#buf.length);
      this.#buf = next;
    }
  }
  async write(seq: number, body: Uint8Array): Promise<void> {
    await this.conn.write(packet(seq, body));
  }
}

/** The auth response of a HandshakeResponse41 (after flags, max packet, charset, user). */
export function authOf(body: Uint8Array): { user: string; auth: Uint8Array; plugin: string } {
  let i = 32;
  const userEnd = body.indexOf(0, i);
  const user = new TextDecoder().decode(body.subarray(i, userEnd));
  i = userEnd + 1;
  const len = body[i++]; // lenenc, < 251 here
  const auth = body.slice(i, i + len);
  i += len;
  const flags = new DataView(body.buffer, body.byteOffset).getUint32(0, true);
  if (flags & 0x8) i = body.indexOf(0, i) + 1; // database
  const plugin = new TextDecoder().decode(body.subarray(i, body.indexOf(0, i)));
  return { user, auth, plugin };
}

/** Serve one connection with `script` on a free loopback port; `done` ends with it. */
export function serve(
  script: (peer: Peer) => Promise<void>,
): { port: number; done: Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const done = (async () => {
    const conn = await listener.accept();
    listener.close();
    try {
      await script(new Peer(conn));
    } finally {
      conn.close();
    }
  })();
  return { port, done };
}
