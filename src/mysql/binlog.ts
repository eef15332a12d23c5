/**
 * Binlog events (v4 format, MySQL 5.6+/8 and MariaDB), decoded from the bytes of one event
 * as the replication stream or a binlog file holds it. Pure: bytes in, values out.
 * This module keeps the decoder's state (checksums on or off, post-header lengths, table
 * maps) and dispatches each event's body to its decoder in binlog/.
 */
import { crc32, eventSizeAt, readHeader, u32le } from "./binlog/bytes.ts";
import { EVENT, FDE_FIXED_LEN, HEADER_LEN } from "./binlog/constants.ts";
import {
  formatEvent,
  gtidEvent,
  gtidListEvent,
  heartbeatEvent,
  mariadbGtidEvent,
  queryEvent,
  rotateEvent,
  ROWS_EVENTS,
  rowsEvent,
  tableIdLen,
  transactionPayload,
  xidEvent,
} from "./binlog/events.ts";
import { tableMapEvent } from "./binlog/table_map.ts";
import {
  BinlogError,
  type BinlogEvent,
  type Decoded,
  type EventHeader,
  type TableMap,
} from "./binlog/types.ts";

export type {
  BinlogEvent,
  Decoded,
  EventHeader,
  RowsOp,
  TableMap,
  TableMapMeta,
} from "./binlog/types.ts";
export { BinlogError } from "./binlog/types.ts";
export { crc32 } from "./binlog/bytes.ts";

/** Table maps whose bytes are kept to recognise them (tables written to in turn). */
const RECENT_MAPS = 16;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Decodes events in order, remembering the format description and the table maps. */
export class BinlogDecoder {
  #checksum = false;
  #maps = new Map<bigint, TableMap>();
  /**
   * The latest table maps with their bytes: a table map comes with every transaction, and
   * the same bytes give the same map, so the same object (and the row plan and schema
   * built for it) serves again.
   */
  #recentMaps: { bytes: Uint8Array; map: TableMap }[] = [];
  /** Post-header length per event type (index type - 1), from the FORMAT_DESCRIPTION. */
  #postHeader: Uint8Array | undefined;

  tableMap(tableId: bigint): TableMap | undefined {
    return this.#maps.get(tableId);
  }

  decode(ev: Uint8Array): Decoded {
    if (ev.length < HEADER_LEN) {
      throw new BinlogError(`truncated binlog event (${ev.length} bytes)`);
    }
    const header = readHeader(ev);
    if (header.eventSize !== ev.length) {
      throw new BinlogError(
        `binlog event size ${header.eventSize} does not match the ${ev.length} bytes received`,
      );
    }
    // The fake ROTATE a server sends first, before any FORMAT_DESCRIPTION, carries a
    // checksum when the replica asked for one (@master_binlog_checksum); only the bytes
    // tell. Read as part of the name, it would save a file name the server never knew.
    if (header.type === EVENT.ROTATE && !this.#postHeader && ev.length >= HEADER_LEN + 8 + 4) {
      const sum = u32le(ev, ev.length - 4);
      return this.#decode(ev, header, sum === crc32(ev.subarray(0, ev.length - 4)));
    }
    return this.#decode(ev, header, this.#checksum);
  }

  #decode(ev: Uint8Array, header: EventHeader, checksummed: boolean): Decoded {
    let end = ev.length;
    if (header.type === EVENT.FORMAT_DESCRIPTION) {
      // Servers that know checksums (MySQL 5.6.1+, MariaDB 5.3+) end the FDE with the
      // checksum algorithm byte (0 off, 1 CRC32) and a 4-byte checksum slot.
      const alg = ev.length >= HEADER_LEN + FDE_FIXED_LEN + 5 ? ev[ev.length - 5] : 0;
      this.#checksum = checksummed = alg === 1;
      end -= alg === 0 || alg === 1 ? 5 : 0;
      if (alg !== 0 && alg !== 1) {
        throw new BinlogError(`unsupported binlog checksum algorithm ${alg}`);
      }
    } else if (checksummed) end -= 4;
    if (end < HEADER_LEN) throw new BinlogError(`truncated binlog event type ${header.type}`);
    if (checksummed) {
      const want = u32le(ev, ev.length - 4);
      if (want !== crc32(ev.subarray(0, ev.length - 4))) {
        throw new BinlogError(
          `binlog event checksum mismatch at position ${header.logPos} (corrupt stream)`,
        );
      }
    }
    const body = ev.subarray(HEADER_LEN, end);
    if (header.type === EVENT.FORMAT_DESCRIPTION && body.length >= FDE_FIXED_LEN) {
      this.#postHeader = body.slice(FDE_FIXED_LEN);
      this.#maps.clear();
      this.#recentMaps = [];
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
    switch (h.type) {
      case EVENT.FORMAT_DESCRIPTION:
        return formatEvent(b, this.#checksum);
      case EVENT.ROTATE:
        return rotateEvent(b);
      case EVENT.MARIADB_QUERY_COMPRESSED:
      case EVENT.QUERY:
        return queryEvent(b, h.type, this.#post(EVENT.QUERY, 13));
      case EVENT.XID:
        return xidEvent(b);
      case EVENT.TABLE_MAP: {
        const map = this.#tableMap(b);
        this.#maps.set(map.tableId, map);
        return { kind: "table_map", map };
      }
      case EVENT.HEARTBEAT:
        return heartbeatEvent(b);
      case EVENT.GTID:
        return gtidEvent(b);
      case EVENT.MARIADB_GTID:
        return mariadbGtidEvent(b, h.serverId);
      case EVENT.MARIADB_GTID_LIST:
        return gtidListEvent(b);
      case EVENT.TRANSACTION_PAYLOAD:
        return { kind: "transaction_payload", events: this.#payload(transactionPayload(b)) };
    }
    const rows = ROWS_EVENTS[h.type];
    if (rows) return rowsEvent(b, h.type, rows, tableIdLen(this.#post(h.type, 8)));
    return { kind: "other", type: h.type };
  }

  #tableMap(b: Uint8Array): TableMap {
    const recent = this.#recentMaps;
    for (let i = 0; i < recent.length; i++) {
      if (!sameBytes(recent[i].bytes, b)) continue;
      const hit = recent[i];
      if (i > 0) recent.unshift(...recent.splice(i, 1)); // the least recently seen go first
      return hit.map;
    }
    const map = tableMapEvent(b, tableIdLen(this.#post(EVENT.TABLE_MAP, 8)));
    if (recent.unshift({ bytes: b.slice(), map }) > RECENT_MAPS) recent.pop();
    return map;
  }

  /** The events inside a TRANSACTION_PAYLOAD (no checksums), decoded in order. */
  #payload(data: Uint8Array): Decoded[] {
    const events: Decoded[] = [];
    for (let p = 0; p < data.length;) {
      if (p + HEADER_LEN > data.length) {
        throw new BinlogError("truncated event in TRANSACTION_PAYLOAD");
      }
      const one = data.subarray(p, p + eventSizeAt(data, p));
      const header = readHeader(one);
      if (header.eventSize < HEADER_LEN || header.eventSize !== one.length) {
        throw new BinlogError("truncated event in TRANSACTION_PAYLOAD");
      }
      events.push(this.#decode(one, header, false));
      p += header.eventSize;
    }
    return events;
  }
}
