/**
 * etcd's gRPC-gateway transport: JSON over HTTP/1.1 with `fetch`.
 *
 * Keys and values travel base64-encoded; int64s arrive as strings and are kept as numbers,
 * exact below 2^53. Every etcd version since 3.3 serves the gateway on its client port.
 */

import { EtcdError } from "./errors.ts";
import type { EtcdMember, MemberLister } from "./members.ts";
import type {
  CallOptions,
  EtcdTransport,
  KeyValue,
  LeaderKey,
  RangeOptions,
  RangeResult,
  TxnOp,
  TxnRequest,
  TxnResult,
} from "./types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

// Uint8Array base64 methods (ES2026) are in V8 but not yet in TypeScript's lib.
type B64Bytes = Uint8Array & { toBase64(): string };
const fromBase64 = (Uint8Array as unknown as { fromBase64(s: string): Uint8Array }).fromBase64;
const b64 = (s: string | Uint8Array): string =>
  ((typeof s === "string" ? enc.encode(s) : s) as B64Bytes).toBase64();
const unb64 = (s: string | undefined): Uint8Array => (s ? fromBase64(s) : new Uint8Array());
const num = (s: string | number | undefined): number => (s === undefined ? 0 : Number(s));

interface RawKv {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

function kvFrom(raw: RawKv): KeyValue {
  return {
    key: dec.decode(unb64(raw.key)),
    value: unb64(raw.value),
    createRevision: num(raw.create_revision),
    modRevision: num(raw.mod_revision),
    version: num(raw.version),
    lease: raw.lease,
  };
}

function opJson(op: TxnOp): unknown {
  if ("put" in op) {
    return {
      request_put: {
        key: b64(op.put.key),
        value: b64(op.put.value),
        ...(op.put.lease ? { lease: op.put.lease } : {}),
      },
    };
  }
  if ("delete" in op) {
    return {
      request_delete_range: {
        key: b64(op.delete.key),
        ...(op.delete.rangeEnd ? { range_end: b64(op.delete.rangeEnd) } : {}),
      },
    };
  }
  return {
    request_range: {
      key: b64(op.range.key),
      ...(op.range.rangeEnd ? { range_end: b64(op.range.rangeEnd) } : {}),
    },
  };
}

export class GatewayTransport implements EtcdTransport, MemberLister {
  readonly #base: string;
  readonly #http?: Deno.HttpClient;

  /** `http` carries the TLS settings (CA, client certificate); the client owns it. */
  constructor(endpoint: string, http?: Deno.HttpClient) {
    this.#base = endpoint.replace(/\/+$/, "");
    this.#http = http;
  }

  close(): void {}

