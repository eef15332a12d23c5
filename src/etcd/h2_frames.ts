/**
 * HTTP/2 frames (RFC 9113 section 4 and 6): the 9-octet header, the frames a client sends,
 * and a reader that cuts a byte stream into frames. Pure: no I/O.
 */

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;

export const FLAG = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const SETTING = {
  HEADER_TABLE_SIZE: 1,
  ENABLE_PUSH: 2,
  MAX_CONCURRENT_STREAMS: 3,
  INITIAL_WINDOW_SIZE: 4,
  MAX_FRAME_SIZE: 5,
  MAX_HEADER_LIST_SIZE: 6,
} as const;

/** Error codes (RFC 9113 section 7). */
export const H2_ERROR = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  FLOW_CONTROL_ERROR: 3,
  FRAME_SIZE_ERROR: 6,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
} as const;

/** The client connection preface, sent before anything else. */
export const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export const FRAME_HEADER = 9;
/** The largest frame payload either side accepts until told otherwise. */
export const DEFAULT_MAX_FRAME = 16_384;
/** The flow-control window every stream and the connection start with. */
export const DEFAULT_WINDOW = 65_535;
export const MAX_WINDOW = 2 ** 31 - 1;

/** A frame that breaks the protocol: the connection ends with a GOAWAY carrying `code`. */
export class H2ProtocolError extends Error {
  override name = "H2ProtocolError";
  constructor(message: string, readonly code: number = H2_ERROR.PROTOCOL_ERROR) {
    super(message);
  }
}

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  /** A view into the reader's buffer: valid until the next `push`. */
  payload: Uint8Array;
}

/** Write a frame header at `at` in `buf`. */
export function frameHeader(
  buf: Uint8Array,
  at: number,
  length: number,
  type: number,
  flags: number,
  stream: number,
): void {
  buf[at] = length >>> 16;
  buf[at + 1] = (length >>> 8) & 0xff;
  buf[at + 2] = length & 0xff;
  buf[at + 3] = type;
  buf[at + 4] = flags;
  buf[at + 5] = (stream >>> 24) & 0x7f;
  buf[at + 6] = (stream >>> 16) & 0xff;
  buf[at + 7] = (stream >>> 8) & 0xff;
  buf[at + 8] = stream & 0xff;
}

/** A whole frame: header and payload in one buffer. */
export function frame(type: number, flags: number, stream: number, payload: Uint8Array) {
  const out = new Uint8Array(FRAME_HEADER + payload.length);
  frameHeader(out, 0, payload.length, type, flags, stream);
  out.set(payload, FRAME_HEADER);
  return out;
}

