/**
 * Binlog events (v4 format, MySQL 5.6+/8 and MariaDB), decoded from the bytes of one event
 * as the replication stream or a binlog file holds it. Pure: bytes in, values out.
 */
import { inflateSync, zstdDecompressSync } from "node:zlib";

export interface EventHeader {
  timestamp: number;
  type: number;
  serverId: number;
  eventSize: number;
  /** Position just past this event in its binlog file. */
  logPos: number;
  flags: number;
}

export interface TableMap {
  tableId: bigint;
  schema: string;
  table: string;
  columnTypes: Uint8Array;
  /** Per-column metadata, decoded per type (see `readMeta`). */
  columnMeta: number[];
  nullable: boolean[];
  /** Optional metadata (binlog_row_metadata = MINIMAL or FULL), when the server sent it. */
  meta?: TableMapMeta;
}

/** TABLE_MAP optional metadata (MySQL 8.0.1+, MariaDB 10.5+). */
export interface TableMapMeta {
  /** Per numeric column, in order of the numeric columns: true when unsigned. */
  unsigned?: boolean[];
  /** Collation id per character column (string, varchar, blob types), in their order. */
  collations?: number[];
  /** Collation id per ENUM/SET column, in their order. */
  enumSetCollations?: number[];
  columnNames?: string[];
  setValues?: string[][];
  enumValues?: string[][];
  /** Primary-key column indexes, in key order. */
  primaryKey?: number[];
}

export type RowsOp = "insert" | "update" | "delete";

export type BinlogEvent =
  | { kind: "format"; binlogVersion: number; serverVersion: string; checksum: boolean }
  | { kind: "rotate"; file: string; position: bigint }
  | { kind: "query"; schema: string; query: string }
  | { kind: "xid"; xid: bigint }
  | { kind: "table_map"; map: TableMap }
  | {
    kind: "rows";
    op: RowsOp;
    tableId: bigint;
    flags: number;
    /** Column count, present-column bitmaps and row images (decoded by rows.ts). */
    body: Uint8Array;
    version: 1 | 2;
    /**
     * MySQL 8 PARTIAL_UPDATE_ROWS (type 39, binlog_row_value_options=PARTIAL_JSON): every
     * after image starts with its value options (rows.ts reads them).
     */
    partial?: boolean;
  }
  | { kind: "gtid"; gtid: string }
  | { kind: "mariadb_gtid"; domain: number; server: number; seq: bigint; standalone: boolean }
  | { kind: "gtid_list"; gtids: string[] }
  | { kind: "heartbeat"; file: string }
  /**
   * MySQL 8.0.20+ TRANSACTION_PAYLOAD (binlog_transaction_compression): the events of one
   * transaction, uncompressed and already decoded in order (table maps inside are
   * remembered by the decoder like any other).
   */
  | {
    kind: "transaction_payload";
    events: { header: EventHeader; event: BinlogEvent }[];
  }
  /** Any other event (ANNOTATE_ROWS, BINLOG_CHECKPOINT, ...), skipped by its length. */
  | { kind: "other"; type: number };

export class BinlogError extends Error {
  override name = "BinlogError";
}

export const EVENT = {
  QUERY: 2,
  ROTATE: 4,
  FORMAT_DESCRIPTION: 15,
  XID: 16,
  TABLE_MAP: 19,
  WRITE_ROWS_V1: 23,
  UPDATE_ROWS_V1: 24,
  DELETE_ROWS_V1: 25,
  HEARTBEAT: 27,
  PARTIAL_UPDATE_ROWS: 39,
  TRANSACTION_PAYLOAD: 40,
  WRITE_ROWS: 30,
  UPDATE_ROWS: 31,
  DELETE_ROWS: 32,
  GTID: 33,
  MARIADB_GTID: 162,
  MARIADB_GTID_LIST: 163,
  MARIADB_ANNOTATE_ROWS: 160,
  MARIADB_BINLOG_CHECKPOINT: 161,
} as const;

