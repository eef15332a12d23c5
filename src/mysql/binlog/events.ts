/**
 * The bodies of binlog events (after the 19-byte header, without the checksum), one
 * function per event kind. Pure; what they need of the decoder's state (the post-header
 * lengths of the FORMAT_DESCRIPTION) is passed in.
 */
import { zstdDecompressSync } from "node:zlib";
import { lenenc, uint48, uncompressMariadb } from "./bytes.ts";
import { EVENT, FDE_FIXED_LEN } from "./constants.ts";
import { BinlogError, type BinlogEvent, type RowsOp } from "./types.ts";

const dec = new TextDecoder();

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Throws unless the body of an event of `type` holds at least `n` bytes. */
export function need(b: Uint8Array, n: number, type: number) {
  if (b.length < n) throw new BinlogError(`truncated binlog event type ${type}`);
}

/**
 * The table id width from the event type's post-header length: MySQL 5.1.0-5.1.15 wrote
 * 4-byte table ids (post-header 6); everything since 6.
 */
export function tableIdLen(postHeader: number): 4 | 6 {
  return postHeader === 6 ? 4 : 6;
}

export function tableIdAt(v: DataView, idLen: 4 | 6): bigint {
  return idLen === 4 ? BigInt(v.getUint32(0, true)) : uint48(v, 0);
}

export function formatEvent(b: Uint8Array, checksum: boolean): BinlogEvent {
  need(b, FDE_FIXED_LEN, EVENT.FORMAT_DESCRIPTION);
  const sv = b.subarray(2, 52);
  const nul = sv.indexOf(0);
  return {
    kind: "format",
    binlogVersion: view(b).getUint16(0, true),
    serverVersion: dec.decode(nul < 0 ? sv : sv.subarray(0, nul)),
    checksum,
  };
}

export function rotateEvent(b: Uint8Array): BinlogEvent {
  need(b, 8, EVENT.ROTATE);
  return {
    kind: "rotate",
    position: view(b).getBigUint64(0, true),
    file: dec.decode(b.subarray(8)),
  };
}

/** QUERY (or MariaDB's compressed QUERY); `postHeader` is QUERY's post-header length. */
export function queryEvent(b: Uint8Array, type: number, postHeader: number): BinlogEvent {
  need(b, 13, type);
  const dbLen = b[8];
  const statusLen = view(b).getUint16(11, true);
  const at = postHeader + statusLen;
  need(b, at + dbLen + 1, type);
  const text = b.subarray(at + dbLen + 1);
  return {
    kind: "query",
    schema: dec.decode(b.subarray(at, at + dbLen)),
    query: dec.decode(type === EVENT.MARIADB_QUERY_COMPRESSED ? uncompressMariadb(text) : text),
  };
}

export function xidEvent(b: Uint8Array): BinlogEvent {
  need(b, 8, EVENT.XID);
  return { kind: "xid", xid: view(b).getBigUint64(0, true) };
}

export function heartbeatEvent(b: Uint8Array): BinlogEvent {
  return { kind: "heartbeat", file: dec.decode(b) };
}

/** MySQL GTID: commit flag, 16-byte server UUID, 8-byte sequence number. */
export function gtidEvent(b: Uint8Array): BinlogEvent {
  need(b, 25, EVENT.GTID);
  const sid = [...b.subarray(1, 17)].map((x) => x.toString(16).padStart(2, "0")).join("");
  const uuid = `${sid.slice(0, 8)}-${sid.slice(8, 12)}-${sid.slice(12, 16)}-${sid.slice(16, 20)}-${
    sid.slice(20)
  }`;
  return { kind: "gtid", gtid: `${uuid}:${view(b).getBigUint64(17, true)}` };
}

export function mariadbGtidEvent(b: Uint8Array, serverId: number): BinlogEvent {
  need(b, 13, EVENT.MARIADB_GTID);
  const v = view(b);
  return {
    kind: "mariadb_gtid",
    seq: v.getBigUint64(0, true),
    domain: v.getUint32(8, true),
    server: serverId,
    standalone: (b[12] & 1) === 1,
  };
}

export function gtidListEvent(b: Uint8Array): BinlogEvent {
  need(b, 4, EVENT.MARIADB_GTID_LIST);
  const v = view(b);
  const n = v.getUint32(0, true) & 0x0fffffff;
  need(b, 4 + n * 16, EVENT.MARIADB_GTID_LIST);
  const gtids: string[] = [];
  for (let i = 0; i < n; i++) {
    const at = 4 + i * 16;
    gtids.push(
      `${v.getUint32(at, true)}-${v.getUint32(at + 4, true)}-${v.getBigUint64(at + 8, true)}`,
    );
  }
  return { kind: "gtid_list", gtids };
}

