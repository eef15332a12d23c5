/**
 * Authentication plugin responses: mysql_native_password, caching_sha2_password (scramble,
 * and the RSA-OAEP sealed password of full authentication), MariaDB's client_ed25519.
 * The password only ever leaves in clear over TLS (caching_sha2 full auth, dialog-free).
 */
import { createHash } from "node:crypto";

const enc = new TextEncoder();

export const SUPPORTED_PLUGINS = [
  "mysql_native_password",
  "caching_sha2_password",
  "client_ed25519",
] as const;

/** An authentication plugin this client does not speak (a configuration problem). */
export class UnsupportedAuthError extends Error {
  override name = "UnsupportedAuthError";
  constructor(readonly plugin: string) {
    super(
      `unsupported MySQL authentication plugin ${plugin} (supported: ${
        SUPPORTED_PLUGINS.join(", ")
      })`,
    );
  }
}

function hash(alg: "sha1" | "sha256" | "sha512", ...parts: Uint8Array[]): Uint8Array {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  return a.map((x, i) => x ^ b[i % b.length]);
}

/** The auth response for `plugin` given the server's nonce (empty for an empty password). */
export function scramblePassword(plugin: string, password: string, nonce: Uint8Array): Uint8Array {
  if (plugin === "client_ed25519") return ed25519Sign(nonce, enc.encode(password));
  if (!password) return new Uint8Array(0);
  const pw = enc.encode(password);
  if (plugin === "caching_sha2_password") {
    // XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)), nonce))
    const p1 = hash("sha256", pw);
    return xor(p1, hash("sha256", hash("sha256", p1), nonce));
  }
  if (plugin === "mysql_native_password") {
    // XOR(SHA1(pw), SHA1(nonce, SHA1(SHA1(pw))))
    const p1 = hash("sha1", pw);
    return xor(p1, hash("sha1", nonce, hash("sha1", p1)));
  }
  throw new UnsupportedAuthError(plugin);
}

/**
 * caching_sha2_password full authentication without TLS: the NUL-terminated password XOR
 * the nonce, sealed with the server's RSA public key (PEM, SPKI) using RSA-OAEP SHA-1.
 */
export async function rsaSealPassword(
  pem: string,
  password: string,
  nonce: Uint8Array,
): Promise<Uint8Array> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const der = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey(
      "spki",
      der,
      { name: "RSA-OAEP", hash: "SHA-1" },
      false,
      ["encrypt"],
    );
  } catch (e) {
    throw new Error(`cannot read the server's RSA public key: ${(e as Error).message}`);
  }
  const plain = new Uint8Array(xor(enc.encode(password + "\0"), nonce));
  return new Uint8Array(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, key, plain));
}

// --- Ed25519 (RFC 8032) over BigInt, for MariaDB's client_ed25519 ---
// MariaDB derives the secret scalar from SHA-512 of the whole password (any length), not
// from a 32-byte seed, so WebCrypto's Ed25519 cannot be used.

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const D = mod(-121665n * inv(121666n));
const BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202n;
const BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960n;

type Point = [bigint, bigint, bigint, bigint]; // extended coordinates X, Y, Z, T

function mod(a: bigint, m = P): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

function pow(b: bigint, e: bigint, m = P): bigint {
  let r = 1n;
  b = mod(b, m);
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

function inv(a: bigint): bigint {
  return pow(a, P - 2n);
}

function add(p: Point, q: Point): Point {
  const [x1, y1, z1, t1] = p;
  const [x2, y2, z2, t2] = q;
  const a = mod((y1 - x1) * (y2 - x2));
  const b = mod((y1 + x1) * (y2 + x2));
  const c = mod(2n * D * t1 * t2);
  const d = mod(2n * z1 * z2);
  const e = b - a, f = d - c, g = d + c, h = b + a;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

function mul(s: bigint, p: Point): Point {
  let r: Point = [0n, 1n, 1n, 0n];
  let q = p;
  while (s > 0n) {
    if (s & 1n) r = add(r, q);
    q = add(q, q);
    s >>= 1n;
  }
  return r;
}

function encodePoint(p: Point): Uint8Array {
  const zi = inv(p[2]);
  const x = mod(p[0] * zi);
  const y = mod(p[1] * zi);
  const out = leBytes(y, 32);
  if (x & 1n) out[31] |= 0x80;
  return out;
}

function leBytes(n: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

function leNum(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]);
  return n;
}

const BASE: Point = [BX, BY, 1n, mod(BX * BY)];

/** MariaDB client_ed25519: the Ed25519 signature of the nonce, keyed by SHA-512(password). */
export function ed25519Sign(message: Uint8Array, password: Uint8Array): Uint8Array {
  const az = hash("sha512", password);
  const a32 = az.slice(0, 32);
  a32[0] &= 248;
  a32[31] &= 127;
  a32[31] |= 64;
  const a = leNum(a32);
  const pub = encodePoint(mul(a, BASE));
  const r = mod(leNum(hash("sha512", az.subarray(32), message)), L);
  const R = encodePoint(mul(r, BASE));
  const k = mod(leNum(hash("sha512", R, pub, message)), L);
  const s = mod(r + k * a, L);
  const sig = new Uint8Array(64);
  sig.set(R, 0);
  sig.set(leBytes(s, 32), 32);
  return sig;
}

/** The public key MariaDB stores for a password (`SELECT ED25519_PASSWORD(pw)`, base64). */
export function ed25519PublicKey(password: Uint8Array): Uint8Array {
  const a32 = hash("sha512", password).slice(0, 32);
  a32[0] &= 248;
  a32[31] &= 127;
  a32[31] |= 64;
  return encodePoint(mul(leNum(a32), BASE));
}
