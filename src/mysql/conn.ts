/**
 * A MySQL/MariaDB client over raw TCP: handshake v10, TLS, mysql_native_password and
 * caching_sha2_password (fast and full authentication), text queries, and the binlog
 * replication commands (COM_REGISTER_SLAVE, COM_BINLOG_DUMP).
 */
import { connectFailure } from "../core/net.ts";
import { ConfigError, setting } from "../core/errors.ts";
import {
  rsaSealPassword,
  scramblePassword,
  SUPPORTED_PLUGINS,
  UnsupportedAuthError,
} from "./auth.ts";
import {
  concat,
  eofStatus,
  framePackets,
  isEof,
  lenencInt,
  loginHead,
  MAX_PACKET,
  MysqlConnectionError,
  MysqlError,
  okStatus,
  PacketReader,
  parseErr,
  SERVER_MORE_RESULTS_EXISTS,
  textRowValues,
} from "./packets.ts";
import type { MysqlSslMode } from "./url.ts";
import { startTls, type Transport } from "./tls.ts";

export { MysqlConnectionError, MysqlError, PacketReader } from "./packets.ts";
export { scramblePassword } from "./auth.ts";

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
const enc = new TextEncoder();
const dec = new TextDecoder();
const errFrom = parseErr;

function isSupported(plugin: string): boolean {
  return (SUPPORTED_PLUGINS as readonly string[]).includes(plugin);
}

export interface QueryResult {
  columns: string[];
  rows: (string | null)[][];
}

export class MysqlConn {
  #conn: Transport;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #seq = 0;
  #closed = false;
  #tls = false;
  serverVersion = "";
  connectionId = 0;

  private constructor(conn: Transport) {
    this.#conn = conn;
  }

  static async connect(o: ConnectOptions): Promise<MysqlConn> {
    let tcp: Deno.TcpConn;
    try {
      tcp = await Deno.connect({ hostname: o.host, port: o.port });
    } catch (e) {
      throw new MysqlConnectionError(connectFailure(o.host, o.port, e));
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
    const greeting = await this.#greeting(o);
    let flags = CLIENT.LONG_PASSWORD | CLIENT.FOUND_ROWS | CLIENT.LONG_FLAG |
      CLIENT.PROTOCOL_41 | CLIENT.TRANSACTIONS | CLIENT.SECURE_CONNECTION |
      CLIENT.MULTI_RESULTS | CLIENT.PLUGIN_AUTH | CLIENT.PLUGIN_AUTH_LENENC;
    if (o.database) flags |= CLIENT.CONNECT_WITH_DB;
    const serverTls = (greeting.caps & CLIENT.SSL) !== 0;
    if (o.sslMode !== "DISABLED" && serverTls) {
      flags |= CLIENT.SSL;
      await this.writePacket(loginHead(flags));
      this.#conn = await startTls(tcp, o);
      this.#tls = true;
    } else if (o.sslMode !== "DISABLED" && o.sslMode !== "PREFERRED") {
      throw new ConfigError(
        `${o.host}:${o.port} does not offer TLS but ${setting("dbUrl")} has ` +
          `ssl-mode=${o.sslMode}`,
      );
    }
    // An unknown default plugin: answer as mysql_native_password, the server switches.
    const plugin = isSupported(greeting.plugin) ? greeting.plugin : "mysql_native_password";
    const auth = this.#authResponse(plugin, o.password, greeting.nonce);
    const z = new Uint8Array(1);
    await this.writePacket(concat(
      loginHead(flags),
      enc.encode(o.user),
      z,
      lenencInt(auth.length),
      auth,
      ...(o.database ? [enc.encode(o.database), z] : []),
      enc.encode(plugin),
      z,
    ));
    await this.#authenticate(o.password, plugin, greeting.nonce);
  }

  /** The server's handshake v10: what it offers and the nonce to scramble with. */
  async #greeting(o: ConnectOptions): Promise<{ caps: number; plugin: string; nonce: Uint8Array }> {
    // A MySQL server speaks first: a small packet, sequence 0, protocol version 10 (or an
    // ERR packet). Anything else is another kind of server on this port.
    const notMysql = (why: string) =>
      new ConfigError(
        `${o.host}:${o.port} is not speaking the MySQL protocol (${why}): ` +
          `check the host and port in ${setting("dbUrl")}`,
      );
    await this.#fill(5);
    const h = this.#buf.subarray(this.#start, this.#start + 5);
    const helloLen = h[0] | (h[1] << 8) | (h[2] << 16);
    if (helloLen > 0x4000 || h[3] !== 0 || (h[4] !== 10 && h[4] !== 0xff)) {
      throw notMysql(`it sent ${[...h].map((b) => b.toString(16).padStart(2, "0")).join(" ")}`);
    }
    const hello = await this.readPacket();
    if (hello[0] === 0xff) throw errFrom(hello);
    const r = new PacketReader(hello);
    if (r.u8() !== 10) throw notMysql("not a v10 handshake");
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
    const plugin = r.left > 0 ? r.cstr() : "mysql_native_password";
    return { caps, plugin, nonce: concat(nonce1, nonce2.subarray(0, nonce2.length - 1)) };
  }

