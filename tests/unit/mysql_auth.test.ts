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
import { test } from "../../testing/deadline.ts";
import { assert, assertEquals, assertRejects } from "../../testing/assert.ts";
import { MysqlConn, MysqlError } from "../../src/mysql/conn.ts";
import { authOf, err1045, handshake, NONCE, OK, serve } from "../../testing/fake_mysql.ts";

const enc = new TextEncoder();
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

const connect = (port: number, password = PASSWORD) =>
  MysqlConn.connect({
    host: "127.0.0.1",
    port,
    user: "app",
    password,
    database: "db",
    sslMode: "DISABLED",
  });

test("caching_sha2_password: fast path scramble, byte for byte", async () => {
  const want = await expectedScramble(PASSWORD);
  let seen: ReturnType<typeof authOf> | undefined;
  const { port, done } = serve(async (peer) => {
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

test("caching_sha2_password: full authentication with the server's RSA key", async () => {
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
  const { port, done } = serve(async (peer) => {
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

test("caching_sha2_password: a wrong password is ERR 1045 without the password", async () => {
  const want = await expectedScramble(PASSWORD);
  const { port, done } = serve(async (peer) => {
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
