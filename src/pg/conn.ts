/**
 * One PostgreSQL connection over raw TCP (`Deno.connect`): TLS negotiation, startup,
 * authentication (trust, cleartext, md5, SCRAM-SHA-256), simple queries streamed row by
 * row, and CopyBoth for streaming replication.
 */
import { connectFailure } from "../core/net.ts";
import {
  copyDataMessage,
  cstring,
  errorFromBody,
  parseDataRow,
  parseRowDescription,
  passwordMessage,
  type PgError,
  queryMessage,
  saslInitial,
  saslResponse,
  SSL_REQUEST,
  startupMessage,
  TERMINATE,
} from "./protocol.ts";
import { md5Password, ScramClient } from "./scram.ts";
import type { SslMode } from "./url.ts";
import { ConfigError, setting } from "../core/errors.ts";
import { describeByte, notPostgres, tlsFailed, tlsRefused } from "./sql.ts";
export { ident, literal } from "./sql.ts";

export interface ConnectOptions {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  sslMode: SslMode;
  /** PEM text of the CA certificates to trust (from sslrootcert). */
  caCerts?: string[];
  /** `replication=database`: a walsender connection that also takes SQL. */
  replication?: boolean;
  applicationName?: string;
  connectTimeoutMs?: number;
  /** Extra startup parameters (session settings). */
  params?: Record<string, string>;
}

export interface Field {
  name: string;
  typeOid: number;
}

export interface QueryResult {
  fields: Field[];
  rows: (string | null)[][];
  tag: string;
}

/** The connection broke or the server sent something we cannot read. */
export class PgConnectionError extends Error {
  override name = "PgConnectionError";
  /** The bytes were not PostgreSQL protocol at all. */
  constructor(message: string, readonly garbage = false) {
    super(message);
  }
}

// Session settings every connection uses, so values print the same way in the dump and in
// the replication stream (pgoutput prints values with the walsender's settings).
export const SESSION_PARAMS: Record<string, string> = {
  DateStyle: "ISO",
  TimeZone: "UTC",
  IntervalStyle: "postgres",
  bytea_output: "hex",
  client_encoding: "UTF8",
};

const R = 0x52, E = 0x45, Z = 0x5a, S = 0x53, N = 0x4e, K = 0x4b;
const T = 0x54, D = 0x44, C = 0x43, I = 0x49, W = 0x57, H = 0x48, G = 0x47;
/** Messages a server sends before ReadyForQuery (v: NegotiateProtocolVersion). */
const STARTUP_TYPES = new Set([R, E, N, S, K, Z, 0x76]);

export class PgConn {
  #conn: Deno.Conn | Deno.TlsConn;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #closed = false;
  #writing: Promise<void> = Promise.resolve();
  /** Until ReadyForQuery: only startup messages are valid, anything else is not PostgreSQL. */
  #startupPhase = false;
  readonly params = new Map<string, string>();

  private constructor(conn: Deno.Conn | Deno.TlsConn) {
    this.#conn = conn;
  }

  get closed(): boolean {
    return this.#closed;
  }

