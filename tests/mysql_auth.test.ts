/**
 * caching_sha2_password (MySQL 8's default) against a hand-built server, since no MySQL
 * server is installable here. The server side follows the MySQL protocol documentation
 * ("Protocol::HandshakeV10", "Protocol::HandshakeResponse41", "caching_sha2_password"
 * fast and full authentication) and checks the client's bytes with its own WebCrypto code:
 * - fast path: scramble = SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || nonce), then
 *   `01 03` (fast auth success) and OK;
 * - full authentication without TLS: `01 04`, the client asks for the public key (`02`),
 *   gets a PEM, and sends RSA-OAEP(SHA-1) of (password NUL) XOR nonce;
 * - a wrong password: ERR 1045 becomes a MysqlError that does not contain the password.
 */
import { assert, assertEquals, assertRejects } from "./harness/assert.ts";
import { MysqlConn, MysqlError } from "../src/mysql/conn.ts";

const enc = new TextEncoder();
const NONCE = enc.encode("abcdefghijklmnopqrst"); // 20 bytes, as servers send
const PASSWORD = "sha2-Secret!";

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}

async function expectedScramble(password: string): Promise<Uint8Array> {
  const p1 = await sha256(enc.encode(password));
  const p3 = await sha256(await sha256(p1), NONCE);
  return p1.map((b, i) => b ^ p3[i]);
}

function packet(seq: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  out[0] = body.length & 0xff;
  out[1] = (body.length >> 8) & 0xff;
  out[2] = body.length >> 16;
  out[3] = seq;
  out.set(body, 4);
  return out;
}

/** Protocol::HandshakeV10 offering caching_sha2_password, without TLS. */
function handshake(): Uint8Array {
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
    ...enc.encode("caching_sha2_password"),
    0,
  ]);
}

const OK = new Uint8Array([0x00, 0, 0, 2, 0, 0, 0]);

function err1045(): Uint8Array {
  return new Uint8Array([
    0xff,
    0x15,
    0x04,
    ...enc.encode("#28000"),
    ...enc.encode("Access denied for user 'app'@'localhost' (using password: YES)"),
  ]);
}

/** Reads whole packets from one accepted connection. */
class Peer {
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
  async write(seq: number, body: Uint8Array) {
    await this.conn.write(packet(seq, body));
  }
}

/** The auth response of a HandshakeResponse41 (after flags, max packet, charset, user). */
function authOf(body: Uint8Array): { user: string; auth: Uint8Array; plugin: string } {
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

/** Serve one connection with `script`, returning what it observed. */
async function serve(
  script: (peer: Peer) => Promise<void>,
): Promise<{ port: number; done: Promise<void> }> {
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

const connect = (port: number, password = PASSWORD) =>
  MysqlConn.connect({
    host: "127.0.0.1",
    port,
    user: "app",
    password,
    database: "db",
    sslMode: "DISABLED",
  });

Deno.test("caching_sha2_password: fast path scramble, byte for byte", async () => {
  const want = await expectedScramble(PASSWORD);
  let seen: ReturnType<typeof authOf> | undefined;
  const { port, done } = await serve(async (peer) => {
    await peer.write(0, handshake());
    const resp = await peer.read();
    assertEquals(resp.seq, 1);
    seen = authOf(resp.body);
    await peer.write(2, new Uint8Array([0x01, 0x03])); // fast auth success
    await peer.write(3, OK);
    await peer.read().catch(() => {}); // COM_QUIT or close
  });
  const c = await connect(port);
  assertEquals(c.serverVersion, "8.0.36");
  c.close();
  await done;
  assertEquals(seen!.user, "app");
  assertEquals(seen!.plugin, "caching_sha2_password");
  assertEquals([...seen!.auth], [...want]);
});

Deno.test("caching_sha2_password: full authentication with the server's RSA key", async () => {
  const keys = await crypto.subtle.generateKey(
    {
      name: "RSA-OAEP",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-1",
    },
    true,
    ["encrypt", "decrypt"],
  );
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const b64 = btoa(String.fromCharCode(...spki)).replace(/.{64}/g, "$&\n");
  const pem = `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`;
  let plain: Uint8Array | undefined;
  const { port, done } = await serve(async (peer) => {
    await peer.write(0, handshake());
    await peer.read();
    await peer.write(2, new Uint8Array([0x01, 0x04])); // perform full authentication
    const ask = await peer.read();
    assertEquals([...ask.body], [0x02], "client asks for the public key");
    await peer.write(4, new Uint8Array([0x01, ...enc.encode(pem)]));
    const sealed = await peer.read();
    plain = new Uint8Array(
      await crypto.subtle.decrypt(
        { name: "RSA-OAEP" },
        keys.privateKey,
        new Uint8Array(sealed.body),
      ),
    );
    await peer.write(6, OK);
    await peer.read().catch(() => {});
  });
  const c = await connect(port);
  c.close();
  await done;
  const clear = plain!.map((b, i) => b ^ NONCE[i % NONCE.length]);
  assertEquals(new TextDecoder().decode(clear), PASSWORD + "\0");
});

Deno.test("caching_sha2_password: a wrong password is ERR 1045 without the password", async () => {
  const want = await expectedScramble(PASSWORD);
  const { port, done } = await serve(async (peer) => {
    await peer.write(0, handshake());
    const { auth } = authOf((await peer.read()).body);
    const same = auth.length === want.length && auth.every((b, i) => b === want[i]);
    assert(!same, "a different password gives a different scramble");
    await peer.write(2, err1045());
  });
  const e = await assertRejects(() => connect(port, "not-the-password"), MysqlError);
  await done;
  assertEquals((e as MysqlError).code, 1045);
  assert(!String(e.message).includes("not-the-password"), e.message);
});