  /** After the login packet: auth switches and caching_sha2 rounds until OK or ERR. */
  async #authenticate(password: string, first: string, nonce: Uint8Array): Promise<void> {
    let plugin = first;
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
        const data = sr.rest().slice();
        scrambleNonce = plugin === "client_ed25519"
          ? data.subarray(0, 32)
          : data.length === 21 && data[20] === 0
          ? data.subarray(0, 20)
          : data;
        await this.writePacket(this.#authResponse(plugin, password, scrambleNonce));
        continue;
      }
      if (p[0] === 0x01 && plugin === "caching_sha2_password") {
        if (p[1] === 0x03) continue; // fast auth worked; OK follows
        if (p[1] === 0x04) {
          // Full authentication: the password in clear over TLS, else RSA-encrypted.
          if (this.#tls) await this.writePacket(enc.encode(password + "\0"));
          else {
            await this.writePacket(new Uint8Array([0x02]));
            const key = await this.readPacket();
            if (key[0] === 0xff) throw errFrom(key);
            const pem = dec.decode(key.subarray(1));
            await this.writePacket(await rsaSealPassword(pem, password, scrambleNonce));
          }
          continue;
        }
      }
      throw new MysqlConnectionError(`unexpected authentication packet 0x${p[0].toString(16)}`);
    }
  }

  #authResponse(plugin: string, password: string, nonce: Uint8Array): Uint8Array {
    if (plugin === "mysql_clear_password") {
      if (!this.#tls) {
        throw new ConfigError(
          "the server asks for the password in clear (mysql_clear_password): use TLS",
        );
      }
      return enc.encode(password + "\0");
    }
    try {
      return scramblePassword(plugin, password, nonce);
    } catch (e) {
      if (e instanceof UnsupportedAuthError) throw new ConfigError(e.message, { code: "auth" });
      throw e;
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
      if (len < MAX_PACKET) return concat(...parts);
    }
  }

  /** The next packet when it is whole in the read buffer (read without an await). */
  bufferedPacket(): Uint8Array | undefined {
    const b = this.#buf, s = this.#start;
    if (this.#end - s < 4) return undefined;
    const len = b[s] | (b[s + 1] << 8) | (b[s + 2] << 16);
    if (len >= MAX_PACKET || this.#end - s < 4 + len) return undefined;
    this.#seq = (b[s + 3] + 1) & 0xff;
    this.#start = s + 4 + len;
    return b.subarray(s + 4, s + 4 + len);
  }

  async writePacket(payload: Uint8Array): Promise<void> {
    const { bytes, seq } = framePackets(payload, this.#seq);
    this.#seq = seq;
    let w = 0;
    while (w < bytes.length) {
      try {
        w += await this.#conn.write(bytes.subarray(w));
      } catch (e) {
        this.#closed = true;
        throw new MysqlConnectionError(`connection lost: ${(e as Error).message}`);
      }
    }
  }

  /** Send one command packet (the sequence starts again at 0). */
  async command(cmd: number, body: Uint8Array): Promise<void> {
    this.#seq = 0;
    const p = new Uint8Array(1 + body.length);
    p[0] = cmd;
    p.set(body, 1);
    await this.writePacket(p);
  }

  /**
   * COM_QUERY with the text protocol; the first result set's rows (OK: no rows). With
   * `each`, its rows go there instead, as their packets (lenenc values, 0xfb for NULL; a
   * view valid during the call), and the result is read to its end if `each` throws.
   */
  async query(sql: string, each?: (packet: Uint8Array) => void): Promise<QueryResult> {
    await this.command(0x03, enc.encode(sql));
    let result: QueryResult | undefined;
    let error: MysqlError | undefined;
    let failed: unknown;
    for (;;) {
      const p = await this.readPacket();
      let more = false;
      if (p[0] === 0xff) error ??= errFrom(p);
      else if (p[0] === 0x00) {
        result ??= { columns: [], rows: [] };
        more = (okStatus(p) & SERVER_MORE_RESULTS_EXISTS) !== 0;
      } else {
        const r = await this.#resultSet(p, result ? undefined : each);
        result ??= r.result;
        more = r.more;
        failed ??= r.failed;
      }
      if (!more) break;
    }
    if (error) throw error;
    if (failed) throw failed;
    return result!;
  }

  async #resultSet(
    first: Uint8Array,
    each?: (packet: Uint8Array) => void,
  ): Promise<{ result: QueryResult; more: boolean; failed?: unknown }> {
    const n = new PacketReader(first).lenenc() ?? 0;
    const columns: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = new PacketReader(await this.readPacket());
      for (let f = 0; f < 4; f++) r.bytes(r.lenenc() ?? 0); // catalog, schema, table, org_table
      columns.push(dec.decode(r.bytes(r.lenenc() ?? 0)));
    }
    await this.readPacket(); // EOF after column definitions
    const rows: (string | null)[][] = [];
    let failed: unknown;
    for (;;) {
      const p = this.bufferedPacket() ?? await this.readPacket();
      if (isEof(p)) {
        const more = (eofStatus(p) & SERVER_MORE_RESULTS_EXISTS) !== 0;
        return { result: { columns, rows }, more, failed };
      }
      if (p[0] === 0xff) throw errFrom(p);
      if (each) {
        try {
          if (!failed) each(p);
        } catch (e) {
          failed = e;
        }
        continue;
      }
      rows.push(textRowValues(p, n));
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
