/**
 * sync's etcd protobuf codec (src/etcd/proto.ts, messages.ts) against an independent one:
 * protobufjs with etcd's own .proto files (shipped in the etcd3 package). Decoders read real
 * etcd answers (tests/fixtures/etcd, see its README); encoders are decoded by protobufjs and,
 * where protobufjs writes the same message, compared byte for byte. No servers needed.
 */

import { createRequire } from "node:module";
import protobuf from "protobufjs";
import { assert, assertEquals, assertThrows } from "../../testing/assert.ts";
import { ProtoError, ProtoReader, ProtoWriter } from "../../src/etcd/proto.ts";
import {
  decodeAuthenticate,
  decodeDeleteRange,
  decodeLeaseGrant,
  decodePut,
  decodeRange,
  decodeTxn,
  encodeAuthenticate,
  encodeDeleteRange,
  encodePut,
  encodeRange,
  encodeTxn,
} from "../../src/etcd/messages.ts";
import { unframe } from "../../src/etcd/grpc.ts";
import type { KeyValue, RangeResult, TxnRequest, TxnResult } from "../../src/etcd/types.ts";

const require = createRequire(import.meta.url);
const protoFile = new URL("../proto/rpc.proto", `file://${require.resolve("etcd3")}`).pathname;
const root = new protobuf.Root().loadSync(protoFile, { keepCase: true });
const type = (name: string) => root.lookupType(name.includes(".") ? name : `etcdserverpb.${name}`);
const enc = new TextEncoder();
const dec = new TextDecoder();

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => new Uint8Array(s.match(/../g)?.map((x) => parseInt(x, 16)) ?? []);

/** protobufjs's reading of `bytes` as `name`: int64s as decimal text, defaults filled in. */
function pbDecode(name: string, bytes: Uint8Array): Obj {
  const T = type(name);
  return T.toObject(T.decode(bytes), { longs: String, defaults: true, arrays: true });
}

/** protobufjs's encoding of a plain object (default-valued fields left out by the caller). */
function pbEncode(name: string, obj: Obj): Uint8Array {
  const T = type(name);
  return T.encode(T.fromObject(obj)).finish();
}

// Comparable shapes: bytes as hex so a mismatch prints readably.
const kvShape = (kv: KeyValue) => ({ ...kv, value: hex(kv.value) });
const pbKv = (kv: Obj) => ({
  key: dec.decode(kv.key),
  value: hex(kv.value),
  createRevision: Number(kv.create_revision),
  modRevision: Number(kv.mod_revision),
  version: Number(kv.version),
  ...(kv.lease === "0" ? {} : { lease: kv.lease }),
});
const rangeShape = (r: RangeResult) => ({ ...r, kvs: r.kvs.map(kvShape) });
const pbRange = (r: Obj) => ({
  kvs: r.kvs.map(pbKv),
  more: r.more,
  count: Number(r.count),
  revision: Number(r.header?.revision ?? 0),
});
const txnShape = (t: TxnResult) => ({
  ...t,
  ranges: t.ranges.map((r) => r?.map(kvShape)),
});
const pbTxn = (t: Obj) => ({
  succeeded: t.succeeded,
  revision: Number(t.header.revision),
  ranges: t.responses.map((op: Obj) =>
    op.response_range ? pbRange(op.response_range).kvs : undefined
  ),
});

interface Fixture {
  name: string;
  type: string;
  status: string;
  message: string;
  hex: string;
}
const captured = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/etcd/responses.json", import.meta.url)),
) as { etcd: string; fixtures: Fixture[] };
const fx = (name: string): Fixture & { bytes: Uint8Array } => {
  const f = captured.fixtures.find((f) => f.name === name);
  if (!f) throw new Error(`no fixture ${name}`);
  return { ...f, bytes: unhex(f.hex) };
};