  async call(path: string, body: unknown, c: CallOptions): Promise<Record<string, unknown>> {
    // etcd's require-leader metadata (see grpc.ts), passed on by the gateway.
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "grpc-metadata-hasleader": "true",
    };
    // The gateway wants the bare token, not "Bearer <token>".
    if (c.token) headers.authorization = c.token;
    const res = await fetch(this.#base + path, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      client: this.#http,
      signal: AbortSignal.timeout(c.timeoutMs),
    });
    const text = await res.text();
    let json: Record<string, unknown>;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      // Not etcd's gateway (a proxy's error page, another server): no answer from etcd, so
      // the client fails over and asks whether the endpoint is etcd at all.
      throw new Error(`HTTP ${res.status} with a body that is not JSON`);
    }
    if (!res.ok || (json.error !== undefined && json.code !== undefined)) {
      const msg = String(json.message ?? json.error ?? `HTTP ${res.status}`);
      throw new EtcdError(msg, num(json.code as string | undefined), res.status);
    }
    return json;
  }

  async authenticate(name: string, password: string, c: CallOptions): Promise<string> {
    const r = await this.call("/v3/auth/authenticate", { name, password }, c);
    return String(r.token);
  }

  async range(key: string, o: RangeOptions, c: CallOptions): Promise<RangeResult> {
    const body: Record<string, unknown> = { key: b64(key) };
    if (o.rangeEnd !== undefined) body.range_end = b64(o.rangeEnd);
    if (o.limit) body.limit = o.limit;
    if (o.keysOnly) body.keys_only = true;
    if (o.countOnly) body.count_only = true;
    if (o.maxModRevision) body.max_mod_revision = o.maxModRevision;
    if (o.minModRevision) body.min_mod_revision = o.minModRevision;
    if (o.revision) body.revision = o.revision;
    if (o.serializable) body.serializable = true;
    const r = await this.call("/v3/kv/range", body, c);
    const header = r.header as { revision?: string } | undefined;
    return {
      kvs: ((r.kvs as RawKv[] | undefined) ?? []).map(kvFrom),
      more: Boolean(r.more),
      count: num(r.count as string | undefined),
      revision: num(header?.revision),
    };
  }

  async put(key: string, value: string | Uint8Array, c: CallOptions): Promise<number> {
    const r = await this.call("/v3/kv/put", { key: b64(key), value: b64(value) }, c);
    return num((r.header as { revision?: string })?.revision);
  }

  async deleteRange(key: string, rangeEnd: string | undefined, c: CallOptions): Promise<number> {
    const body: Record<string, unknown> = { key: b64(key) };
    if (rangeEnd !== undefined) body.range_end = b64(rangeEnd);
    const r = await this.call("/v3/kv/deleterange", body, c);
    return num(r.deleted as string | undefined);
  }

  async txn(t: TxnRequest, c: CallOptions): Promise<TxnResult> {
    const body = {
      compare: (t.compare ?? []).map((x) => ({
        key: b64(x.key),
        target: x.target,
        result: x.result,
        ...(x.version !== undefined ? { version: x.version } : {}),
        ...(x.createRevision !== undefined ? { create_revision: x.createRevision } : {}),
        ...(x.modRevision !== undefined ? { mod_revision: x.modRevision } : {}),
        ...(x.value !== undefined ? { value: b64(x.value) } : {}),
      })),
      success: t.success.map(opJson),
      failure: (t.failure ?? []).map(opJson),
    };
    const r = await this.call("/v3/kv/txn", body, c);
    const responses = (r.responses as Record<string, { kvs?: RawKv[] }>[] | undefined) ?? [];
    return {
      succeeded: Boolean(r.succeeded),
      revision: num((r.header as { revision?: string })?.revision),
      ranges: responses.map((x) =>
        x.response_range ? (x.response_range.kvs ?? []).map(kvFrom) : undefined
      ),
    };
  }

  async leaseGrant(ttlSeconds: number, c: CallOptions): Promise<string> {
    return String((await this.call("/v3/lease/grant", { TTL: ttlSeconds }, c)).ID);
  }

  async leaseKeepAlive(id: string, c: CallOptions): Promise<number> {
    const r = await this.call("/v3/lease/keepalive", { ID: id }, c);
    return num((r.result as { TTL?: string } | undefined)?.TTL);
  }

  async leaseRevoke(id: string, c: CallOptions): Promise<void> {
    await this.call("/v3/lease/revoke", { ID: id }, c);
  }

  async campaign(name: string, lease: string, value: string, c: CallOptions): Promise<LeaderKey> {
    const r = await this.call("/v3/election/campaign", {
      name: b64(name),
      lease,
      value: b64(value),
    }, c);
    const l = r.leader as { name?: string; key?: string; rev?: string; lease?: string };
    return {
      name: dec.decode(unb64(l.name)),
      key: dec.decode(unb64(l.key)),
      rev: num(l.rev),
      lease: String(l.lease ?? "0"),
    };
  }

  async resign(leader: LeaderKey, c: CallOptions): Promise<void> {
    await this.call("/v3/election/resign", {
      leader: {
        name: b64(leader.name),
        key: b64(leader.key),
        rev: String(leader.rev),
        lease: leader.lease,
      },
    }, c);
  }

  async memberList(c: CallOptions): Promise<EtcdMember[]> {
    const r = await this.call("/v3/cluster/member/list", {}, c);
    const raw = (r.members as Record<string, unknown>[] | undefined) ?? [];
    return raw.map((m) => ({
      id: String(m.ID ?? "0"),
      name: String(m.name ?? ""),
      clientUrls: (m.clientURLs as string[] | undefined) ?? [],
      isLearner: Boolean(m.isLearner),
    }));
  }
}
