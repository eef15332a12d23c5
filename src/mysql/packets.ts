/**
 * MySQL wire-protocol codec helpers (pure): reading integers and strings out of one packet,
 * writing length-encoded values, framing payloads into 16 MiB packets, and the ERR/OK/EOF
 * packets.
 */

/** The largest packet payload; a payload of exactly this size continues in the next one. */
export const MAX_PACKET = 0xffffff;

const dec = new TextDecoder();

/** An ERR packet. Never carries the password. */
export class MysqlError extends Error {
  override name = "MysqlError";
  constructor(readonly code: number, readonly sqlState: string, message: string) {
    super(`MySQL error ${code} (${sqlState}): ${message}`);
  }
}

/** The connection broke or the server sent something unreadable. */
export class MysqlConnectionError extends Error {
  override name = "MysqlConnectionError";
}

/** Reads lengths and strings out of one packet. */
export class PacketReader {
  i = 0;
  readonly v: DataView;
  constructor(readonly b: Uint8Array) {
    this.v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  #need(n: number) {
    if (this.i + n > this.b.length) {
      throw new MysqlConnectionError("truncated packet from the server");
    }
  }
  u8(): number {
    this.#need(1);
    return this.b[this.i++];
  }
  u16(): number {
    this.#need(2);
    const x = this.v.getUint16(this.i, true);
    this.i += 2;
    return x;
  }
  u24(): number {
    this.#need(3);
    const x = this.b[this.i] | (this.b[this.i + 1] << 8) | (this.b[this.i + 2] << 16);
    this.i += 3;
    return x;
  }
  u32(): number {
    this.#need(4);
    const x = this.v.getUint32(this.i, true);
    this.i += 4;
    return x;
  }
  u64(): number {
    this.#need(8);
    const x = Number(this.v.getBigUint64(this.i, true));
    this.i += 8;
    return x;
  }
  /** A length-encoded integer; null for the NULL marker 0xfb. */
  lenenc(): number | null {
    const f = this.u8();
    if (f < 0xfb) return f;
    if (f === 0xfb) return null;
    if (f === 0xfc) return this.u16();
    if (f === 0xfd) return this.u24();
    return this.u64();
  }
  /** A length-encoded string's bytes (null for NULL). */
  lenencBytes(): Uint8Array | null {
    const n = this.lenenc();
    return n === null ? null : this.bytes(n);
  }
  bytes(n: number): Uint8Array {
    this.#need(n);
    const s = this.b.subarray(this.i, this.i + n);
    this.i += n;
    return s;
  }
  /** A NUL-terminated string (to the end when there is no NUL). */
  cstr(): string {
    let end = this.b.indexOf(0, this.i);
    if (end < 0) end = this.b.length;
    const s = dec.decode(this.b.subarray(this.i, end));
    this.i = end + 1;
    return s;
  }
  rest(): Uint8Array {
    return this.bytes(Math.max(0, this.b.length - this.i));
  }
  get left(): number {
    return this.b.length - this.i;
  }
}

/** A text protocol result row's values (n of them) as text, NULL as null. */
export function textRowValues(p: Uint8Array, n: number): (string | null)[] {
  const r = new PacketReader(p);
  const row: (string | null)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const len = r.lenenc();
    row[i] = len === null ? null : dec.decode(r.bytes(len));
  }
  return row;
}

/** The first 32 bytes of a login (and of an SSL request): flags, packet size, charset. */
export function loginHead(flags: number): Uint8Array {
  const head = new Uint8Array(32);
  const v = new DataView(head.buffer);
  v.setUint32(0, flags, true);
  v.setUint32(4, MAX_PACKET, true);
  head[8] = 45; // utf8mb4_general_ci
  return head;
}

/** A length-encoded integer's bytes. */
export function lenencInt(n: number): Uint8Array {
  if (n < 0xfb) return new Uint8Array([n]);
  if (n < 0x10000) return new Uint8Array([0xfc, n & 0xff, n >> 8]);
  if (n < 0x1000000) return new Uint8Array([0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16]);
  const out = new Uint8Array(9);
  out[0] = 0xfe;
  new DataView(out.buffer).setBigUint64(1, BigInt(n), true);
  return out;
}

/** Concatenate byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Frame a payload as wire packets starting at sequence `seq`: 3-byte length, sequence
 * byte, body; payloads of 16 MiB - 1 or more are split, ending with a shorter (maybe
 * empty) packet. Returns the bytes and the next sequence number.
 */
export function framePackets(payload: Uint8Array, seq: number): { bytes: Uint8Array; seq: number } {
  const count = Math.floor(payload.length / MAX_PACKET) + 1;
  const out = new Uint8Array(payload.length + 4 * count);
  let off = 0;
  let at = 0;
  for (let k = 0; k < count; k++) {
    const n = Math.min(MAX_PACKET, payload.length - off);
    out[at] = n & 0xff;
    out[at + 1] = (n >> 8) & 0xff;
    out[at + 2] = n >> 16;
    out[at + 3] = seq;
    seq = (seq + 1) & 0xff;
    out.set(payload.subarray(off, off + n), at + 4);
    at += 4 + n;
    off += n;
  }
  return { bytes: out, seq };
}

/** The MysqlError of an ERR packet (first byte 0xff). */
export function parseErr(p: Uint8Array): MysqlError {
  const r = new PacketReader(p);
  r.i = 1;
  const code = r.u16();
  let state = "HY000";
  if (p[3] === 0x23 /* # */ && p.length >= 9) {
    r.i++;
    state = dec.decode(r.bytes(5));
  }
  return new MysqlError(code, state, dec.decode(r.rest()));
}

/** An EOF packet (0xfe and short: a longer 0xfe packet is a row or an auth switch). */
export function isEof(p: Uint8Array): boolean {
  return p[0] === 0xfe && p.length < 9;
}

/** SERVER_MORE_RESULTS_EXISTS in the status flags. */
export const SERVER_MORE_RESULTS_EXISTS = 0x08;

/** Status flags of an OK packet (0x00, or 0xfe ending a result set with DEPRECATE_EOF). */
export function okStatus(p: Uint8Array): number {
  const r = new PacketReader(p);
  r.i = 1;
  r.lenenc(); // affected rows
  r.lenenc(); // last insert id
  return r.left >= 2 ? r.u16() : 0;
}

/** Status flags of an EOF packet. */
export function eofStatus(p: Uint8Array): number {
  return p.length >= 5 ? p[3] | (p[4] << 8) : 0;
}
