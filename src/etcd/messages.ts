/**
 * etcd's v3 protobuf messages that sync sends and reads (etcdserverpb / mvccpb, field numbers
 * from etcd's rpc.proto and kv.proto). Pure: requests to bytes, bytes to results.
 */

import { LEN, ProtoReader, ProtoWriter, VARINT } from "./proto.ts";
import type {
  KeyValue,
  LeaderKey,
  RangeOptions,
  RangeResult,
  TxnCompare,
  TxnOp,
  TxnRequest,
  TxnResult,
} from "./types.ts";

const dec = new TextDecoder();

const COMPARE_RESULT = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;
const COMPARE_TARGET = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;

export function encodeRange(key: string, o: RangeOptions): Uint8Array {
  const w = new ProtoWriter(64);
  w.bytes(1, key).bytes(2, o.rangeEnd).uint(3, o.limit).uint(4, o.revision)
    .bool(7, o.serializable).bool(8, o.keysOnly).bool(9, o.countOnly)
    .uint(10, o.minModRevision).uint(11, o.maxModRevision);
  return w.finish();
}

export function encodePut(key: string, value: string | Uint8Array, lease?: string): Uint8Array {
  const w = new ProtoWriter(64 + key.length * 3 + value.length * 3);
  writePut(w, key, value, lease);
  return w.finish();
}

function writePut(w: ProtoWriter, key: string, value: string | Uint8Array, lease?: string) {
  w.bytes(1, key).bytes(2, value).int64(3, lease);
}

export function encodeDeleteRange(key: string, rangeEnd?: string): Uint8Array {
  return new ProtoWriter(64).bytes(1, key).bytes(2, rangeEnd).finish();
}

export function encodeAuthenticate(name: string, password: string): Uint8Array {
  return new ProtoWriter(64).bytes(1, name).bytes(2, password).finish();
}

function writeCompare(w: ProtoWriter, c: TxnCompare): void {
  w.uint(1, COMPARE_RESULT[c.result]).uint(2, COMPARE_TARGET[c.target]).bytes(3, c.key);
  // The target is a oneof: its zero (VERSION EQUAL 0, "key absent") must still be sent.
  w.uint(4, c.version, c.version !== undefined).uint(
    5,
    c.createRevision,
    c.createRevision !== undefined,
  )
    .uint(6, c.modRevision, c.modRevision !== undefined).bytes(7, c.value, c.value !== undefined);
}

/**
 * One RequestOp (a oneof: range 1, put 2, delete 3) in place, its two nested lengths sized
 * for ASCII keys and values, so the usual put is written once with no bytes moved.
 */
function writeOp(w: ProtoWriter, field: number, op: TxnOp): void {
  if ("put" in op) {
    const { key, value, lease } = op.put;
    // Tags, lengths and a lease: a few bytes beyond the key and value.
    const size = key.length + value.length + 6 + (lease ? 11 : 0);
    const outer = w.open(field, size + 3);
    const inner = w.open(2, size);
    writePut(w, key, value, lease);
    w.close(inner);
    w.close(outer);
    return;
  }
  const outer = w.open(field);
  const [which, key, rangeEnd] = "delete" in op
    ? [3, op.delete.key, op.delete.rangeEnd]
    : [1, op.range.key, op.range.rangeEnd];
  const inner = w.open(which);
  w.bytes(1, key).bytes(2, rangeEnd);
  w.close(inner);
  w.close(outer);
}

export function encodeTxn(t: TxnRequest): Uint8Array {
  // Size the buffer once from the ops (ASCII keys and JSON values: about a byte a unit).
  let size = 64;
  for (const op of t.success) {
    size += 16 + ("put" in op ? op.put.key.length + op.put.value.length : 64);
  }
  const w = new ProtoWriter(size);
  for (const c of t.compare ?? []) w.message(1, (m) => writeCompare(m, c));
  for (const op of t.success) writeOp(w, 2, op);
  for (const op of t.failure ?? []) writeOp(w, 3, op);
  return w.finish();
}

/**
 * The raft term in a response's header (field 1 of every etcd response, raft_term its field
 * 4), or 0: the client's keepalive tells from it that a leader election came between.
 */
export function headerTerm(b: Uint8Array): number {
  const r = new ProtoReader(b);
  while (r.next()) {
    if (r.wire !== LEN || r.field !== 1) {
      r.skip();
      continue;
    }
    const h = r.message();
    while (h.next()) {
      if (h.wire === VARINT && h.field === 4) return h.varint();
      h.skip();
    }
    return 0;
  }
  return 0;
}

/** ResponseHeader's revision. */
function headerRevision(r: ProtoReader): number {
  let revision = 0;
  while (r.next()) {
    if (r.field === 3 && r.wire === VARINT) revision = r.varint();
    else r.skip();
  }
  return revision;
}

function decodeKv(r: ProtoReader): KeyValue {
  const kv: KeyValue = {
    key: "",
    value: new Uint8Array(),
    createRevision: 0,
    modRevision: 0,
    version: 0,
  };
  while (r.next()) {
    if (r.wire === LEN && r.field === 1) kv.key = dec.decode(r.bytes());
    else if (r.wire === LEN && r.field === 5) kv.value = r.bytes();
    else if (r.wire !== VARINT) r.skip();
    else if (r.field === 2) kv.createRevision = r.varint();
    else if (r.field === 3) kv.modRevision = r.varint();
    else if (r.field === 4) kv.version = r.varint();
    else if (r.field === 6) kv.lease = r.bigVarint();
    else r.skip();
  }
  return kv;
}

