/**
 * A MySQL/MariaDB client over raw TCP: handshake v10, TLS, mysql_native_password and
 * caching_sha2_password (fast and full authentication), text queries, and the binlog
 * replication commands (COM_REGISTER_SLAVE, COM_BINLOG_DUMP).
 */
import { createHash, publicEncrypt } from "node:crypto";
import { ConfigError } from "../core/source.ts";
import type { MysqlSslMode } from "./url.ts";

export interface ConnectOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  database?: string;
  sslMode: MysqlSslMode;
  /** Path of a PEM file with CA certificates. */
  sslCa?: string;
  connectTimeoutMs?: number;
}

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

const CLIENT = {
  LONG_PASSWORD: 0x1,
  FOUND_ROWS: 0x2,
  LONG_FLAG: 0x4,
  CONNECT_WITH_DB: 0x8,
  PROTOCOL_41: 0x200,
  SSL: 0x800,
  TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000,
  MULTI_RESULTS: 0x20000,
  PLUGIN_AUTH: 0x80000,
  PLUGIN_AUTH_LENENC: 0x200000,
};
const UTF8MB4_GENERAL_CI = 45;
const MAX_PACKET = 0xffffff;
const enc = new TextEncoder();
const dec = new TextDecoder();

function sha(alg: "sha1" | "sha256", ...parts: Uint8Array[]): Uint8Array {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  return a.map((x, i) => x ^ b[i % b.length]);
}

/** Scrambled password for an auth plugin (design: never sent in clear without TLS). */
export function scramblePassword(plugin: string, password: string, nonce: Uint8Array) {
  if (!password) return new Uint8Array(0);
  const pw = enc.encode(password);
  if (plugin === "caching_sha2_password") {
    const p1 = sha("sha256", pw);
    return xor(p1, sha("sha256", sha("sha256", p1), nonce));
  }
  if (plugin === "mysql_native_password") {
    const p1 = sha("sha1", pw);
    return xor(p1, sha("sha1", nonce, sha("sha1", p1)));
  }
  throw new ConfigError(`unsupported MySQL authentication plugin ${plugin}`);
}

