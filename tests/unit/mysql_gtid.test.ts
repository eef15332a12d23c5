/**
 * GTID positions: MariaDB lists and MySQL sets as the state key keeps them, and the bytes
 * of COM_BINLOG_DUMP_GTID, built by hand from the MySQL documentation ("COM_BINLOG_DUMP_GTID":
 * flags, server id, file name length + name, position, data length + data; the data is
 * Gtid_set::encode: n_sids (8), then per UUID 16 bytes, n_intervals (8), [start, end) pairs
 * (8 + 8), little-endian) and checked on the wire against a hand-built server.
 */
import { test } from "../../testing/deadline.ts";
import { assertEquals, assertThrows } from "../../testing/assert.ts";
import {
  addGtid,
  encodeGtidSet,
  formatGtidSet,
  isMysqlGtidSet,
  newestPerDomain,
  parseGtidSet,
  parseMariaGtids,
} from "../../src/mysql/gtid.ts";
import { MysqlConn } from "../../src/mysql/conn.ts";
import { binlogDumpGtid } from "../../src/mysql/replica.ts";
import { handshake, OK, serve } from "../../testing/fake_mysql.ts";

const U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
const U2 = "00000000-0000-0000-0000-000000000002";

test("MariaDB GTID lists: one GTID per domain, newest wins", () => {
  assertEquals(addGtid(undefined, "0-1-5"), "0-1-5");
  assertEquals(addGtid("0-1-5,1-2-3", "0-2-6"), "0-2-6,1-2-3");
  const state = parseMariaGtids("0-1-14, 0-2-17,1-3-2,junk");
  assertEquals(state.length, 3);
  const newest = newestPerDomain(state);
  assertEquals(newest.get(0), { domain: 0, server: 2, seq: 17n });
  assertEquals(newest.get(1)?.seq, 2n);
});

test("MySQL GTID sets: transactions merge into ranges", () => {
  let set = `${U1}:1-5`;
  set = addGtid(set, `${U1.toUpperCase()}:6`);
  assertEquals(set, `${U1}:1-6`);
  set = addGtid(set, `${U1}:8`);
  assertEquals(set, `${U1}:1-6:8`);
  set = addGtid(set, `${U2}:1`);
  assertEquals(set, `${U2}:1,${U1}:1-6:8`);
  set = addGtid(set, `${U1}:7`);
  assertEquals(set, `${U2}:1,${U1}:1-8`);
  // mysqldump prints sets with line breaks and upper case; the canonical form is stable.
  assertEquals(
    formatGtidSet(parseGtidSet(` ${U1.toUpperCase()}:1-3:3-9,\n${U2}:4 `)),
    [
      `${U2}:4`,
      `${U1}:1-9`,
    ].join(","),
  );
  assertEquals(isMysqlGtidSet(`${U1}:1-5:7`), true);
  assertEquals(isMysqlGtidSet("0-1-5"), false);
  assertEquals(isMysqlGtidSet(`${U1}:tag:1-5`), false);
  assertThrows(() => parseGtidSet(`${U1}:5-1`));
  assertThrows(() => parseGtidSet("not-a-uuid:1"));
});

test("MySQL GTID sets: Gtid_set::encode bytes", () => {
  const bytes = encodeGtidSet(parseGtidSet(`${U1}:1-5:7`));
  const le = (n: number) => [n, 0, 0, 0, 0, 0, 0, 0];
  assertEquals([...bytes], [
    ...le(1), // n_sids
    0x3e,
    0x11,
    0xfa,
    0x47,
    0x71,
    0xca,
    0x11,
    0xe1,
    0x9e,
    0x33,
    0xc8,
    0x0a,
    0xa9,
    0x42,
    0x95,
    0x62,
    ...le(2), // n_intervals
    ...le(1),
    ...le(6), // 1-5, end exclusive
    ...le(7),
    ...le(8), // 7
  ]); // deno-fmt-ignore
});

test("COM_BINLOG_DUMP_GTID on the wire", async () => {
  const gtidSet = encodeGtidSet(parseGtidSet(`${U1}:1-5`));
  let command: Uint8Array | undefined;
  const { port, done } = serve(async (peer) => {
    await peer.write(0, handshake("mysql_native_password"));
    await peer.read();
    await peer.write(2, OK);
    command = (await peer.read()).body;
    // One event (OK byte + a 19-byte header of a heartbeat), then EOF: nonBlock ends.
    const event = new Uint8Array(20);
    event[5] = 27; // HEARTBEAT_LOG_EVENT
    event[10] = 19; // event size
    await peer.write(1, event);
    await peer.write(2, new Uint8Array([0xfe, 0, 0, 2, 0]));
  });
  const c = await MysqlConn.connect({
    host: "127.0.0.1",
    port,
    user: "repl",
    password: "pw",
    sslMode: "DISABLED",
  });
  const events: Uint8Array[] = [];
  for await (const e of binlogDumpGtid(c, { gtidSet, serverId: 4242, nonBlock: true })) {
    events.push(e);
  }
  c.close();
  await done;
  assertEquals(events.length, 1);
  assertEquals(events[0][4], 27);
  const le4 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
  assertEquals([...command!], [
    0x1e, // COM_BINLOG_DUMP_GTID
    0x05,
    0x00, // BINLOG_THROUGH_GTID | BINLOG_DUMP_NON_BLOCK
    ...le4(4242), // server id
    ...le4(0), // no file name
    4,
    0,
    0,
    0,
    0,
    0,
    0,
    0, // position
    ...le4(gtidSet.length),
    ...gtidSet,
  ]); // deno-fmt-ignore
});