Deno.test("decoders read real etcd answers as protobufjs does", async (t) => {
  await t.step("Range over a prefix: lease above 2^53, empty value, UTF-8 key", () => {
    const f = fx("range-prefix");
    const got = decodeRange(f.bytes);
    assertEquals(rangeShape(got), pbRange(pbDecode(f.type, f.bytes)));
    // The fixture must hold what this step claims to cover.
    const leased = got.kvs.find((kv) => kv.lease);
    assert(leased && BigInt(leased.lease!) > 2n ** 53n, "a lease ID above 2^53");
    assert(got.kvs.some((kv) => kv.value.length === 0), "an empty value");
    assert(got.kvs.some((kv) => kv.key === "/p/ü€😀"), "a non-ASCII key");
    assert(got.kvs.some((kv) => kv.value.length > 127), "a value with a 2-byte length");
    assertEquals(got.count, 5);
    // The lease in the Range answer is the one LeaseGrant gave.
    assertEquals(leased!.lease, decodeLeaseGrant(fx("lease-grant").bytes));
    assertEquals(leased!.lease, pbDecode("LeaseGrantResponse", fx("lease-grant").bytes).ID);
  });
  for (const name of ["range-count-only", "range-limit-more", "range-keys-only", "range-empty"]) {
    await t.step(name, () => {
      const f = fx(name);
      assertEquals(rangeShape(decodeRange(f.bytes)), pbRange(pbDecode(f.type, f.bytes)));
    });
  }
  await t.step("count_only counts without kvs; limit sets more", () => {
    const c = decodeRange(fx("range-count-only").bytes);
    assertEquals([c.kvs.length, c.count], [0, 5]);
    const l = decodeRange(fx("range-limit-more").bytes);
    assertEquals([l.kvs.length, l.more, l.count], [2, true, 5]);
  });
  await t.step("Put (also with prev_kv, a field sync skips)", () => {
    for (const name of ["put", "put-prev-kv"]) {
      const f = fx(name);
      assertEquals(decodePut(f.bytes), Number(pbDecode(f.type, f.bytes).header.revision));
    }
    assert(pbDecode("PutResponse", fx("put-prev-kv").bytes).prev_kv, "prev_kv present");
  });
  await t.step("DeleteRange of 2 keys", () => {
    const f = fx("delete-range-2");
    assertEquals(decodeDeleteRange(f.bytes), Number(pbDecode(f.type, f.bytes).deleted));
    assertEquals(decodeDeleteRange(f.bytes), 2);
  });
  await t.step("Txn that succeeded: put, delete, range", () => {
    const f = fx("txn-success");
    const got = decodeTxn(f.bytes);
    assertEquals(txnShape(got), pbTxn(pbDecode(f.type, f.bytes)));
    assertEquals(got.succeeded, true);
    assertEquals(got.ranges.map((r) => r === undefined), [true, true, false]);
    assert(got.ranges[2]!.length > 0);
  });
  await t.step("Txn whose compare failed: range, put", () => {
    const f = fx("txn-failure");
    const got = decodeTxn(f.bytes);
    assertEquals(txnShape(got), pbTxn(pbDecode(f.type, f.bytes)));
    assertEquals(got.succeeded, false);
    assertEquals(got.ranges.map((r) => r?.map((kv) => kv.key)), [["/t/1"], undefined]);
  });
  await t.step("Authenticate", () => {
    const f = fx("auth-authenticate");
    const token = decodeAuthenticate(f.bytes);
    assertEquals(token, pbDecode(f.type, f.bytes).token);
    assert(token.length > 0);
  });
  await t.step("errors carry a status and a message, no body", () => {
    const want: Record<string, RegExp> = {
      "txn-duplicate-key": /duplicate key given in txn request/,
      "put-too-large": /request is too large/,
      "auth-wrong-password": /authentication failed/,
      "range-no-token": /user name is empty/,
    };
    for (const [name, re] of Object.entries(want)) {
      const f = fx(name);
      assert(f.status !== "0", `${name}: a non-zero grpc-status`);
      assert(re.test(f.message), `${name}: ${f.message}`);
      assertEquals(f.hex, "");
    }
  });
});

