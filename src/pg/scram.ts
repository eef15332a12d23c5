/** SCRAM-SHA-256 client side (RFC 5802/7677), channel binding off, via WebCrypto. */

const enc = new TextEncoder();
const dec = new TextDecoder();

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}
function unb64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data as Uint8Array<ArrayBuffer>));
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
}

async function pbkdf2(password: string, salt: Uint8Array, iterations: number) {
  const k = await crypto.subtle.importKey("raw", enc.encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  return new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: salt as Uint8Array<ArrayBuffer>, iterations },
      k,
      256,
    ),
  );
}

export class ScramClient {
  readonly #nonce: string;
  readonly #password: string;
  #firstBare = "";
  #serverSignature?: Uint8Array;

  constructor(password: string) {
    this.#password = password;
    this.#nonce = b64(crypto.getRandomValues(new Uint8Array(18)));
  }

  /** client-first-message ("n,,n=,r=<nonce>"); PostgreSQL ignores the user name here. */
  first(): Uint8Array {
    this.#firstBare = `n=,r=${this.#nonce}`;
    return enc.encode(`n,,${this.#firstBare}`);
  }

  /** client-final-message, from the server-first-message. */
  async final(serverFirst: Uint8Array): Promise<Uint8Array> {
    const sf = dec.decode(serverFirst);
    const attrs = new Map(sf.split(",").map((p) => [p[0], p.slice(2)]));
    const nonce = attrs.get("r") ?? "";
    const salt = attrs.get("s");
    const iterations = Number(attrs.get("i"));
    if (!nonce.startsWith(this.#nonce) || !salt || !(iterations > 0)) {
      throw new Error("SCRAM: invalid server-first-message");
    }
    const salted = await pbkdf2(this.#password, unb64(salt), iterations);
    const clientKey = await hmac(salted, enc.encode("Client Key"));
    const storedKey = await sha256(clientKey);
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = enc.encode(`${this.#firstBare},${sf},${withoutProof}`);
    const clientSig = await hmac(storedKey, authMessage);
    const proof = clientKey.map((b, i) => b ^ clientSig[i]);
    const serverKey = await hmac(salted, enc.encode("Server Key"));
    this.#serverSignature = await hmac(serverKey, authMessage);
    return enc.encode(`${withoutProof},p=${b64(proof)}`);
  }

  /** Check the server-final-message's signature (mutual authentication). */
  verify(serverFinal: Uint8Array): void {
    const sf = dec.decode(serverFinal);
    const v = /(?:^|,)v=([^,]*)/.exec(sf)?.[1];
    if (!v || !this.#serverSignature || b64(this.#serverSignature) !== v) {
      throw new Error("SCRAM: the server's signature does not match (not the real server?)");
    }
  }
}

/** md5 password hash: "md5" + md5(md5(password + user) + salt). */
export async function md5Password(user: string, password: string, salt: Uint8Array) {
  const inner = hex(await md5(enc.encode(password + user)));
  const outer = new Uint8Array([...enc.encode(inner), ...salt]);
  return "md5" + hex(await md5(outer));
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// WebCrypto has no MD5; node:crypto does (Deno's Node compatibility layer).
async function md5(data: Uint8Array): Promise<Uint8Array> {
  const { createHash } = await import("node:crypto");
  return new Uint8Array(createHash("md5").update(data).digest());
}