function u32(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

export function settingsFrame(settings: [id: number, value: number][]): Uint8Array {
  const p = settings.flatMap(([id, v]) => [id >>> 8, id & 0xff, ...u32(v)]);
  return frame(FRAME.SETTINGS, 0, 0, new Uint8Array(p));
}

export const SETTINGS_ACK = frame(FRAME.SETTINGS, FLAG.ACK, 0, new Uint8Array());

export function pingFrame(data: Uint8Array, ack: boolean): Uint8Array {
  return frame(FRAME.PING, ack ? FLAG.ACK : 0, 0, data);
}

export function windowUpdateFrame(stream: number, increment: number): Uint8Array {
  return frame(FRAME.WINDOW_UPDATE, 0, stream, new Uint8Array(u32(increment & 0x7fffffff)));
}

export function rstStreamFrame(stream: number, code: number): Uint8Array {
  return frame(FRAME.RST_STREAM, 0, stream, new Uint8Array(u32(code)));
}

export function goawayFrame(lastStream: number, code: number): Uint8Array {
  return frame(FRAME.GOAWAY, 0, 0, new Uint8Array([...u32(lastStream), ...u32(code)]));
}

export function parseSettings(payload: Uint8Array): [id: number, value: number][] {
  if (payload.length % 6 !== 0) {
    throw new H2ProtocolError("SETTINGS length not a multiple of 6", H2_ERROR.FRAME_SIZE_ERROR);
  }
  const out: [number, number][] = [];
  for (let at = 0; at < payload.length; at += 6) {
    out.push([(payload[at] << 8) | payload[at + 1], readU32(payload, at + 2)]);
  }
  return out;
}

/** A 4-octet payload: WINDOW_UPDATE's increment (reserved bit cleared), RST_STREAM's code. */
export function parseU32(payload: Uint8Array, what: string): number {
  if (payload.length !== 4) {
    throw new H2ProtocolError(`${what} payload is not 4 octets`, H2_ERROR.FRAME_SIZE_ERROR);
  }
  return readU32(payload, 0);
}

export function parseGoaway(
  payload: Uint8Array,
): { lastStream: number; code: number; debug: string } {
  if (payload.length < 8) {
    throw new H2ProtocolError("GOAWAY shorter than 8 octets", H2_ERROR.FRAME_SIZE_ERROR);
  }
  return {
    lastStream: readU32(payload, 0) & 0x7fffffff,
    code: readU32(payload, 4),
    debug: new TextDecoder().decode(payload.subarray(8)),
  };
}

/** DATA's or HEADERS's content: padding (and HEADERS's priority fields) removed. */
export function framePayload(f: Frame): Uint8Array {
  let p = f.payload;
  if (f.flags & FLAG.PADDED) {
    if (p.length < 1 || p[0] >= p.length) throw new H2ProtocolError("padding exceeds the frame");
    p = p.subarray(1, p.length - p[0]);
  }
  if (f.type === FRAME.HEADERS && f.flags & FLAG.PRIORITY) {
    if (p.length < 5) throw new H2ProtocolError("HEADERS shorter than its priority fields");
    p = p.subarray(5);
  }
  return p;
}

/**
 * Cuts received bytes into frames. Bytes are appended with `push`; `next` returns a whole
 * frame or undefined. Payloads are views into the buffer, valid until the next `push`.
 */
export class FrameReader {
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  readonly #maxFrame: number;

  constructor(maxFrame = DEFAULT_MAX_FRAME, size = 256 * 1024) {
    this.#maxFrame = maxFrame;
    this.#buf = new Uint8Array(Math.max(size, maxFrame + FRAME_HEADER));
  }

  /** Where the next read should go (compacting first): read into it, then `pushed(n)`. */
  space(): Uint8Array {
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    return this.#buf.subarray(this.#end);
  }

  pushed(n: number): void {
    this.#end += n;
  }

  /** Append bytes (tests; the session reads straight into `space()`). */
  push(bytes: Uint8Array): void {
    let at = 0;
    while (at < bytes.length) {
      const room = this.space();
      const n = Math.min(room.length, bytes.length - at);
      room.set(bytes.subarray(at, at + n));
      this.pushed(n);
      at += n;
    }
  }

  next(): Frame | undefined {
    const b = this.#buf;
    const s = this.#start;
    if (this.#end - s < FRAME_HEADER) return undefined;
    const length = (b[s] << 16) | (b[s + 1] << 8) | b[s + 2];
    if (length > this.#maxFrame) {
      throw new H2ProtocolError(`frame of ${length} octets`, H2_ERROR.FRAME_SIZE_ERROR);
    }
    if (this.#end - s < FRAME_HEADER + length) return undefined;
    this.#start = s + FRAME_HEADER + length;
    return {
      type: b[s + 3],
      flags: b[s + 4],
      stream: readU32(b, s + 5) & 0x7fffffff,
      payload: b.subarray(s + FRAME_HEADER, s + FRAME_HEADER + length),
    };
  }
}

/**
 * A request's frames in one buffer: HEADERS (with CONTINUATIONs when the block exceeds the
 * frame size) and, when `data` is given, as many DATA frames as `dataLimit` allows (the
 * send windows), the last ending the stream if it carries all of `data`. Returns the
 * buffer and how many octets of `data` went.
 */
export function requestFrames(
  stream: number,
  block: Uint8Array,
  maxFrame: number,
  data: Uint8Array,
  dataLimit: number,
): { bytes: Uint8Array; sent: number } {
  const headerFrames = Math.max(1, Math.ceil(block.length / maxFrame));
  const sent = Math.min(data.length, dataLimit);
  const dataFrames = dataFrameCount(sent, maxFrame, sent === data.length);
  const out = new Uint8Array(
    FRAME_HEADER * (headerFrames + dataFrames) + block.length + sent,
  );
  let at = 0;
  for (let i = 0; i < headerFrames; i++) {
    const part = block.subarray(i * maxFrame, (i + 1) * maxFrame);
    const last = i === headerFrames - 1;
    frameHeader(
      out,
      at,
      part.length,
      i === 0 ? FRAME.HEADERS : FRAME.CONTINUATION,
      last ? FLAG.END_HEADERS : 0,
      stream,
    );
    out.set(part, at + FRAME_HEADER);
    at += FRAME_HEADER + part.length;
  }
  at = dataInto(out, at, stream, data.subarray(0, sent), maxFrame, sent === data.length);
  return { bytes: out, sent };
}

/** DATA frames carrying `data` (which may be empty) into `out` at `at`. */
function dataInto(
  out: Uint8Array,
  at: number,
  stream: number,
  data: Uint8Array,
  maxFrame: number,
  end: boolean,
): number {
  const frames = dataFrameCount(data.length, maxFrame, end);
  for (let i = 0; i < frames; i++) {
    const part = data.subarray(i * maxFrame, (i + 1) * maxFrame);
    frameHeader(
      out,
      at,
      part.length,
      FRAME.DATA,
      end && i === frames - 1 ? FLAG.END_STREAM : 0,
      stream,
    );
    out.set(part, at + FRAME_HEADER);
    at += FRAME_HEADER + part.length;
  }
  return at;
}

/** DATA frames for the rest of a request the send windows held back. */
export function dataFrames(
  stream: number,
  data: Uint8Array,
  maxFrame: number,
  end: boolean,
): Uint8Array {
  const frames = dataFrameCount(data.length, maxFrame, end);
  const out = new Uint8Array(FRAME_HEADER * frames + data.length);
  dataInto(out, 0, stream, data, maxFrame, end);
  return out;
}

/** DATA frames for `len` bytes: one at least when it ends the stream (END_STREAM rides on it). */
function dataFrameCount(len: number, maxFrame: number, end: boolean): number {
  return end ? Math.max(1, Math.ceil(len / maxFrame)) : Math.ceil(len / maxFrame);
}

/** The parts as one array (the part itself when there is one). */
export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