const dec = new TextDecoder();
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function uint48(v: DataView, at: number): bigint {
  return BigInt(v.getUint32(at, true)) | (BigInt(v.getUint16(at + 4, true)) << 32n);
}

/** A length-encoded integer at `at`; returns [value, next offset]. */
export function lenenc(b: Uint8Array, at: number): [number, number] {
  if (at >= b.length) throw new BinlogError("truncated length-encoded integer");
  const f = b[at];
  if (f < 0xfb) return [f, at + 1];
  if (f === 0xfc) return [b[at + 1] | (b[at + 2] << 8), at + 3];
  if (f === 0xfd) return [b[at + 1] | (b[at + 2] << 8) | (b[at + 3] << 16), at + 4];
  const v = new DataView(b.buffer, b.byteOffset + at + 1, 8);
  return [Number(v.getBigUint64(0, true)), at + 9];
}

const ROWS: Record<number, [RowsOp, 1 | 2]> = {
  23: ["insert", 1],
  24: ["update", 1],
  25: ["delete", 1],
  30: ["insert", 2],
  31: ["update", 2],
  32: ["delete", 2],
  39: ["update", 2], // PARTIAL_UPDATE_ROWS
  // MariaDB's compressed row events (log_bin_compress): the body after the post-header
  // is zlib-compressed.
  166: ["insert", 1],
  167: ["update", 1],
  168: ["delete", 1],
  169: ["insert", 2],
  170: ["update", 2],
  171: ["delete", 2],
};
const QUERY_COMPRESSED = 165;

/**
 * MariaDB's compressed payload: one byte (0x80 | n), the uncompressed length in n
 * big-endian bytes, then a zlib stream.
 */
export function uncompressMariadb(b: Uint8Array): Uint8Array {
  if (b.length < 1 || (b[0] & 0xe0) !== 0x80) {
    throw new BinlogError("bad compressed binlog payload");
  }
  const n = b[0] & 0x07;
  let len = 0;
  for (let i = 1; i <= n; i++) len = len * 256 + b[i];
  const out = new Uint8Array(inflateSync(b.subarray(1 + n)));
  if (out.length !== len) throw new BinlogError("compressed binlog payload has the wrong length");
  return out;
}

/** Decodes events in order, remembering the format description and the table maps. */
export class BinlogDecoder {
  #checksum = false;
  #maps = new Map<bigint, TableMap>();
  /** Post-header length per event type (index type - 1), from the FORMAT_DESCRIPTION. */
  #postHeader: Uint8Array | undefined;

  tableMap(tableId: bigint): TableMap | undefined {
    return this.#maps.get(tableId);
  }

  decode(ev: Uint8Array): { header: EventHeader; event: BinlogEvent } {
    if (ev.length < 19) throw new BinlogError(`truncated binlog event (${ev.length} bytes)`);
    const header = readHeader(ev);
    if (header.eventSize !== ev.length) {
      throw new BinlogError(
        `binlog event size ${header.eventSize} does not match the ${ev.length} bytes received`,
      );
    }
    // The fake ROTATE a server sends first, before any FORMAT_DESCRIPTION, carries a
    // checksum when the replica asked for one (@master_binlog_checksum); only the bytes
    // tell. Read as part of the name, it would save a file name the server never knew.
    if (header.type === EVENT.ROTATE && !this.#postHeader && ev.length >= 19 + 8 + 4) {
      const sum = new DataView(ev.buffer, ev.byteOffset, ev.byteLength)
        .getUint32(ev.length - 4, true);
      return this.#decode(ev, header, sum === crc32(ev.subarray(0, ev.length - 4)));
    }
    return this.#decode(ev, header, this.#checksum);
  }