/** Reads lengths and strings out of one packet. */
export class PacketReader {
  i = 0;
  readonly v: DataView;
  constructor(readonly b: Uint8Array) {
    this.v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  u8() {
    return this.b[this.i++];
  }
  u16() {
    const x = this.v.getUint16(this.i, true);
    this.i += 2;
    return x;
  }
  u32() {
    const x = this.v.getUint32(this.i, true);
    this.i += 4;
    return x;
  }
  lenenc(): number | null {
    const f = this.b[this.i++];
    if (f < 0xfb) return f;
    if (f === 0xfb) return null;
    if (f === 0xfc) return this.u16();
    if (f === 0xfd) {
      const x = this.b[this.i] | (this.b[this.i + 1] << 8) | (this.b[this.i + 2] << 16);
      this.i += 3;
      return x;
    }
    const x = Number(this.v.getBigUint64(this.i, true));
    this.i += 8;
    return x;
  }
  bytes(n: number): Uint8Array {
    const s = this.b.subarray(this.i, this.i + n);
    this.i += n;
    return s;
  }
  cstr(): string {
    let end = this.b.indexOf(0, this.i);
    if (end < 0) end = this.b.length;
    const s = dec.decode(this.b.subarray(this.i, end));
    this.i = end + 1;
    return s;
  }
  rest(): Uint8Array {
    return this.bytes(this.b.length - this.i);
  }
}

function errFrom(p: Uint8Array): MysqlError {
  const r = new PacketReader(p);
  r.i = 1;
  const code = r.u16();
  let state = "HY000";
  if (p[3] === 0x23 /* # */) {
    r.i++;
    state = dec.decode(r.bytes(5));
  }
  return new MysqlError(code, state, dec.decode(r.rest()));
}

export interface QueryResult {
  columns: string[];
  rows: (string | null)[][];
}

export class MysqlConn {
  #conn: Deno.Conn | Deno.TlsConn;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #seq = 0;
  #closed = false;
  #tls = false;
  serverVersion = "";
  connectionId = 0;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  static async connect(o: ConnectOptions): Promise<MysqlConn> {
    let tcp: Deno.TcpConn;
    try {
      tcp = await Deno.connect({ hostname: o.host, port: o.port });
    } catch (e) {
      throw new MysqlConnectionError(
        `cannot connect to ${o.host}:${o.port}: ${(e as Error).message}`,
      );
    }
    tcp.setNoDelay(true);
    const c = new MysqlConn(tcp);
    const timer = setTimeout(() => c.close(), o.connectTimeoutMs ?? 10_000);
    try {
      await c.#handshake(o, tcp);
      return c;
    } catch (e) {
      c.close();
      if (c.#closed && !(e instanceof MysqlError) && !(e instanceof ConfigError)) {
        throw new MysqlConnectionError(
          `handshake with ${o.host}:${o.port} failed: ${(e as Error).message}`,
        );
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async #handshake(o: ConnectOptions, tcp: Deno.TcpConn) {
    const hello = await this.readPacket();
    if (hello[0] === 0xff) throw errFrom(hello);
    const r = new PacketReader(hello);
    if (r.u8() !== 10) throw new MysqlConnectionError("not a MySQL v10 handshake");
    this.serverVersion = r.cstr();
    this.connectionId = r.u32();
    const nonce1 = r.bytes(8).slice();
    r.i++; // filler
    let caps = r.u16();
    r.u8(); // charset
    r.u16(); // status
    caps |= r.u16() << 16;
    const authLen = r.u8();
    r.i += 10;
    const nonce2 = r.bytes(Math.max(13, authLen - 8)).slice();
    let plugin = r.i < hello.length ? r.cstr() : "mysql_native_password";
    const nonce = new Uint8Array([...nonce1, ...nonce2.subarray(0, nonce2.length - 1)]);

    let flags = CLIENT.LONG_PASSWORD | CLIENT.FOUND_ROWS | CLIENT.LONG_FLAG |
      CLIENT.PROTOCOL_41 | CLIENT.TRANSACTIONS | CLIENT.SECURE_CONNECTION |
      CLIENT.MULTI_RESULTS | CLIENT.PLUGIN_AUTH | CLIENT.PLUGIN_AUTH_LENENC;
    if (o.database) flags |= CLIENT.CONNECT_WITH_DB;
    const serverTls = (caps & CLIENT.SSL) !== 0;
    if (o.sslMode !== "DISABLED" && serverTls) {
      flags |= CLIENT.SSL;
      const req = new Uint8Array(32);
      const v = new DataView(req.buffer);
      v.setUint32(0, flags, true);
      v.setUint32(4, MAX_PACKET, true);
      req[8] = UTF8MB4_GENERAL_CI;
      await this.writePacket(req);
      let caCerts: string[] | undefined;
      if (o.sslCa) {
        try {
          caCerts = [await Deno.readTextFile(o.sslCa)];
        } catch (e) {
          throw new ConfigError(`cannot read ssl-ca ${o.sslCa}: ${(e as Error).message}`);
        }
      }
      try {
        const tls = await Deno.startTls(tcp, { hostname: o.host, caCerts });
        await tls.handshake();
        this.#conn = tls;
        this.#tls = true;
      } catch (e) {
        throw new ConfigError(
          `TLS to ${o.host}:${o.port} failed: ${(e as Error).message.split("\n")[0]} ` +
            "(give the CA with ssl-ca=<file> in --db-url, or ssl-mode=DISABLED)",
        );
      }
    } else if (o.sslMode !== "DISABLED" && o.sslMode !== "PREFERRED") {
      throw new ConfigError(
        `${o.host}:${o.port} does not offer TLS but --db-url has ssl-mode=${o.sslMode}`,
      );
    }
    const auth = scramblePassword(plugin, o.password, nonce);
    const user = enc.encode(o.user);
    const db = o.database ? enc.encode(o.database) : new Uint8Array(0);
    const pl = enc.encode(plugin);
    const resp = new Uint8Array(
      32 + user.length + 1 + 9 + auth.length + db.length + 1 + pl.length + 1,
    );
    const v = new DataView(resp.buffer);
    v.setUint32(0, flags, true);
    v.setUint32(4, MAX_PACKET, true);
    resp[8] = UTF8MB4_GENERAL_CI;
    let at = 32;
    resp.set(user, at);
    at += user.length + 1;
    resp[at++] = auth.length; // < 251: one-byte length-encoded integer
    resp.set(auth, at);
    at += auth.length;
    if (o.database) {
      resp.set(db, at);
      at += db.length + 1;
    }
    resp.set(pl, at);
    at += pl.length + 1;
    await this.writePacket(resp.subarray(0, at));

    let scrambleNonce = nonce;
    for (;;) {
      const p = await this.readPacket();
      if (p[0] === 0x00) return;
      if (p[0] === 0xff) throw errFrom(p);
      if (p[0] === 0xfe) {
        // Auth switch: another plugin, with a fresh nonce.
        const sr = new PacketReader(p);
        sr.i = 1;
        plugin = sr.cstr();
        const data = sr.rest();
        scrambleNonce = data[data.length - 1] === 0 ? data.slice(0, -1) : data.slice();
        await this.writePacket(scramblePassword(plugin, o.password, scrambleNonce));
        continue;
      }
      if (p[0] === 0x01 && plugin === "caching_sha2_password") {
        if (p[1] === 0x03) continue; // fast auth worked; OK follows
        if (p[1] === 0x04) {
          // Full authentication: the password in clear over TLS, else RSA-encrypted.
          const pw = enc.encode(o.password + "\0");
          if (this.#tls) await this.writePacket(pw);
          else {
            await this.writePacket(new Uint8Array([0x02]));
            const key = await this.readPacket();
            if (key[0] === 0xff) throw errFrom(key);
            const pem = dec.decode(key.subarray(1));
            const sealed = publicEncrypt(
              { key: pem, padding: 4 /* RSA_PKCS1_OAEP_PADDING */ },
              xor(pw, scrambleNonce),
            );
            await this.writePacket(new Uint8Array(sealed));
          }
          continue;
        }
      }
      throw new MysqlConnectionError(`unexpected authentication packet 0x${p[0].toString(16)}`);
    }
  }

  async #fill(need: number) {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#buf.length - this.#start < need) {
      const size = Math.max(this.#buf.length, need * 2);
      const next = size > this.#buf.length ? new Uint8Array(size) : this.#buf;
      next.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#end -= this.#start;
      this.#start = 0;
      this.#buf = next;
    }
    while (this.#end - this.#start < need) {
      let n: number | null;
      try {
        n = await this.#conn.read(this.#buf.subarray(this.#end));
      } catch (e) {
        this.#closed = true;
        throw new MysqlConnectionError(`connection lost: ${(e as Error).message}`);
      }
      if (n === null) {
        this.#closed = true;
        throw new MysqlConnectionError("the server closed the connection");
      }
      this.#end += n;
    }
  }

  /**
   * One logical packet (continuations joined). A view into the read buffer unless it was
   * split: use it before reading the next one.
   */
  async readPacket(): Promise<Uint8Array> {
    let parts: Uint8Array[] | undefined;
    for (;;) {
      if (this.#end - this.#start < 4) await this.#fill(4);
      const b = this.#buf;
      const s = this.#start;
      const len = b[s] | (b[s + 1] << 8) | (b[s + 2] << 16);
      this.#seq = (b[s + 3] + 1) & 0xff;
      if (this.#end - this.#start < 4 + len) await this.#fill(4 + len);
      const body = this.#buf.subarray(this.#start + 4, this.#start + 4 + len);
      this.#start += 4 + len;
      if (len < MAX_PACKET && !parts) return body;
      (parts ??= []).push(body.slice());
      if (len < MAX_PACKET) {
        const total = parts.reduce((n, p) => n + p.length, 0);
        const out = new Uint8Array(total);
        let at = 0;
        for (const p of parts) {
          out.set(p, at);
          at += p.length;
        }
        return out;
      }
    }
  }

  async writePacket(payload: Uint8Array): Promise<void> {
    let off = 0;
    do {
      const n = Math.min(MAX_PACKET, payload.length - off);
      const pkt = new Uint8Array(4 + n);
      pkt[0] = n & 0xff;
      pkt[1] = (n >> 8) & 0xff;
      pkt[2] = n >> 16;
      pkt[3] = this.#seq;
      this.#seq = (this.#seq + 1) & 0xff;
      pkt.set(payload.subarray(off, off + n), 4);
      let w = 0;
      while (w < pkt.length) {
        try {
          w += await this.#conn.write(pkt.subarray(w));
        } catch (e) {
          this.#closed = true;
          throw new MysqlConnectionError(`connection lost: ${(e as Error).message}`);
        }
      }
      off += n;
      if (n < MAX_PACKET) break;
    } while (true);
  }

  async #command(cmd: number, body: Uint8Array): Promise<void> {
    this.#seq = 0;
    const p = new Uint8Array(1 + body.length);
    p[0] = cmd;
    p.set(body, 1);
    await this.writePacket(p);
  }

  /** COM_QUERY with the text protocol; the first result set's rows (OK: no rows). */
  async query(sql: string): Promise<QueryResult> {
    await this.#command(0x03, enc.encode(sql));
    let result: QueryResult | undefined;
    let error: MysqlError | undefined;
    for (;;) {
      const p = await this.readPacket();
      let more = false;
      if (p[0] === 0xff) error ??= errFrom(p);
      else if (p[0] === 0x00) {
        result ??= { columns: [], rows: [] };
        more = okMoreResults(p);
      } else {
        const r = await this.#resultSet(p);
        result ??= r.result;
        more = r.more;
      }
      if (!more) break;
    }
    if (error) throw error;
    return result!;
  }

  async #resultSet(first: Uint8Array): Promise<{ result: QueryResult; more: boolean }> {
    const n = new PacketReader(first).lenenc() ?? 0;
    const columns: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = new PacketReader(await this.readPacket());
      for (let f = 0; f < 4; f++) r.bytes(r.lenenc() ?? 0); // catalog, schema, table, org_table
      columns.push(dec.decode(r.bytes(r.lenenc() ?? 0)));
    }
    await this.readPacket(); // EOF after column definitions
    const rows: (string | null)[][] = [];
    for (;;) {
      const p = await this.readPacket();
      if (p[0] === 0xfe && p.length < 9) {
        const status = p.length >= 5 ? p[3] | (p[4] << 8) : 0;
        return { result: { columns, rows }, more: (status & 0x08) !== 0 };
      }
      if (p[0] === 0xff) throw errFrom(p);
      const r = new PacketReader(p);
      const row: (string | null)[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const len = r.lenenc();
        row[i] = len === null ? null : dec.decode(r.bytes(len));
      }
      rows.push(row);
    }
  }

  /** COM_REGISTER_SLAVE: show up in SHOW SLAVE HOSTS as this server id. */
  async registerReplica(serverId: number): Promise<void> {
    const host = enc.encode("sync");
    const body = new Uint8Array(4 + 1 + host.length + 1 + 1 + 2 + 4 + 4);
    const v = new DataView(body.buffer);
    v.setUint32(0, serverId, true);
    body[4] = host.length;
    body.set(host, 5);
    // user, password: empty; port 0; rank 0; master id 0.
    await this.#command(0x15, body);
    const p = await this.readPacket();
    if (p[0] === 0xff) throw errFrom(p);
  }

  /** COM_BINLOG_DUMP: yields each event (header + body, without the leading OK byte). */
  async *binlogDump(
    o: { file: string; position: number; serverId: number; nonBlock?: boolean },
  ): AsyncIterableIterator<Uint8Array> {
    const name = enc.encode(o.file);
    const body = new Uint8Array(10 + name.length);
    const v = new DataView(body.buffer);
    v.setUint32(0, o.position, true);
    v.setUint16(4, o.nonBlock ? 1 : 0, true);
    v.setUint32(6, o.serverId, true);
    body.set(name, 10);
    await this.#command(0x12, body);
    for (;;) {
      const p = await this.readPacket();
      if (p[0] === 0x00) yield p.subarray(1);
      else if (p[0] === 0xff) throw errFrom(p);
      else if (p[0] === 0xfe && p.length < 9) return;
      else throw new MysqlConnectionError(`unexpected packet 0x${p[0].toString(16)} in binlog`);
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

function okMoreResults(p: Uint8Array): boolean {
  const r = new PacketReader(p);
  r.i = 1;
  r.lenenc();
  r.lenenc();
  const status = r.u16();
  return (status & 0x08) !== 0;
}