const LEASE = "9007199254740993"; // 2^53 + 1: not a JavaScript number
const NEG_LEASE = "-2"; // int64 two's complement: a 10-byte varint

Deno.test("encoders write what protobufjs reads, byte for byte", async (t) => {
  await t.step("Range with every option", () => {
    const got = encodeRange("/ü/a", {
      rangeEnd: "/ü/b",
      limit: 300,
      revision: 2 ** 40,
      serializable: true,
      keysOnly: true,
      countOnly: true,
      minModRevision: 7,
      maxModRevision: 128,
    });
    const obj = {
      key: enc.encode("/ü/a"),
      range_end: enc.encode("/ü/b"),
      limit: "300",
      revision: String(2 ** 40),
      serializable: true,
      keys_only: true,
      count_only: true,
      min_mod_revision: "7",
      max_mod_revision: "128",
    };
    const pb = pbDecode("RangeRequest", got);
    for (const [k, v] of Object.entries(obj)) {
      assertEquals(
        v instanceof Uint8Array ? hex(pb[k]) : pb[k],
        v instanceof Uint8Array ? hex(v) : v,
        k,
      );
    }
    assertEquals(hex(got), hex(pbEncode("RangeRequest", obj)));
  });
  await t.step("Range with no options is just the key", () => {
    assertEquals(
      hex(encodeRange("k", {})),
      hex(pbEncode("RangeRequest", { key: enc.encode("k") })),
    );
  });
  await t.step("Put: int64 leases, non-ASCII, long values", () => {
    const cases: [string, string | Uint8Array, string | undefined][] = [
      ["/k/ü€😀", "wert ü€😀", LEASE],
      ["/k/neg", "v", NEG_LEASE],
      ["/k/big", "x".repeat(200), "978585362897622278"],
      ["/k/bigger", "é".repeat(20_000), undefined],
      ["/k/bytes", new Uint8Array(17_000).map((_, i) => i), "1"],
      ["/k/empty", "", undefined],
    ];
    for (const [key, value, lease] of cases) {
      const got = encodePut(key, value, lease);
      const v = typeof value === "string" ? enc.encode(value) : value;
      const pb = pbDecode("PutRequest", got);
      assertEquals(dec.decode(pb.key), key);
      assertEquals(hex(pb.value), hex(v), key);
      assertEquals(pb.lease, lease ?? "0", key);
      const obj: Obj = { key: enc.encode(key) };
      if (v.length) obj.value = v;
      if (lease) obj.lease = lease;
      assertEquals(hex(got), hex(pbEncode("PutRequest", obj)), key);
    }
  });
  await t.step("string lengths around every varint boundary", () => {
    // Strings reserve 3 bytes a unit for the length and then patch it: check each edge.
    for (const n of [0, 1, 42, 43, 127, 128, 129, 5461, 5462, 16383, 16384, 16385]) {
      for (const ch of ["a", "é", "€", "😀"]) {
        const s = ch.repeat(Math.ceil(n / ch.length));
        const b = enc.encode(s);
        const got = encodePut("k", s);
        const want = pbEncode("PutRequest", {
          key: enc.encode("k"),
          ...(b.length ? { value: b } : {}),
        });
        assertEquals(hex(got), hex(want), `${n} × ${ch}`);
      }
    }
  });
  await t.step("DeleteRange with and without rangeEnd", () => {
    assertEquals(
      hex(encodeDeleteRange("/a/", "/a0")),
      hex(pbEncode("DeleteRangeRequest", { key: enc.encode("/a/"), range_end: enc.encode("/a0") })),
    );
    assertEquals(
      hex(encodeDeleteRange("/a")),
      hex(pbEncode("DeleteRangeRequest", { key: enc.encode("/a") })),
    );
  });
  await t.step("Authenticate", () => {
    const got = encodeAuthenticate("röot", "pässword");
    assertEquals(pbDecode("AuthenticateRequest", got), { name: "röot", password: "pässword" });
    assertEquals(
      hex(got),
      hex(pbEncode("AuthenticateRequest", { name: "röot", password: "pässword" })),
    );
  });

  const bigValue = "v".repeat(20_000);
  const txn: TxnRequest = {
    compare: [
      { key: "/c/1", target: "VERSION", result: "EQUAL", version: 0 },
      { key: "/c/2", target: "MOD", result: "LESS", modRevision: 300 },
      { key: "/c/3", target: "VALUE", result: "EQUAL", value: "x" },
      { key: "/c/4", target: "CREATE", result: "GREATER", createRevision: 5 },
      { key: "/c/5", target: "VALUE", result: "NOT_EQUAL", value: "" },
    ],
    success: [
      { put: { key: "/s/ü", value: "wert", lease: LEASE } },
      { put: { key: "/s/big", value: bigValue } },
      { delete: { key: "/s/a", rangeEnd: "/s/b" } },
      { delete: { key: "/s/one" } },
      { range: { key: "/s/", rangeEnd: "/s0" } },
      { range: { key: "/s/x" } },
    ],
    failure: [
      { range: { key: "/c/1" } },
      { put: { key: "/f/1", value: new Uint8Array([0, 255]) } },
      { delete: { key: "/f/2" } },
    ],
  };
  // The same transaction as protobufjs objects, default-valued fields left out.
  const b = (s: string) => enc.encode(s);
  const pbTxnObj = {
    compare: [
      { key: b("/c/1"), version: "0" }, // result EQUAL and target VERSION are 0: not sent
      { result: "Less", target: "Mod", key: b("/c/2"), mod_revision: "300" },
      { target: "Value", key: b("/c/3"), value: b("x") },
      { result: "Greater", target: "Create", key: b("/c/4"), create_revision: "5" },
      { result: "NotEqual", target: "Value", key: b("/c/5"), value: new Uint8Array() },
    ],
    success: [
      { request_put: { key: b("/s/ü"), value: b("wert"), lease: LEASE } },
      { request_put: { key: b("/s/big"), value: b(bigValue) } },
      { request_delete_range: { key: b("/s/a"), range_end: b("/s/b") } },
      { request_delete_range: { key: b("/s/one") } },
      { request_range: { key: b("/s/"), range_end: b("/s0") } },
      { request_range: { key: b("/s/x") } },
    ],
    failure: [
      { request_range: { key: b("/c/1") } },
      { request_put: { key: b("/f/1"), value: new Uint8Array([0, 255]) } },
      { request_delete_range: { key: b("/f/2") } },
    ],
  };
  await t.step("Txn: protobufjs reads every field", () => {
    const pb = pbDecode("TxnRequest", encodeTxn(txn));
    const C = root.lookupEnum("etcdserverpb.Compare.CompareResult").values;
    const T = root.lookupEnum("etcdserverpb.Compare.CompareTarget").values;
    assertEquals(pb.compare.length, 5);
    const want = [
      ["/c/1", C.Equal, T.Version, "version", "0"],
      ["/c/2", C.Less, T.Mod, "mod_revision", "300"],
      ["/c/3", C.Equal, T.Value, "value", hex(b("x"))],
      ["/c/4", C.Greater, T.Create, "create_revision", "5"],
      ["/c/5", C.NotEqual, T.Value, "value", ""],
    ];
    pb.compare.forEach((c: Obj, i: number) => {
      const [key, result, target, field, value] = want[i];
      assertEquals(dec.decode(c.key), key);
      assertEquals(c.result, result, `${key} result`);
      assertEquals(c.target, target, `${key} target`);
      const v = c[field as string];
      assertEquals(v instanceof Uint8Array ? hex(v) : v, value, `${key} ${field}`);
    });
    // The oneof zero is on the wire: protobufjs sees which member is set.
    const raw = type("TxnRequest").decode(encodeTxn(txn)) as unknown as Obj;
    assertEquals(raw.compare.map((c: Obj) => c.target_union), [
      "version",
      "mod_revision",
      "value",
      "create_revision",
      "value",
    ]);
    const ops = (l: Obj[]) =>
      l.map((op) => {
        const [kind] = Object.keys(op).filter((k) => op[k] && k.startsWith("request_"));
        const r = op[kind];
        return [
          kind,
          dec.decode(r.key),
          r.range_end?.length ? dec.decode(r.range_end) : "",
          r.value ? hex(r.value) : "",
          r.lease ?? "",
        ];
      });
    const pbOps = (l: Obj[]) =>
      l.map((op) => {
        const [kind] = Object.keys(op);
        const r = op[kind];
        return [
          kind,
          dec.decode(r.key),
          r.range_end ? dec.decode(r.range_end) : "",
          kind === "request_put" ? hex(r.value ?? new Uint8Array()) : "",
          kind === "request_put" ? r.lease ?? "0" : "",
        ];
      });
    assertEquals(ops(pb.success), pbOps(pbTxnObj.success));
    assertEquals(ops(pb.failure), pbOps(pbTxnObj.failure));
  });
  await t.step("Txn: same bytes as protobufjs", () => {
    assertEquals(hex(encodeTxn(txn)), hex(pbEncode("TxnRequest", pbTxnObj)));
  });
  await t.step("Txn: empty success list, no compares", () => {
    assertEquals(hex(encodeTxn({ success: [] })), "");
    const t2: TxnRequest = {
      compare: [{ key: "k", target: "VERSION", result: "EQUAL", version: 0 }],
      success: [],
      failure: [{ put: { key: "k", value: "v" } }],
    };
    assertEquals(
      hex(encodeTxn(t2)),
      hex(pbEncode("TxnRequest", {
        compare: [{ key: b("k"), version: "0" }],
        failure: [{ request_put: { key: b("k"), value: b("v") } }],
      })),
    );
  });
});