  static async connect(o: ConnectOptions): Promise<PgConn> {
    const timeoutMs = o.connectTimeoutMs ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let tcp: Deno.Conn | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        try {
          tcp?.close();
        } catch { /* closed */ }
        reject(new PgConnectionError(`connection to ${o.host}:${o.port} timed out`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([timeout, PgConn.#open(o, (c) => (tcp = c))]);
    } finally {
      clearTimeout(timer);
    }
  }

  static async #open(o: ConnectOptions, onTcp: (c: Deno.Conn) => void): Promise<PgConn> {
    let tcp: Deno.TcpConn;
    try {
      tcp = await Deno.connect({ hostname: o.host, port: o.port });
    } catch (e) {
      throw new PgConnectionError(connectFailure(o.host, o.port, e));
    }
    onTcp(tcp);
    tcp.setNoDelay(true);
    let conn: Deno.Conn | Deno.TlsConn = tcp;
    if (o.sslMode !== "disable" && o.sslMode !== "allow") {
      await writeAll(tcp, SSL_REQUEST);
      const one = new Uint8Array(1);
      const n = await tcp.read(one);
      if (n !== 1) throw new PgConnectionError("server closed the connection during SSLRequest");
      if (one[0] !== S && one[0] !== N && one[0] !== E) {
        tcp.close();
        throw notPostgres(o, `it answered the SSL request with ${describeByte(one[0])}`);
      }
      if (one[0] === S) {
        try {
          conn = await Deno.startTls(tcp, { hostname: o.host, caCerts: o.caCerts });
          await (conn as Deno.TlsConn).handshake();
        } catch (e) {
          try {
            tcp.close();
          } catch { /* closed */ }
          throw tlsFailed(o, e);
        }
      } else if (o.sslMode !== "prefer") {
        tcp.close();
        throw tlsRefused(o);
      }
    }
    const c = new PgConn(conn);
    try {
      c.#startupPhase = true;
      await c.#startup(o);
      c.#startupPhase = false;
    } catch (e) {
      c.close();
      if (e instanceof PgConnectionError && e.garbage) throw notPostgres(o, e.message);
      throw e;
    }
    return c;
  }

  async #startup(o: ConnectOptions) {
    const params: Record<string, string> = {
      user: o.user,
      database: o.database,
      application_name: o.applicationName ?? "sync",
      ...SESSION_PARAMS,
      ...o.params,
    };
    if (o.replication) params.replication = "database";
    await this.send(startupMessage(params));
    let scram: ScramClient | undefined;
    for (;;) {
      const { type, body } = await this.#next();
      if (type === R) {
        const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
        const code = v.getInt32(0);
        if (code === 0) continue;
        const password = o.password;
        if (code !== 0 && password === undefined) {
          throw new ConfigError(
            `the server asks for a password for user "${o.user}" but ${setting("dbUrl")} ` +
              "has none",
            { code: "auth" },
          );
        }
        if (code === 3) await this.send(passwordMessage(password!));
        else if (code === 5) {
          await this.send(passwordMessage(await md5Password(o.user, password!, body.slice(4, 8))));
        } else if (code === 10) {
          const mechs = new TextDecoder().decode(body.subarray(4)).split("\0");
          if (!mechs.includes("SCRAM-SHA-256")) {
            throw new ConfigError(`unsupported SASL mechanisms: ${mechs.filter(Boolean)}`);
          }
          scram = new ScramClient(password!);
          await this.send(saslInitial("SCRAM-SHA-256", scram.first()));
        } else if (code === 11 && scram) {
          await this.send(saslResponse(await scram.final(body.subarray(4))));
        } else if (code === 12 && scram) {
          scram.verify(body.subarray(4));
        } else {
          throw new ConfigError(`unsupported authentication method (code ${code})`, {
            code: "auth",
          });
        }
      } else if (type === K) {
        // BackendKeyData: only needed to cancel a query, which sync never does.
      } else if (type === Z) {
        return;
      } else if (type === E) {
        throw errorFromBody(body);
      } else {
        throw new PgConnectionError(`unexpected message ${describeByte(type)} at startup`, true);
      }
    }
  }

  /** Write bytes; writes are serialized so concurrent senders never interleave. */
  send(bytes: Uint8Array): Promise<void> {
    const p = this.#writing.then(() => writeAll(this.#conn, bytes));
    this.#writing = p.catch(() => {});
    return p;
  }

  /** Read more bytes into the buffer, keeping unread bytes. */
  async #fill(need: number): Promise<void> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#buf.length - this.#start < need) {
      // Compact, and grow when one message is larger than the buffer.
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
        throw new PgConnectionError(`connection lost: ${(e as Error).message}`);
      }
      if (n === null) {
        this.#closed = true;
        throw new PgConnectionError("the server closed the connection");
      }
      this.#end += n;
    }
  }

  /**
   * The next message (type byte and body). The body is a view into the read buffer, valid
   * until the next read: decode it before asking for another message.
   */
  async readMessage(): Promise<{ type: number; body: Uint8Array }> {
    if (this.#end - this.#start < 5) await this.#fill(5);
    const b = this.#buf;
    const s = this.#start;
    const len = ((b[s + 1] << 24) | (b[s + 2] << 16) | (b[s + 3] << 8) | b[s + 4]) >>> 0;
    if (this.#startupPhase && (!STARTUP_TYPES.has(b[s]) || len > 0x10000)) {
      throw new PgConnectionError(
        `it sent ${describeByte(b[s])} where a startup message belongs`,
        true,
      );
    }
    if (len < 4 || len > 0x40000000) {
      throw new PgConnectionError(`garbage on the wire (message length ${len})`, true);
    }
    if (this.#end - this.#start < 1 + len) await this.#fill(1 + len);
    const type = this.#buf[this.#start];
    const body = this.#buf.subarray(this.#start + 5, this.#start + 1 + len);
    this.#start += 1 + len;
    return { type, body };
  }

  /** Like readMessage, but handles notices and parameter changes. */
  async #next(): Promise<{ type: number; body: Uint8Array }> {
    for (;;) {
      const m = await this.readMessage();
      if (m.type === N) continue; // notices: nothing sync acts on
      else if (m.type === S) {
        const name = cstring(m.body);
        this.params.set(name, cstring(m.body, m.body.indexOf(0) + 1));
      } else return m;
    }
  }

  /** Run one simple query and collect all rows. */
  async query(sql: string): Promise<QueryResult> {
    const rows: (string | null)[][] = [];
    const r = await this.queryEach(sql, (body) => {
      rows.push(parseDataRow(body));
    });
    return { ...r, rows };
  }

  /**
   * Run a simple query, handing each row's DataRow body to `onRow` as it arrives (valid
   * until `onRow` returns; the result is never held in memory; TCP flow control holds the
   * server back while `onRow` awaits).
   */
  async queryEach(
    sql: string,
    onRow: (body: Uint8Array) => void | Promise<void>,
  ): Promise<{ fields: Field[]; tag: string }> {
    await this.send(queryMessage(sql));
    let fields: Field[] = [];
    let tag = "";
    let error: PgError | undefined;
    for (;;) {
      const { type, body } = await this.#next();
      if (type === T) fields = parseRowDescription(body);
      else if (type === D) {
        if (!error) {
          const p = onRow(body);
          if (p) {
            try {
              await p;
            } catch (e) {
              // Keep reading to ReadyForQuery so the connection stays usable.
              error = e as PgError;
            }
          }
        }
      } else if (type === C) tag = cstring(body);
      else if (type === E) error = errorFromBody(body);
      else if (type === I) tag = "";
      else if (type === Z) break;
      else if (type === G || type === H) {
        throw new PgConnectionError("COPY is not supported by queryEach");
      }
    }
    if (error) throw error;
    return { fields, tag };
  }

  /** Send a command that answers with CopyBothResponse (START_REPLICATION). */
  async startCopyBoth(sql: string): Promise<void> {
    await this.send(queryMessage(sql));
    for (;;) {
      const { type, body } = await this.#next();
      if (type === W) return;
      if (type === E) {
        const err = errorFromBody(body);
        await this.#drainToReady();
        throw err;
      }
      if (type === Z) throw new PgConnectionError("server did not enter COPY mode");
    }
  }

  async #drainToReady() {
    for (;;) {
      const { type } = await this.#next();
      if (type === Z) return;
    }
  }

  /** Send one CopyData message. */
  sendCopyData(data: Uint8Array): Promise<void> {
    return this.send(copyDataMessage(data));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Best effort: Terminate, then close.
    this.#writing.then(() => writeAll(this.#conn, TERMINATE)).catch(() => {}).finally(() => {
      try {
        this.#conn.close();
      } catch { /* already closed */ }
    });
  }

  /** Close now, without a Terminate (to interrupt a blocked read). */
  abort(): void {
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    try {
      off += await conn.write(bytes.subarray(off));
    } catch (e) {
      throw new PgConnectionError(`connection lost: ${(e as Error).message}`);
    }
  }
}