/** The row event types: operation and version (v2 has an extra-data block). */
export const ROWS_EVENTS: Readonly<Record<number, readonly [RowsOp, 1 | 2]>> = {
  [EVENT.WRITE_ROWS_V1]: ["insert", 1],
  [EVENT.UPDATE_ROWS_V1]: ["update", 1],
  [EVENT.DELETE_ROWS_V1]: ["delete", 1],
  [EVENT.WRITE_ROWS]: ["insert", 2],
  [EVENT.UPDATE_ROWS]: ["update", 2],
  [EVENT.DELETE_ROWS]: ["delete", 2],
  [EVENT.PARTIAL_UPDATE_ROWS]: ["update", 2],
  // MariaDB's compressed row events (log_bin_compress): the body after the post-header
  // is zlib-compressed.
  [EVENT.MARIADB_WRITE_ROWS_COMPRESSED_V1]: ["insert", 1],
  [EVENT.MARIADB_UPDATE_ROWS_COMPRESSED_V1]: ["update", 1],
  [EVENT.MARIADB_DELETE_ROWS_COMPRESSED_V1]: ["delete", 1],
  [EVENT.MARIADB_WRITE_ROWS_COMPRESSED]: ["insert", 2],
  [EVENT.MARIADB_UPDATE_ROWS_COMPRESSED]: ["update", 2],
  [EVENT.MARIADB_DELETE_ROWS_COMPRESSED]: ["delete", 2],
};

function isCompressedRows(type: number): boolean {
  return type >= EVENT.MARIADB_WRITE_ROWS_COMPRESSED_V1 &&
    type <= EVENT.MARIADB_DELETE_ROWS_COMPRESSED;
}

/**
 * A rows event: table id, flags, and the rest (column count, bitmaps, row images) left
 * for rows.ts, uncompressed when MariaDB compressed it.
 */
export function rowsEvent(
  b: Uint8Array,
  type: number,
  rows: readonly [RowsOp, 1 | 2],
  idLen: 4 | 6,
): BinlogEvent {
  const v = view(b);
  need(b, idLen + 2, type);
  const tableId = tableIdAt(v, idLen);
  const flags = v.getUint16(idLen, true);
  let at = idLen + 2;
  if (rows[1] === 2) {
    need(b, at + 2, type);
    at += v.getUint16(at, true); // extra data length includes its own two bytes
  }
  need(b, at, type);
  let body = b.subarray(at);
  if (isCompressedRows(type)) body = uncompressRows(body, rows[0]);
  if (body.length === 0) throw new BinlogError(`truncated rows event type ${type}`);
  const ev: BinlogEvent = { kind: "rows", op: rows[0], tableId, flags, body, version: rows[1] };
  if (type === EVENT.PARTIAL_UPDATE_ROWS) ev.partial = true;
  return ev;
}

/** Only the row images are compressed; the column count and bitmaps are not. */
function uncompressRows(body: Uint8Array, op: RowsOp): Uint8Array {
  const [n, after] = lenenc(body, 0);
  const plain = after + ((n + 7) >> 3) * (op === "update" ? 2 : 1);
  const rowsData = uncompressMariadb(body.subarray(plain));
  const joined = new Uint8Array(plain + rowsData.length);
  joined.set(body.subarray(0, plain));
  joined.set(rowsData, plain);
  return joined;
}

/** TRANSACTION_PAYLOAD field types and compression types. */
const PAYLOAD_END = 0, PAYLOAD_SIZE = 1, PAYLOAD_COMPRESSION = 2, PAYLOAD_UNCOMPRESSED_SIZE = 3;
const PAYLOAD_ZSTD = 0, PAYLOAD_NONE = 255;

/**
 * TRANSACTION_PAYLOAD: fields (type, length, value as length-encoded integers) up to the
 * end mark 0, then the payload: the transaction's events without checksums, compressed
 * with zstd (compression type 0) or not (255). Returns the events' bytes, uncompressed.
 * MySQL source: libbinlogevents Transaction_payload_event / codecs::binary::Transaction_payload.
 */
export function transactionPayload(b: Uint8Array): Uint8Array {
  let at = 0;
  let compression = PAYLOAD_NONE;
  let size = -1;
  let usize = -1;
  for (;;) {
    let type: number, len: number;
    [type, at] = lenenc(b, at);
    if (type === PAYLOAD_END) break;
    [len, at] = lenenc(b, at);
    const end = at + len;
    if (end > b.length) throw new BinlogError("truncated TRANSACTION_PAYLOAD event");
    const [value] = lenenc(b, at);
    if (type === PAYLOAD_SIZE) size = value;
    else if (type === PAYLOAD_COMPRESSION) compression = value;
    else if (type === PAYLOAD_UNCOMPRESSED_SIZE) usize = value;
    at = end;
  }
  const raw = b.subarray(at, size >= 0 ? at + size : b.length);
  if (size >= 0 && raw.length !== size) {
    throw new BinlogError("truncated TRANSACTION_PAYLOAD event");
  }
  let data: Uint8Array;
  if (compression === PAYLOAD_NONE) data = raw;
  else if (compression === PAYLOAD_ZSTD) data = new Uint8Array(zstdDecompressSync(raw));
  else throw new BinlogError(`unknown TRANSACTION_PAYLOAD compression type ${compression}`);
  if (usize >= 0 && data.length !== usize) {
    throw new BinlogError("TRANSACTION_PAYLOAD has the wrong uncompressed size");
  }
  return data;
}