  #decode(
    ev: Uint8Array,
    header: EventHeader,
    checksummed: boolean,
  ): { header: EventHeader; event: BinlogEvent } {
    const v = new DataView(ev.buffer, ev.byteOffset, ev.byteLength);
    let end = ev.length;
    if (header.type === EVENT.FORMAT_DESCRIPTION) {
      // Servers that know checksums (MySQL 5.6.1+, MariaDB 5.3+) end the FDE with the
      // checksum algorithm byte (0 off, 1 CRC32) and a 4-byte checksum slot.
      const alg = ev.length >= 19 + 57 + 5 ? ev[ev.length - 5] : 0;
      this.#checksum = checksummed = alg === 1;
      end -= alg === 0 || alg === 1 ? 5 : 0;
      if (alg !== 0 && alg !== 1) {
        throw new BinlogError(`unsupported binlog checksum algorithm ${alg}`);
      }
    } else if (checksummed) end -= 4;
    if (end < 19) throw new BinlogError(`truncated binlog event type ${header.type}`);
    if (checksummed) {
      const want = v.getUint32(ev.length - 4, true);
      const got = crc32(ev.subarray(0, ev.length - 4));
      if (want !== got) {
        throw new BinlogError(
          `binlog event checksum mismatch at position ${header.logPos} (corrupt stream)`,
        );
      }
    }
    const body = ev.subarray(19, end);
    if (header.type === EVENT.FORMAT_DESCRIPTION && body.length >= 57) {
      this.#postHeader = body.slice(57);
      this.#maps.clear();
    }
    try {
      return { header, event: this.#body(header, body) };
    } catch (e) {
      if (e instanceof BinlogError) throw e;
      throw new BinlogError(
        `cannot decode binlog event type ${header.type} at ${header.logPos}: ${
          (e as Error).message
        }`,
      );
    }
  }

  /** The post-header length the FDE announced for an event type, or `fallback`. */
  #post(type: number, fallback: number): number {
    const n = this.#postHeader?.[type - 1];
    return n === undefined ? fallback : n;
  }

  #body(h: EventHeader, b: Uint8Array): BinlogEvent {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const need = (n: number) => {
      if (b.length < n) throw new BinlogError(`truncated binlog event type ${h.type}`);
    };
    switch (h.type) {
      case EVENT.FORMAT_DESCRIPTION: {
        need(57);
        const sv = b.subarray(2, 52);
        const nul = sv.indexOf(0);
        return {
          kind: "format",
          binlogVersion: v.getUint16(0, true),
          serverVersion: dec.decode(nul < 0 ? sv : sv.subarray(0, nul)),
          checksum: this.#checksum,
        };
      }
      case EVENT.ROTATE:
        need(8);
        return {
          kind: "rotate",
          position: v.getBigUint64(0, true),
          file: dec.decode(b.subarray(8)),
        };
      case QUERY_COMPRESSED:
      case EVENT.QUERY: {
        need(13);
        const dbLen = b[8];
        const statusLen = v.getUint16(11, true);
        const at = this.#post(EVENT.QUERY, 13) + statusLen;
        need(at + dbLen + 1);
        const text = b.subarray(at + dbLen + 1);
        return {
          kind: "query",
          schema: dec.decode(b.subarray(at, at + dbLen)),
          query: dec.decode(h.type === QUERY_COMPRESSED ? uncompressMariadb(text) : text),
        };
      }
      case EVENT.XID:
        need(8);
        return { kind: "xid", xid: v.getBigUint64(0, true) };
      case EVENT.TABLE_MAP: {
        const map = this.#tableMap(b, v);
        this.#maps.set(map.tableId, map);
        return { kind: "table_map", map };
      }
      case EVENT.HEARTBEAT:
        return { kind: "heartbeat", file: dec.decode(b) };
      case EVENT.GTID: {
        need(25);
        const sid = [...b.subarray(1, 17)].map((x) => x.toString(16).padStart(2, "0")).join("");
        const uuid = `${sid.slice(0, 8)}-${sid.slice(8, 12)}-${sid.slice(12, 16)}-${
          sid.slice(16, 20)
        }-${sid.slice(20)}`;
        return { kind: "gtid", gtid: `${uuid}:${v.getBigUint64(17, true)}` };
      }
      case EVENT.MARIADB_GTID:
        need(13);
        return {
          kind: "mariadb_gtid",
          seq: v.getBigUint64(0, true),
          domain: v.getUint32(8, true),
          server: h.serverId,
          standalone: (b[12] & 1) === 1,
        };
      case EVENT.MARIADB_GTID_LIST: {
        need(4);
        const n = v.getUint32(0, true) & 0x0fffffff;
        need(4 + n * 16);
        const gtids: string[] = [];
        for (let i = 0; i < n; i++) {
          const at = 4 + i * 16;
          gtids.push(
            `${v.getUint32(at, true)}-${v.getUint32(at + 4, true)}-${v.getBigUint64(at + 8, true)}`,
          );
        }
        return { kind: "gtid_list", gtids };
      }
      case EVENT.TRANSACTION_PAYLOAD:
        return this.#payload(b);
    }
    const rows = ROWS[h.type];
    if (rows) {
      // MySQL 5.1.0-5.1.15 wrote 4-byte table ids (post-header 6); everything since 6.
      const idLen = this.#post(h.type, 8) === 6 ? 4 : 6;
      need(idLen + 2);
      const tableId = idLen === 4 ? BigInt(v.getUint32(0, true)) : uint48(v, 0);
      const flags = v.getUint16(idLen, true);
      let at = idLen + 2;
      if (rows[1] === 2) {
        need(at + 2);
        at += v.getUint16(at, true); // extra data length includes its own two bytes
      }
      need(at);
      let body = b.subarray(at);
      if (h.type >= 166) {
        // Only the row images are compressed; the column count and bitmaps are not.
        const [n, after] = lenenc(body, 0);
        const plain = after + ((n + 7) >> 3) * (rows[0] === "update" ? 2 : 1);
        const rowsData = uncompressMariadb(body.subarray(plain));
        const joined = new Uint8Array(plain + rowsData.length);
        joined.set(body.subarray(0, plain));
        joined.set(rowsData, plain);
        body = joined;
      }
      if (body.length === 0) throw new BinlogError(`truncated rows event type ${h.type}`);
      const ev: BinlogEvent = { kind: "rows", op: rows[0], tableId, flags, body, version: rows[1] };
      if (h.type === EVENT.PARTIAL_UPDATE_ROWS) ev.partial = true;
      return ev;
    }
    return { kind: "other", type: h.type };
  }

  /**
   * TRANSACTION_PAYLOAD: fields (type, length, value as length-encoded integers) up to the
   * end mark 0, then the payload: the transaction's events without checksums, compressed
   * with zstd (compression type 0) or not (255). MySQL source:
   * libbinlogevents Transaction_payload_event / codecs::binary::Transaction_payload.
   */
  #payload(b: Uint8Array): BinlogEvent {
    let at = 0;
    let compression = 255;
    let size = -1;
    let usize = -1;
    for (;;) {
      let type: number, len: number;
      [type, at] = lenenc(b, at);
      if (type === 0) break;
      [len, at] = lenenc(b, at);
      const end = at + len;
      if (end > b.length) throw new BinlogError("truncated TRANSACTION_PAYLOAD event");
      const [value] = lenenc(b, at);
      if (type === 1) size = value;
      else if (type === 2) compression = value;
      else if (type === 3) usize = value;
      at = end;
    }
    const raw = b.subarray(at, size >= 0 ? at + size : b.length);
    if (size >= 0 && raw.length !== size) {
      throw new BinlogError("truncated TRANSACTION_PAYLOAD event");
    }
    let data: Uint8Array;
    if (compression === 255) data = raw;
    else if (compression === 0) data = new Uint8Array(zstdDecompressSync(raw));
    else throw new BinlogError(`unknown TRANSACTION_PAYLOAD compression type ${compression}`);
    if (usize >= 0 && data.length !== usize) {
      throw new BinlogError("TRANSACTION_PAYLOAD has the wrong uncompressed size");
    }
    const events: { header: EventHeader; event: BinlogEvent }[] = [];
    for (let p = 0; p < data.length;) {
      if (p + 19 > data.length) throw new BinlogError("truncated event in TRANSACTION_PAYLOAD");
      const one = data.subarray(
        p,
        p + new DataView(data.buffer, data.byteOffset + p + 9, 4)
          .getUint32(0, true),
      );
      const header = readHeader(one);
      if (header.eventSize < 19 || header.eventSize !== one.length) {
        throw new BinlogError("truncated event in TRANSACTION_PAYLOAD");
      }
      events.push(this.#decode(one, header, false));
      p += header.eventSize;
    }
    return { kind: "transaction_payload", events };
  }

  #tableMap(b: Uint8Array, v: DataView): TableMap {
    const idLen = this.#post(EVENT.TABLE_MAP, 8) === 6 ? 4 : 6;
    if (b.length < idLen + 2) throw new BinlogError("truncated TABLE_MAP event");
    const tableId = idLen === 4 ? BigInt(v.getUint32(0, true)) : uint48(v, 0);
    let at = idLen + 2;
    const dbLen = b[at++];
    const schema = dec.decode(b.subarray(at, at + dbLen));
    at += dbLen + 1;
    const tLen = b[at++];
    const table = dec.decode(b.subarray(at, at + tLen));
    at += tLen + 1;
    let n: number;
    [n, at] = lenenc(b, at);
    const columnTypes = b.slice(at, at + n);
    at += n;
    let metaLen: number;
    [metaLen, at] = lenenc(b, at);
    const meta = b.subarray(at, at + metaLen);
    at += metaLen;
    const nullBits = b.subarray(at, at + ((n + 7) >> 3));
    if (at + ((n + 7) >> 3) > b.length || meta.length < metaLen || columnTypes.length < n) {
      throw new BinlogError("truncated TABLE_MAP event");
    }
    const columnMeta: number[] = [];
    let m = 0;
    for (let i = 0; i < n; i++) {
      const [value, size] = readMeta(columnTypes[i], meta, m);
      columnMeta.push(value);
      m += size;
    }
    const nullable = Array.from({ length: n }, (_, i) => (nullBits[i >> 3] & (1 << (i & 7))) !== 0);
    at += nullBits.length;
    const map: TableMap = { tableId, schema, table, columnTypes, columnMeta, nullable };
    if (at < b.length) map.meta = optionalMeta(b.subarray(at), map);
    return map;
  }
}

