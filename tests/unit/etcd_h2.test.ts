/**
 * The hand-written HTTP/2 client's pure parts: HPACK against RFC 7541's Appendix C examples
 * (hex typed from the RFC) and header blocks captured from the real etcd
 * (tests/fixtures/etcd/h2_headers.json, decoded there by nghttp2), and frame cutting and
 * building (RFC 9113).
 */

import { assert, assertEquals, assertThrows } from "../../testing/assert.ts";
import {
  concat,
  FLAG,
  FRAME,
  framePayload,
  FrameReader,
  H2ProtocolError,
  parseSettings,
  requestFrames,
  settingsFrame,
} from "../../src/etcd/h2_frames.ts";
import {
  encodeHeaders,
  type HeaderField,
  HpackDecoder,
  HpackError,
  huffmanCode,
  huffmanDecode,
} from "../../src/etcd/hpack.ts";

/** `fn` throws a `Cls` whose message includes `text`. */
function throws(fn: () => unknown, Cls: new (...a: never[]) => Error, text = ""): void {
  const e = assertThrows(fn);
  assert(e instanceof Cls && e.message.includes(text), `${e.name}: ${e.message}`);
}

const hex = (s: string) =>
  Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!, (b) => parseInt(b, 16));

Deno.test("Huffman codes match RFC 7541 Appendix B", () => {
  const rows: [number, number, number][] = [
    [0, 0x1ff8, 13],
    [1, 0x7fffd8, 23],
    [10, 0x3ffffffc, 30],
    [32, 0x14, 6],
    [48, 0x0, 5],
    [97, 0x3, 5],
    [122, 0x7b, 7],
    [127, 0xffffffc, 28],
    [9, 0xffffea, 24],
    [33, 0x3f8, 10],
    [128, 0xfffe6, 20],
    [255, 0x3ffffee, 26],
    [256, 0x3fffffff, 30],
  ];
  for (const [sym, code, bits] of rows) {
    assertEquals(huffmanCode(sym), { code, bits }, `symbol ${sym}`);
  }
});

Deno.test("Huffman decoding rejects bad padding and EOS", () => {
  assertEquals(huffmanDecode(hex("f1e3c2e5f23a6ba0ab90f4ff")), "www.example.com");
  // "0" is 00000: padded with 0s instead of 1s.
  throws(() => huffmanDecode(hex("00")), HpackError, "padding");
  // A whole octet of 1s after the last symbol: padding longer than 7 bits.
  throws(() => huffmanDecode(hex("07ff")), HpackError, "padding");
  // EOS (30 ones) inside the string.
  throws(() => huffmanDecode(hex("ffffffff")), HpackError, "EOS");
});

/** Decode the blocks in order on one decoder, checking each block's fields and the table. */
function sequence(limit: number, steps: [string, HeaderField[], number][]) {
  const d = new HpackDecoder(limit);
  for (const [block, fields, size] of steps) {
    assertEquals(d.decode(hex(block)), fields);
    assertEquals(d.size, size);
  }
  return d;
}

const REQ1: HeaderField[] = [
  [":method", "GET"],
  [":scheme", "http"],
  [":path", "/"],
  [":authority", "www.example.com"],
];
const REQ2: HeaderField[] = [...REQ1, ["cache-control", "no-cache"]];
const REQ3: HeaderField[] = [
  [":method", "GET"],
  [":scheme", "https"],
  [":path", "/index.html"],
  [":authority", "www.example.com"],
  ["custom-key", "custom-value"],
];

Deno.test("RFC 7541 C.2: literal representations", () => {
  const d = new HpackDecoder();
  assertEquals(d.decode(hex("400a637573746f6d2d6b65790d637573746f6d2d686561646572")), [[
    "custom-key",
    "custom-header",
  ]]);
  assertEquals(d.size, 55);
  assertEquals(d.decode(hex("040c2f73616d706c652f70617468")), [[":path", "/sample/path"]]);
  assertEquals(d.decode(hex("100870617373776f726406736563726574")), [["password", "secret"]]);
  assertEquals(d.decode(hex("82")), [[":method", "GET"]]);
  assertEquals(d.size, 55);
});

Deno.test("RFC 7541 C.3: requests without Huffman share the dynamic table", () => {
  const d = sequence(4096, [
    ["828684410f7777772e6578616d706c652e636f6d", REQ1, 57],
    ["828684be58086e6f2d6361636865", REQ2, 110],
    ["828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565", REQ3, 164],
  ]);
  assertEquals(d.entries, [
    ["custom-key", "custom-value"],
    ["cache-control", "no-cache"],
    [":authority", "www.example.com"],
  ]);
});

Deno.test("RFC 7541 C.4: requests with Huffman", () => {
  sequence(4096, [
    ["828684418cf1e3c2e5f23a6ba0ab90f4ff", REQ1, 57],
    ["828684be5886a8eb10649cbf", REQ2, 110],
    ["828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf", REQ3, 164],
  ]);
});

