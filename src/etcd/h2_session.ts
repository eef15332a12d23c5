/**
 * One HTTP/2 client connection (RFC 9113) over `Deno.connect` or `Deno.connectTls` (ALPN
 * "h2"), as etcd's gRPC needs it: requests with their whole body at once, answers collected
 * per stream. Frames and HPACK are in h2_frames.ts and hpack.ts; this file does the I/O.
 *
 * Writes are queued and sent together at the end of the tick, so requests issued in one
 * tick leave in one `write`. The receive windows are large and replenished at half, so etcd
 * never waits on us; the send windows are respected (big requests wait for WINDOW_UPDATE).
 */

import {
  concat,
  dataFrames,
  DEFAULT_MAX_FRAME,
  DEFAULT_WINDOW,
  FLAG,
  FRAME,
  type Frame,
  framePayload,
  FrameReader,
  goawayFrame,
  H2_ERROR,
  H2ProtocolError,
  MAX_WINDOW,
  parseGoaway,
  parseSettings,
  parseU32,
  pingFrame,
  PREFACE,
  requestFrames,
  rstStreamFrame,
  SETTING,
  SETTINGS_ACK,
  settingsFrame,
  windowUpdateFrame,
} from "./h2_frames.ts";
import { dial, FrameWriter, type H2Conn, type H2Target } from "./h2_dial.ts";
import { type HeaderField, HpackDecoder, HpackError } from "./hpack.ts";

/** What a stream reports to its caller. Exactly one of `end` and `fail` ends it. */
export interface StreamEvents {
  headers(fields: HeaderField[], endStream: boolean): void;
  /** A chunk of the answer (the caller's to keep). */
  data(chunk: Uint8Array): void;
  /** The server ended the stream (`end`), or it was reset or the connection lost (`fail`). */
  end(): void;
  fail(err: Error): void;
}

/** `gone`: the connection ended (`err` says why), or a GOAWAY means no new streams. */
export type SessionHooks = { gone(err: Error | undefined): void };

/** A request: its send window, the data that window held back, DATA received unacked. */
interface Stream {
  id: number;
  events: StreamEvents;
  window: number;
  pending?: Uint8Array;
  unacked: number;
}

/** Our receive windows: streams, and the connection (enough for many answers at once). */
const STREAM_WINDOW = 16 << 20;
const CONN_WINDOW = 64 << 20;

export class H2Session {
  readonly #target: H2Target;
  readonly #hooks: SessionHooks;
  #conn?: H2Conn;
  #destroyed = false;
  #goaway = false;
  #nextId = 1;
  readonly #streams = new Map<number, Stream>();
  #blocked: Stream[] = [];
  #connWindow = DEFAULT_WINDOW;
  #peerInitial = DEFAULT_WINDOW;
  #maxFrame = DEFAULT_MAX_FRAME;
  #connUnacked = 0;
  readonly #hpack = new HpackDecoder();
  /** A header block spread over CONTINUATION frames. */
  #cont?: { stream: number; parts: Uint8Array[]; end: boolean };
  readonly #writer = new FrameWriter((e) => this.destroy(e));
  readonly #pings = new Map<number, (err: Error | null) => void>();
  #pingId = 0;
  #refed = true;
  #maxStreams = Infinity;
  /** Requests waiting for a stream (MAX_CONCURRENT_STREAMS). */
  readonly #later: { events: StreamEvents; start(): void }[] = [];