/** The 19-byte v4 event header. */
export function readHeader(ev: Uint8Array): EventHeader {
  const v = new DataView(ev.buffer, ev.byteOffset, ev.byteLength);
  return {
    timestamp: v.getUint32(0, true),
    type: ev[4],
    serverId: v.getUint32(5, true),
    eventSize: v.getUint32(9, true),
    logPos: v.getUint32(13, true),
    flags: v.getUint16(17, true),
  };
}

/** A column's metadata in a TABLE_MAP: [value, bytes used]. */
function readMeta(type: number, meta: Uint8Array, at: number): [number, number] {
  switch (type) {
    case 4: // FLOAT
    case 5: // DOUBLE
    case 252: // BLOB (length bytes)
    case 255: // GEOMETRY
    case 245: // JSON
    case 17: // TIMESTAMP2 (fsp)
    case 18: // DATETIME2
    case 19: // TIME2
      return [meta[at], 1];
    case 15: // VARCHAR: max length, little-endian
    case 253: // VAR_STRING
    case 16: // BIT: bits%8, bytes
      return [meta[at] | (meta[at + 1] << 8), 2];
    case 246: // NEWDECIMAL: precision, scale
    case 254: // STRING: real type, length (big-endian pair)
    case 247: // ENUM
    case 248: // SET
      return [(meta[at] << 8) | meta[at + 1], 2];
    default:
      return [0, 0];
  }
}

