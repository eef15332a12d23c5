/**
 * The binlog decoder hands the same TABLE_MAP object again for the same bytes (a map comes
 * with every transaction; the row plans and schemas built for it are kept by it): every
 * map of the fixture binlogs equals a fresh decode of its bytes, equal bytes give the same
 * object, and other bytes (one column's metadata changed) a new map. The follower keeps a
 * schema per map only while the table's schema is the same.
 */
import { assert, assertEquals } from "../../testing/assert.ts";
import { BinlogDecoder, type TableMap } from "../../src/mysql/binlog.ts";
import { tableMapEvent } from "../../src/mysql/binlog/table_map.ts";
import { decodeRowsEvent } from "../../src/mysql/rows.ts";
import { BinlogFollower } from "../../src/mysql/stream.ts";
import { schemaForEvent } from "../../src/mysql/tablemeta.ts";
import type { TableSchema } from "../../src/mysql/types.ts";

const FIX = new URL("../fixtures/mysql/", import.meta.url);
const HEADER = 19;

Deno.test("table maps: the same bytes give the same map, other bytes a new one", () => {
  let maps = 0, reused = 0;
  for (const file of ["bin.000001", "bin.000002", "bin.000003"]) {
    const bytes = Deno.readFileSync(new URL(file, FIX));
    const d = new BinlogDecoder();
    const seen = new Map<string, TableMap>();
    for (let at = 4; at < bytes.length;) {
      const size = new DataView(bytes.buffer, at + 9, 4).getUint32(0, true);
      const ev = bytes.subarray(at, at + size);
      at += size;
      const { event } = d.decode(ev);
      if (event.kind !== "table_map") continue;
      maps++;
      // The fixture servers write checksums and 6-byte table ids.
      const body = ev.subarray(HEADER, size - 4);
      assertEquals(event.map, tableMapEvent(body, 6));
      // Seen lately (few tables are written in turn), with nothing new since: the same map.
      const key = body.join();
      if (seen.has(key)) {
        assert(seen.get(key) === event.map, "equal bytes give the same map");
        reused++;
      }
      for (const [k, m] of seen) if (k !== key) assert(m !== event.map, "other bytes, new map");
      seen.set(key, event.map);
      assert(d.tableMap(event.map.tableId) === event.map);
      // The same map with one metadata byte changed (e.g. a VARCHAR widened): a new map.
      const changed = ev.slice();
      const last = changed.length - 5; // the last byte before the checksum
      changed[last] ^= 1;
      const sum = new DataView(changed.buffer);
      sum.setUint32(changed.length - 4, crc32Of(changed.subarray(0, changed.length - 4)), true);
      const other = d.decode(changed).event;
      assert(other.kind === "table_map" && other.map !== event.map);
      assertEquals(other.map, tableMapEvent(changed.subarray(HEADER, size - 4), 6));
      // And the original bytes after it: the original map again.
      const again = d.decode(ev.slice()).event;
      assert(again.kind === "table_map" && again.map === event.map);
      // A map the decoder no longer keeps (many tables in turn) is decoded again.
      if (seen.size > 6) seen.clear();
    }
  }
  assert(maps > 10 && reused > 0, `${maps} maps, ${reused} reused`);
});

function crc32Of(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

Deno.test("binlog follower: a map seen again is read under the table's schema of now", async () => {
  // bin.000002's maps carry full metadata (names, keys); a text column is JSON only by the
  // table's schema (MariaDB's JSON is LONGTEXT with a check). Each time a table's map comes
  // again, the session's schema says the other: its rows must follow.
  const bytes = Deno.readFileSync(new URL("bin.000002", FIX));
  const ref = new BinlogDecoder();
  const flagged = new Map<TableMap, TableSchema>();
  const asJson = (map: TableMap) => {
    let s = flagged.get(map);
    if (!s) {
      const plain = schemaForEvent(map, undefined)!;
      const columns = plain.columns.map((c) => ({ ...c, json: c.dataType.endsWith("text") }));
      flagged.set(map, s = { ...plain, columns });
    }
    return s;
  };
  let current: TableSchema | undefined;
  const got: string[] = [];
  const log = { debug() {}, info() {}, warn() {}, error() {}, with: () => log };
  const follower = new BinlogFollower(
    {
      log,
      database: "x",
      selected: () => true,
      keyName: (_s, t) => t,
      schemaOf: () => Promise.resolve(current),
      changed: () => {},
      dropped: () => {},
    },
    { file: "bin.000002", offset: 4 },
    (batch) => {
      for (const c of batch.changes) {
        if (c.op === "put") got.push(`${c.table} ${c.key} ${c.cells.join()}`);
      }
      return Promise.resolve();
    },
  );
  const want: string[] = [];
  let rows = 0, again = 0;
  const maps = new Map<TableMap, number>();
  for (let at = 4; at < bytes.length;) {
    const size = new DataView(bytes.buffer, at + 9, 4).getUint32(0, true);
    const ev = bytes.subarray(at, at + size);
    at += size;
    const { event } = ref.decode(ev);
    if (event.kind === "rows") {
      const map = ref.tableMap(event.tableId)!;
      const seen = maps.get(map) ?? 0;
      maps.set(map, seen + 1);
      current = seen % 2 ? asJson(map) : undefined;
      if (seen) again++;
      rows++;
      for (const r of decodeRowsEvent(event, map, schemaForEvent(map, current)!)) {
        if (r.after) want.push(`${map.table} ${r.after.key} ${r.after.cells.join()}`);
      }
    }
    await follower.feed(ev.slice());
  }
  assert(again > 0 && want.length > 10, `${rows} rows events, ${again} of a map seen before`);
  assertEquals(got, want);
});