  constructor(target: H2Target, hooks: SessionHooks) {
    this.#target = target;
    this.#hooks = hooks;
    this.#send(PREFACE);
    this.#send(settingsFrame([
      [SETTING.ENABLE_PUSH, 0],
      [SETTING.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
    ]));
    this.#send(windowUpdateFrame(0, CONN_WINDOW - DEFAULT_WINDOW));
    this.#open();
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Whether new streams may start here (not after a GOAWAY or with stream ids used up). */
  get usable(): boolean {
    return !this.#destroyed && !this.#goaway && this.#nextId < 0x7fff_fff0;
  }

  async #open(): Promise<void> {
    let conn: H2Conn;
    try {
      conn = await dial(this.#target);
    } catch (e) {
      return this.destroy(e as Error);
    }
    if (this.#destroyed) return conn.close();
    this.#conn = conn;
    if (this.#streams.size === 0) this.#ref(false);
    this.#writer.start(conn);
    this.#readLoop(conn);
  }

  /**
   * Start a request (its header block and whole body), at once or, when etcd's
   * MAX_CONCURRENT_STREAMS are open, when one ends. Returns how to give it up.
   */
  request(block: Uint8Array, body: Uint8Array, events: StreamEvents): () => void {
    if (!this.usable) throw new Error("HTTP/2 connection closing");
    let id = 0;
    const later = { events, start: () => (id = this.#start(block, body, events)) };
    if (this.#streams.size < this.#maxStreams) later.start();
    else this.#later.push(later);
    return () => id ? this.#cancel(id) : this.#later.splice(this.#later.indexOf(later) >>> 0, 1);
  }

  #start(block: Uint8Array, body: Uint8Array, events: StreamEvents): number {
    const id = this.#nextId;
    this.#nextId += 2;
    const s: Stream = { id, events, window: this.#peerInitial, unacked: 0 };
    this.#streams.set(id, s);
    if (this.#streams.size === 1) this.#ref(true);
    const limit = Math.max(0, Math.min(this.#connWindow, s.window));
    const { bytes, sent } = requestFrames(id, block, this.#maxFrame, body, limit);
    this.#connWindow -= sent;
    s.window -= sent;
    if (sent < body.length) {
      s.pending = body.subarray(sent);
      this.#blocked.push(s);
    }
    this.#send(bytes);
    return id;
  }

  /** Give a stream up (RST_STREAM CANCEL); its events are not called again. */
  #cancel(id: number): void {
    if (!this.#forget(id)) return;
    if (!this.#destroyed) this.#send(rstStreamFrame(id, H2_ERROR.CANCEL));
  }

  /** An HTTP/2 PING; `callback` gets its answer (null) or why none will come. */
  ping(callback: (err: Error | null) => void): boolean {
    if (this.#destroyed) return false;
    const id = ++this.#pingId;
    const data = new Uint8Array(8);
    new DataView(data.buffer).setUint32(4, id);
    this.#pings.set(id, callback);
    this.#send(pingFrame(data, false));
    return true;
  }

  /** End the connection: every open stream fails with `err` (or "connection closed"). */
  destroy(err?: Error): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const why = err ?? new Error("connection closed");
    const streams = [...this.#streams.values(), ...this.#later.splice(0)];
    this.#streams.clear();
    this.#blocked = [];
    for (const s of streams) s.events.fail(why);
    for (const cb of this.#pings.values()) cb(why);
    this.#pings.clear();
    try {
      this.#conn?.close();
    } catch { /* already closed */ }
    this.#hooks.gone(err);
  }

  /** Remove a stream; false when it had already ended. */
  #forget(id: number): boolean {
    const s = this.#streams.get(id);
    if (!s) return false;
    this.#streams.delete(id);
    if (s.pending) this.#blocked = this.#blocked.filter((b) => b !== s);
    if (this.#later.length > 0 && !this.#destroyed) this.#later.shift()!.start();
    if (this.#streams.size === 0) {
      this.#ref(false);
      if (this.#goaway) this.destroy();
    }
    return true;
  }

  /** An idle connection does not keep the process alive. */
  #ref(on: boolean): void {
    if (on === this.#refed || !this.#conn) return;
    this.#refed = on;
    if (on) this.#conn.ref();
    else this.#conn.unref();
  }

  #send(bytes: Uint8Array): void {
    if (!this.#destroyed) this.#writer.send(bytes);
  }

  async #readLoop(conn: H2Conn): Promise<void> {
    const reader = new FrameReader();
    try {
      for (;;) {
        const n = await conn.read(reader.space());
        if (n === null) return this.destroy();
        reader.pushed(n);
        for (let f = reader.next(); f; f = reader.next()) {
          this.#frame(f);
          if (this.#destroyed) return;
        }
      }
    } catch (e) {
      // A frame or header block that breaks the protocol ends the connection with a GOAWAY.
      const code = e instanceof HpackError
        ? H2_ERROR.COMPRESSION_ERROR
        : (e as H2ProtocolError).code;
      if (code !== undefined) conn.write(goawayFrame(0, code)).catch(() => {});
      this.destroy(this.#destroyed ? undefined : e as Error);
    }
  }

  #frame(f: Frame): void {
    if (this.#cont && f.type !== FRAME.CONTINUATION) {
      throw new H2ProtocolError("header block interrupted");
    }
    switch (f.type) {
      case FRAME.DATA:
        return this.#data(f);
      case FRAME.HEADERS:
        this.#cont = { stream: f.stream, parts: [], end: (f.flags & FLAG.END_STREAM) !== 0 };
        return this.#headerPart(f.stream, framePayload(f).slice(), f.flags);
      case FRAME.CONTINUATION:
        if (!this.#cont || this.#cont.stream !== f.stream) {
          throw new H2ProtocolError("CONTINUATION without HEADERS");
        }
        return this.#headerPart(f.stream, f.payload.slice(), f.flags);
      case FRAME.RST_STREAM: {
        const code = parseU32(f.payload, "RST_STREAM");
        const s = this.#streams.get(f.stream);
        if (s && this.#forget(f.stream)) {
          s.events.fail(new Error(`etcd reset the stream (HTTP/2 error code ${code})`));
        }
        return;
      }
      case FRAME.SETTINGS:
        return this.#settings(f);
      case FRAME.PING:
        return this.#ping(f);
      case FRAME.GOAWAY:
        return this.#onGoaway(f);
      case FRAME.WINDOW_UPDATE:
        return this.#windowUpdate(f);
      case FRAME.PUSH_PROMISE:
        throw new H2ProtocolError("PUSH_PROMISE although push is disabled");
    }
  }

  #data(f: Frame): void {
    // Flow control counts the whole payload, padding included.
    this.#connUnacked += f.payload.length;
    if (this.#connUnacked >= CONN_WINDOW / 2) {
      this.#send(windowUpdateFrame(0, this.#connUnacked));
      this.#connUnacked = 0;
    }
    const s = this.#streams.get(f.stream);
    if (!s) return; // cancelled: its data still counted for the connection
    const chunk = framePayload(f);
    if (chunk.length > 0) s.events.data(chunk.slice());
    if (f.flags & FLAG.END_STREAM) return this.#ended(s);
    s.unacked += f.payload.length;
    if (s.unacked >= STREAM_WINDOW / 2) {
      this.#send(windowUpdateFrame(s.id, s.unacked));
      s.unacked = 0;
    }
  }

  #headerPart(stream: number, part: Uint8Array, flags: number): void {
    const c = this.#cont!;
    c.parts.push(part);
    if (!(flags & FLAG.END_HEADERS)) return;
    this.#cont = undefined;
    // Decoded even for a stream given up: the dynamic table must follow every block.
    const fields = this.#hpack.decode(concat(c.parts));
    const s = this.#streams.get(stream);
    if (!s) return;
    s.events.headers(fields, c.end);
    if (c.end) this.#ended(s);
  }

  /** The server ended the stream; a request still sending is cut short. */
  #ended(s: Stream): void {
    const unsent = s.pending !== undefined;
    if (!this.#forget(s.id)) return;
    if (unsent && !this.#destroyed) this.#send(rstStreamFrame(s.id, H2_ERROR.CANCEL));
    s.events.end();
  }

  #settings(f: Frame): void {
    if (f.flags & FLAG.ACK) return;
    for (const [id, value] of parseSettings(f.payload)) {
      if (id === SETTING.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) {
          throw new H2ProtocolError("window above 2^31-1", H2_ERROR.FLOW_CONTROL_ERROR);
        }
        const delta = value - this.#peerInitial;
        this.#peerInitial = value;
        for (const s of this.#streams.values()) s.window += delta;
      } else if (id === SETTING.MAX_CONCURRENT_STREAMS) this.#maxStreams = value;
      else if (id === SETTING.MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME || value > 0xffffff) {
          throw new H2ProtocolError(`MAX_FRAME_SIZE ${value}`);
        }
        this.#maxFrame = value;
      }
    }
    this.#send(SETTINGS_ACK);
    this.#unblock();
  }

  #ping(f: Frame): void {
    if (f.payload.length !== 8) {
      throw new H2ProtocolError("PING payload is not 8 octets", H2_ERROR.FRAME_SIZE_ERROR);
    }
    if (!(f.flags & FLAG.ACK)) return this.#send(pingFrame(f.payload.slice(), true));
    const id = new DataView(f.payload.buffer, f.payload.byteOffset, 8).getUint32(4);
    const cb = this.#pings.get(id);
    this.#pings.delete(id);
    cb?.(null);
  }

  /** No new streams; those above the last one the server took fail (they may be retried). */
  #onGoaway(f: Frame): void {
    const { lastStream, code, debug } = parseGoaway(f.payload);
    this.#goaway = true;
    const why = new Error(
      `etcd closed the connection (HTTP/2 GOAWAY, error code ${code}${debug ? `: ${debug}` : ""})`,
    );
    const later = this.#later.splice(0); // never to start here
    for (const s of [...this.#streams.values()]) {
      if (s.id > lastStream && this.#forget(s.id)) s.events.fail(why);
    }
    for (const l of later) l.events.fail(why);
    this.#hooks.gone(why);
    if (this.#streams.size === 0) this.destroy(why);
  }

  #windowUpdate(f: Frame): void {
    const inc = parseU32(f.payload, "WINDOW_UPDATE") & 0x7fffffff;
    if (f.stream === 0) {
      if (inc === 0) throw new H2ProtocolError("WINDOW_UPDATE of 0");
      this.#connWindow += inc;
    } else {
      const s = this.#streams.get(f.stream);
      if (s) s.window += inc;
    }
    this.#unblock();
  }

  /** Send what the windows now allow of requests waiting for them, oldest first. */
  #unblock(): void {
    for (const s of [...this.#blocked]) {
      const limit = Math.min(this.#connWindow, s.window);
      if (limit <= 0) continue;
      const data = s.pending!;
      const n = Math.min(limit, data.length);
      const end = n === data.length;
      this.#send(dataFrames(s.id, data.subarray(0, n), this.#maxFrame, end));
      this.#connWindow -= n;
      s.window -= n;
      if (end) {
        s.pending = undefined;
        this.#blocked = this.#blocked.filter((b) => b !== s);
      } else s.pending = data.subarray(n);
    }
  }
}
