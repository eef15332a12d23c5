/**
 * PostgreSQL frontend/backend protocol 3.0: pure message builders and parsers.
 * No I/O here; see conn.ts.
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

/** An ErrorResponse from the server, with its SQLSTATE. */
export class PgError extends Error {
  override name = "PgError";
  constructor(
    readonly severity: string,
    readonly code: string,
    message: string,
    readonly detail?: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** Grows as needed; builds one message at a time. */
export class Writer {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #len = 0;

  #room(n: number) {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
  u8(v: number): this {
    this.#room(1);
    this.#buf[this.#len++] = v;
    return this;
  }
  i16(v: number): this {
    this.#room(2);
    this.#view.setInt16(this.#len, v);
    this.#len += 2;
    return this;
  }
  i32(v: number): this {
    this.#room(4);
    this.#view.setInt32(this.#len, v);
    this.#len += 4;
    return this;
  }
  i64(v: bigint): this {
    this.#room(8);
    this.#view.setBigInt64(this.#len, v);
    this.#len += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }
  cstr(s: string): this {
    return this.bytes(enc.encode(s)).u8(0);
  }
  /** A message: type byte (or none for startup), then int32 length, then the body. */
  static message(type: string | null, body: (w: Writer) => void): Uint8Array {
    const w = new Writer();
    if (type) w.u8(type.charCodeAt(0));
    const at = w.#len;
    w.i32(0);
    body(w);
    w.#view.setInt32(at, w.#len - at);
    return w.#buf.slice(0, w.#len);
  }
}

export function startupMessage(params: Record<string, string>): Uint8Array {
  return Writer.message(null, (w) => {
    w.i32(196608); // protocol 3.0
    for (const [k, v] of Object.entries(params)) w.cstr(k).cstr(v);
    w.u8(0);
  });
}

export const SSL_REQUEST: Uint8Array = Writer.message(null, (w) => w.i32(80877103));

export function passwordMessage(password: string): Uint8Array {
  return Writer.message("p", (w) => w.cstr(password));
}

export function saslInitial(mechanism: string, data: Uint8Array): Uint8Array {
  return Writer.message("p", (w) => w.cstr(mechanism).i32(data.length).bytes(data));
}

export function saslResponse(data: Uint8Array): Uint8Array {
  return Writer.message("p", (w) => w.bytes(data));
}

export function queryMessage(sql: string): Uint8Array {
  return Writer.message("Q", (w) => w.cstr(sql));
}

export function copyDataMessage(data: Uint8Array): Uint8Array {
  return Writer.message("d", (w) => w.bytes(data));
}

export const TERMINATE: Uint8Array = Writer.message("X", () => {});

/** Fields of an ErrorResponse/NoticeResponse body. */
export function parseErrorFields(body: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]);
    const end = body.indexOf(0, i + 1);
    if (end < 0) break;
    out.set(code, dec.decode(body.subarray(i + 1, end)));
    i = end + 1;
  }
  return out;
}

export function errorFromBody(body: Uint8Array): PgError {
  const f = parseErrorFields(body);
  return new PgError(
    f.get("V") ?? f.get("S") ?? "ERROR",
    f.get("C") ?? "XX000",
    f.get("M") ?? "unknown error",
    f.get("D"),
    f.get("H"),
  );
}

/** Field names of a RowDescription body. */
export function parseRowDescription(body: Uint8Array): { name: string; typeOid: number }[] {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const n = v.getInt16(0);
  const out: { name: string; typeOid: number }[] = [];
  let i = 2;
  for (let f = 0; f < n; f++) {
    const end = body.indexOf(0, i);
    const name = dec.decode(body.subarray(i, end));
    i = end + 1;
    const typeOid = v.getUint32(i + 6);
    out.push({ name, typeOid });
    i += 18;
  }
  return out;
}

/** Values of a DataRow body, as text (null for SQL NULL). */
export function parseDataRow(body: Uint8Array): (string | null)[] {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const n = v.getInt16(0);
  const out: (string | null)[] = new Array(n);
  let i = 2;
  for (let f = 0; f < n; f++) {
    const len = v.getInt32(i);
    i += 4;
    if (len < 0) out[f] = null;
    else {
      out[f] = dec.decode(body.subarray(i, i + len));
      i += len;
    }
  }
  return out;
}

export function cstring(body: Uint8Array, at = 0): string {
  const end = body.indexOf(0, at);
  return dec.decode(body.subarray(at, end < 0 ? body.length : end));
}