/** Whether a column counts as numeric for the SIGNEDNESS field. */
function isNumericType(t: number): boolean {
  return t === 1 || t === 2 || t === 3 || t === 4 || t === 5 || t === 8 || t === 9 ||
    t === 246;
}

/** The real type of a column (ENUM and SET are logged as STRING with the type in meta). */
export function realType(type: number, meta: number): number {
  if (type !== 254) return type;
  let real = meta >> 8;
  if ((real & 0x30) !== 0x30) real |= 0x30;
  return real === 247 || real === 248 ? real : 254;
}

function isCharacterType(t: number): boolean {
  return t === 254 || t === 15 || t === 253 || t === 252 || t === 249 || t === 250 ||
    t === 251;
}

function optionalMeta(b: Uint8Array, map: TableMap): TableMapMeta {
  const out: TableMapMeta = {};
  const types = Array.from(map.columnTypes, (t, i) => realType(t, map.columnMeta[i]));
  const numeric = types.filter(isNumericType).length;
  const character = types.filter(isCharacterType).length;
  const enumSet = types.filter((t) => t === 247 || t === 248).length;
  let at = 0;
  const strs = (v: Uint8Array): string[] => {
    const list: string[] = [];
    let i = 0;
    while (i < v.length) {
      let len: number;
      [len, i] = lenenc(v, i);
      list.push(dec.decode(v.subarray(i, i + len)));
      i += len;
    }
    return list;
  };
  const lists = (v: Uint8Array): string[][] => {
    const all: string[][] = [];
    let i = 0;
    while (i < v.length) {
      let count: number;
      [count, i] = lenenc(v, i);
      const one: string[] = [];
      for (let k = 0; k < count; k++) {
        let len: number;
        [len, i] = lenenc(v, i);
        one.push(dec.decode(v.subarray(i, i + len)));
        i += len;
      }
      all.push(one);
    }
    return all;
  };
  const ints = (v: Uint8Array): number[] => {
    const list: number[] = [];
    let i = 0;
    while (i < v.length) {
      let x: number;
      [x, i] = lenenc(v, i);
      list.push(x);
    }
    return list;
  };
  // Default collation plus (column, collation) exceptions, expanded to one per column.
  const collations = (v: Uint8Array, count: number): number[] => {
    const [def, i] = lenenc(v, 0);
    const list = new Array<number>(count).fill(def);
    const pairs = ints(v.subarray(i));
    for (let k = 0; k + 1 < pairs.length; k += 2) list[pairs[k]] = pairs[k + 1];
    return list;
  };
  while (at < b.length) {
    const type = b[at];
    let len: number;
    [len, at] = lenenc(b, at + 1);
    const v = b.subarray(at, at + len);
    at += len;
    switch (type) {
      case 1:
        out.unsigned = Array.from(
          { length: numeric },
          (_, i) => (v[i >> 3] & (0x80 >> (i & 7))) !== 0,
        );
        break;
      case 2:
        out.collations = collations(v, character);
        break;
      case 3:
        out.collations = ints(v);
        break;
      case 4:
        out.columnNames = strs(v);
        break;
      case 5:
        out.setValues = lists(v);
        break;
      case 6:
        out.enumValues = lists(v);
        break;
      case 8:
        out.primaryKey = ints(v);
        break;
      case 9:
        out.primaryKey = ints(v).filter((_, k) => k % 2 === 0);
        break;
      case 10:
        out.enumSetCollations = collations(v, enumSet);
        break;
      case 11:
        out.enumSetCollations = ints(v);
        break;
      default:
        break; // geometry type, visibility: not needed
    }
  }
  return out;
}