function readRange(r: ProtoReader): RangeResult {
  const out: RangeResult = { kvs: [], more: false, count: 0, revision: 0 };
  while (r.next()) {
    if (r.wire === LEN && r.field === 1) out.revision = headerRevision(r.message());
    else if (r.wire === LEN && r.field === 2) out.kvs.push(decodeKv(r.message()));
    else if (r.wire === VARINT && r.field === 3) out.more = r.varint() !== 0;
    else if (r.wire === VARINT && r.field === 4) out.count = r.varint();
    else r.skip();
  }
  return out;
}

export function decodeRange(b: Uint8Array): RangeResult {
  return readRange(new ProtoReader(b));
}

/** PutResponse: the revision of the put. */
export function decodePut(b: Uint8Array): number {
  const r = new ProtoReader(b);
  let revision = 0;
  while (r.next()) {
    if (r.wire === LEN && r.field === 1) revision = headerRevision(r.message());
    else r.skip();
  }
  return revision;
}

/** DeleteRangeResponse: how many keys went. */
export function decodeDeleteRange(b: Uint8Array): number {
  const r = new ProtoReader(b);
  let deleted = 0;
  while (r.next()) {
    if (r.wire === VARINT && r.field === 2) deleted = r.varint();
    else r.skip();
  }
  return deleted;
}

export function decodeTxn(b: Uint8Array): TxnResult {
  const r = new ProtoReader(b);
  const out: TxnResult = { succeeded: false, revision: 0, ranges: [] };
  while (r.next()) {
    if (r.wire === LEN && r.field === 1) out.revision = headerRevision(r.message());
    else if (r.wire === VARINT && r.field === 2) out.succeeded = r.varint() !== 0;
    else if (r.wire === LEN && r.field === 3) {
      // ResponseOp: a oneof, of which only response_range (1) carries what callers read.
      const op = r.message();
      let range: KeyValue[] | undefined;
      while (op.next()) {
        if (op.wire === LEN && op.field === 1) range = readRange(op.message()).kvs;
        else op.skip();
      }
      out.ranges.push(range);
    } else r.skip();
  }
  return out;
}

/** AuthenticateResponse: the token. */
export function decodeAuthenticate(b: Uint8Array): string {
  const r = new ProtoReader(b);
  let token = "";
  while (r.next()) {
    if (r.wire === LEN && r.field === 2) token = dec.decode(r.bytes());
    else r.skip();
  }
  return token;
}

/** LeaseGrantRequest (TTL), LeaseKeepAliveRequest and LeaseRevokeRequest (ID). */
export function encodeLeaseGrant(ttlSeconds: number): Uint8Array {
  return new ProtoWriter(16).uint(1, ttlSeconds).finish();
}

export function encodeLeaseId(id: string): Uint8Array {
  return new ProtoWriter(16).int64(1, id).finish();
}

/** LeaseGrantResponse: the ID; an `error` (field 4) etcd sets instead is thrown. */
export function decodeLeaseGrant(b: Uint8Array): string {
  const r = new ProtoReader(b);
  let id = "0";
  let error = "";
  while (r.next()) {
    if (r.wire === VARINT && r.field === 2) id = r.bigVarint();
    else if (r.wire === LEN && r.field === 4) error = dec.decode(r.bytes());
    else r.skip();
  }
  if (error) throw new Error(`etcd lease grant: ${error}`);
  return id;
}

/** LeaseKeepAliveResponse: the TTL (0 when the lease had expired). */
export function decodeLeaseKeepAlive(b: Uint8Array): number {
  const r = new ProtoReader(b);
  let ttl = 0;
  while (r.next()) {
    if (r.wire === VARINT && r.field === 3) ttl = r.varint();
    else r.skip();
  }
  return ttl;
}

function writeLeader(w: ProtoWriter, l: LeaderKey): void {
  w.bytes(1, l.name).bytes(2, l.key).uint(3, l.rev).int64(4, l.lease);
}

/** v3electionpb CampaignRequest. */
export function encodeCampaign(name: string, lease: string, value: string): Uint8Array {
  return new ProtoWriter(64).bytes(1, name).int64(2, lease).bytes(3, value).finish();
}

/** v3electionpb CampaignResponse: the LeaderKey (field 2). */
export function decodeCampaign(b: Uint8Array): LeaderKey {
  const r = new ProtoReader(b);
  const l: LeaderKey = { name: "", key: "", rev: 0, lease: "0" };
  while (r.next()) {
    if (r.wire !== LEN || r.field !== 2) {
      r.skip();
      continue;
    }
    const m = r.message();
    while (m.next()) {
      if (m.wire === LEN && m.field === 1) l.name = dec.decode(m.bytes());
      else if (m.wire === LEN && m.field === 2) l.key = dec.decode(m.bytes());
      else if (m.wire === VARINT && m.field === 3) l.rev = m.varint();
      else if (m.wire === VARINT && m.field === 4) l.lease = m.bigVarint();
      else m.skip();
    }
  }
  return l;
}

/** v3electionpb ResignRequest. */
export function encodeResign(leader: LeaderKey): Uint8Array {
  return new ProtoWriter(64).message(1, (m) => writeLeader(m, leader)).finish();
}