Deno.test("RFC 7541 C.6: responses with Huffman evict from a 256-octet table", () => {
  const common: HeaderField[] = [
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ];
  const d = sequence(256, [
    [
      "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
      [[":status", "302"], ...common],
      222,
    ],
    ["4883640effc1c0bf", [[":status", "307"], ...common], 222],
    [
      "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
      [
        [":status", "200"],
        ["cache-control", "private"],
        ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
        ["location", "https://www.example.com"],
        ["content-encoding", "gzip"],
        ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
      ],
      215,
    ],
  ]);
  assertEquals(d.entries.length, 3);
});

Deno.test("HPACK: errors and table size updates", () => {
  throws(() => new HpackDecoder().decode(hex("80")), HpackError, "index 0");
  throws(() => new HpackDecoder().decode(hex("be")), HpackError, "beyond");
  throws(() => new HpackDecoder().decode(hex("3fe21f")), HpackError, "above");
  throws(() => new HpackDecoder().decode(hex("0f")), HpackError, "ends inside");
  const d = new HpackDecoder();
  d.decode(hex("400a637573746f6d2d6b65790d637573746f6d2d686561646572"));
  assertEquals(d.decode(hex("20")), []); // size 0 empties the table
  assertEquals(d.size, 0);
  throws(() => d.decode(hex("be")), HpackError, "beyond");
});

Deno.test("etcd's header blocks (captured) decode as nghttp2 decoded them", async () => {
  const url = new URL("../fixtures/etcd/h2_headers.json", import.meta.url);
  const { blocks, decoded } = JSON.parse(await Deno.readTextFile(url)) as {
    blocks: string[];
    decoded: HeaderField[][];
  };
  const d = new HpackDecoder();
  const sorted = (l: HeaderField[]) => [...l].sort((a, b) => a[0].localeCompare(b[0]));
  blocks.forEach((b, i) =>
    assertEquals(sorted(d.decode(hex(b))), sorted(decoded[i]), `block ${i}`)
  );
  assertEquals(d.entries.length > 0, true);
});

Deno.test("HPACK encoder: static indexes and plain literals, read back by the decoder", () => {
  const fields: HeaderField[] = [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/etcdserverpb.KV/Txn"],
    [":authority", "127.0.0.1:2379"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["grpc-timeout", "30000m"],
    ["token", "x".repeat(200)],
  ];
  const block = encodeHeaders(fields);
  assertEquals([...block.subarray(0, 2)], [0x83, 0x86]);
  const d = new HpackDecoder();
  assertEquals(d.decode(block), fields);
  assertEquals(d.size, 0); // nothing indexed
});

Deno.test("frames: cut across reads, padding and priority removed", () => {
  const r = new FrameReader();
  const data = hex("000007 00 09 00000003 03 616263 000000"); // DATA, PADDED|END_STREAM, pad 3
  const headers = hex("000007 01 24 00000003 80000001 10 82 83"); // HEADERS, PRIORITY|END_HEADERS
  const all = concat([data, headers]);
  r.push(all.subarray(0, 5));
  assertEquals(r.next(), undefined);
  r.push(all.subarray(5, 20));
  const f1 = r.next()!;
  assertEquals([f1.type, f1.flags, f1.stream], [FRAME.DATA, FLAG.PADDED | FLAG.END_STREAM, 3]);
  assertEquals(new TextDecoder().decode(framePayload(f1)), "abc");
  assertEquals(r.next(), undefined);
  r.push(all.subarray(20));
  const f2 = r.next()!;
  assertEquals([...framePayload(f2)], [0x82, 0x83]);
  throws(() => framePayload({ ...f1, payload: hex("05 6162") }), H2ProtocolError);
  const big = new FrameReader(16384);
  big.push(hex("004001 00 00 00000001"));
  throws(() => big.next(), H2ProtocolError, "16385");
});

Deno.test("frames: a request split by frame size and send window", () => {
  const block = new Uint8Array(25).fill(0x82);
  const body = new Uint8Array(40).fill(7);
  const { bytes, sent } = requestFrames(5, block, 16, body, 30);
  assertEquals(sent, 30);
  const r = new FrameReader();
  r.push(bytes);
  const got: [number, number, number][] = [];
  for (let f = r.next(); f; f = r.next()) got.push([f.type, f.flags, f.payload.length]);
  assertEquals(got, [
    [FRAME.HEADERS, 0, 16],
    [FRAME.CONTINUATION, FLAG.END_HEADERS, 9],
    [FRAME.DATA, 0, 16],
    [FRAME.DATA, 0, 14],
  ]);
  const whole = requestFrames(7, block.subarray(0, 3), 16, body.subarray(0, 5), 100);
  assertEquals(whole.sent, 5);
  assertEquals([...whole.bytes.subarray(12, 21)], [
    0,
    0,
    5,
    FRAME.DATA,
    FLAG.END_STREAM,
    0,
    0,
    0,
    7,
  ]);
  assertEquals(parseSettings(settingsFrame([[4, 1 << 24], [2, 0]]).subarray(9)), [[4, 1 << 24], [
    2,
    0,
  ]]);
});