/** A reader that reads every field of `b`, skipping the ones it does not know. */
function readAll(b: Uint8Array): void {
  const r = new ProtoReader(b);
  while (r.next()) r.skip();
}

Deno.test("bad input is a ProtoError, not a crash or a wrong value", async (t) => {
  const isProto = (fn: () => unknown, re: RegExp) => {
    const e = assertThrows(fn);
    assert(e instanceof ProtoError, `expected ProtoError, got ${e?.name}: ${e?.message}`);
    assertMatch(e.message, re);
  };
  const range = hex(pbEncode("RangeResponse", {
    header: { revision: "9" },
    kvs: [{ key: b("k"), value: b("v"), mod_revision: "3" }],
    count: "1",
  }));
  await t.step("truncated varint", () => {
    isProto(() => decodeRange(unhex("2080")), /truncated protobuf varint/);
    isProto(() => decodeRange(unhex("80")), /truncated protobuf varint/); // in the tag
    isProto(() => decodeLeaseGrant(unhex("10ffff")), /truncated protobuf varint/);
  });
  await t.step("truncated length-delimited field", () => {
    // A cut inside the kv or the header fails; a cut between fields is a shorter message.
    const whole = unhex(range);
    let failed = 0;
    for (let n = 1; n < whole.length; n++) {
      try {
        decodeRange(whole.subarray(0, n));
      } catch (e) {
        assert(e instanceof ProtoError, `prefix ${n}: ${(e as Error).message}`);
        failed++;
      }
    }
    assert(failed >= whole.length - 3, `${failed} of ${whole.length - 1} prefixes failed`);
    isProto(() => decodeRange(whole.subarray(0, whole.length - 3)), /truncated/);
    isProto(() => decodeAuthenticate(unhex("1205616263")), /truncated/);
    isProto(() => decodeTxn(unhex("1a05")), /truncated/);
  });
  await t.step("field number 0", () => {
    isProto(() => decodeRange(unhex("0001")), /field number 0/);
    isProto(() => decodePut(unhex("0a02" + "0001")), /field number 0/); // inside the header
  });
  await t.step("wire types 3, 4 (groups), 6, 7", () => {
    for (const tag of ["0b", "0c", "0e", "0f", "1b"]) {
      isProto(() => decodeRange(unhex(tag + "00")), /wire type/);
    }
  });
  await t.step("a varint longer than 10 bytes", () => {
    isProto(() => decodeRange(unhex("20" + "ff".repeat(10) + "01")), /longer than 10/);
    // Inside a kv: create_revision with 11 bytes.
    isProto(() => decodeRange(unhex("120c" + "10" + "ff".repeat(10) + "01")), /longer than 10/);
    isProto(() => decodeLeaseGrant(unhex("10" + "80".repeat(10) + "00")), /longer than 10/);
  });
  await t.step("unknown fields of every wire type are skipped", () => {
    // Fields 90-93 (varint, fixed64, bytes, fixed32) around and inside the known ones.
    const unknown = "d005" + "2a" + "d9050102030405060708" + "e20503616263" + "ed0501020304";
    const kv = unknown +
      hex(pbEncode("mvccpb.KeyValue", { key: b("k"), value: b("v"), lease: LEASE }));
    const kvLen = (kv.length / 2).toString(16).padStart(2, "0");
    const bytes = unhex(unknown + "12" + kvLen + kv + unknown + "2001" + unknown);
    readAll(bytes);
    assertEquals(rangeShape(decodeRange(bytes)), {
      kvs: [{
        key: "k",
        value: hex(b("v")),
        createRevision: 0,
        modRevision: 0,
        version: 0,
        lease: LEASE,
      }],
      more: false,
      count: 1,
      revision: 0,
    });
    assertEquals(rangeShape(decodeRange(bytes)), pbRange(pbDecode("RangeResponse", bytes)));
  });
  await t.step("a known field with another wire type is skipped, not misread", () => {
    // count (4) as a length-delimited field: protobufjs would fail; sync leaves count at 0.
    assertEquals(decodeRange(unhex("2201ff")).count, 0);
    // Inside a kv: create_revision (2) as bytes is skipped; the fields after it still count.
    const kv = decodeRange(unhex("1209" + "0a016b" + "1202ffff" + "2003")).kvs[0];
    assertEquals([kv.key, kv.createRevision, kv.version], ["k", 0, 3]);
  });
  await t.step("unframe: short, compressed, truncated", () => {
    const fail = (body: string, re: RegExp) => {
      const e = assertThrows(() => unframe(unhex(body)));
      assertMatch(e.message, re);
    };
    fail("", /shorter/);
    fail("00000000", /shorter/);
    fail("0100000001aa", /compressed/);
    fail("0000000002aa", /truncated/);
    fail("00ffffffff", /truncated/);
    assertEquals(hex(unframe(unhex("0000000002aabb" + "cc"))), "aabb");
    assertEquals(hex(unframe(unhex("0000000000"))), "");
  });
});

Deno.test("ProtoWriter grows past its first buffer and patches nested lengths", () => {
  const w = new ProtoWriter(1);
  w.message(1, (m) => m.message(1, (n) => n.bytes(2, "x".repeat(20_000)).uint(3, 2 ** 50)));
  const got = w.finish();
  const want = "0a" + "b19c01" + "0a" + "ad9c01" + "12" + "a09c01" + "78".repeat(20_000) + "18" +
    "8080808080808002";
  assertEquals(hex(got).slice(0, 40), want.slice(0, 40));
  assertEquals(hex(got), want);
});

function assertMatch(s: string, re: RegExp) {
  assert(re.test(s), `${JSON.stringify(s)} does not match ${re}`);
}
const b = (s: string) => enc.encode(s);
