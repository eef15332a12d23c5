/**
 * etcd's native gRPC transport: protobuf messages over one HTTP/2 connection per endpoint.
 *
 * etcd spends several times less CPU on a gRPC transaction than on the same transaction
 * through its JSON gateway (which decodes, re-encodes and calls itself over gRPC), and the
 * gateway is the bottleneck of a dump. KV, Authenticate, leases and elections go this way.
 */

import http2 from "node:http2";
import { EtcdError } from "./errors.ts";
import { ConnectionWatch, KEEPALIVE, type KeepaliveSettings, type Waiting } from "./keepalive.ts";
import {
  decodeMemberList,
  encodeMemberList,
  type EtcdMember,
  type MemberLister,
} from "./members.ts";
import {
  decodeAuthenticate,
  decodeCampaign,
  decodeDeleteRange,
  decodeLeaseGrant,
  decodeLeaseKeepAlive,
  decodePut,
  decodeRange,
  decodeTxn,
  encodeAuthenticate,
  encodeCampaign,
  encodeDeleteRange,
  encodeLeaseGrant,
  encodeLeaseId,
  encodePut,
  encodeRange,
  encodeResign,
  encodeTxn,
  headerTerm,
} from "./messages.ts";
import type {
  CallOptions,
  EtcdTransport,
  LeaderKey,
  RangeOptions,
  RangeResult,
  TxnRequest,
  TxnResult,
} from "./types.ts";

export interface GrpcTls {
  /** PEM text of the CA bundle to trust. */
  ca?: string;
  cert?: string;
  key?: string;
  /** Keepalive pings (default `KEEPALIVE`). */
  keepalive?: KeepaliveSettings;
}

/** A gRPC call that ended without a gRPC answer (connection lost, not a gRPC server). */
export class GrpcConnectionError extends Error {
  override name = "GrpcConnectionError";
}

/** The 5-byte gRPC message prefix: not compressed, then the length (big-endian). */
function prefix(len: number): Uint8Array {
  const p = new Uint8Array(5);
  new DataView(p.buffer).setUint32(1, len);
  return p;
}

/** The one message of a unary gRPC answer. */
export function unframe(body: Uint8Array): Uint8Array {
  if (body.length < 5) throw new GrpcConnectionError("gRPC answer shorter than its prefix");
  if (body[0] !== 0) throw new GrpcConnectionError("compressed gRPC answer (none was asked)");
  const len = new DataView(body.buffer, body.byteOffset, body.length).getUint32(1);
  if (5 + len > body.length) throw new GrpcConnectionError("truncated gRPC answer");
  return body.subarray(5, 5 + len);
}

/** gRPC's timeout header: at most 8 digits, so long waits go in seconds or hours. */
export function grpcTimeout(ms: number): string {
  const n = Math.max(1, Math.ceil(ms));
  if (n < 1e8) return `${n}m`;
  if (n < 1e11) return `${Math.ceil(n / 1000)}S`;
  return `${Math.min(99_999_999, Math.ceil(n / 3_600_000))}H`;
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** What a probe's request reports to: nothing (see `#unary`). */
const UNWATCHED: Pick<ConnectionWatch, "begin" | "heard" | "end"> = {
  begin: (abandon) => ({ since: Date.now(), term: 0, abandon }),
  heard: () => {},
  end: () => {},
};

/** A unary call's request headers (a keepalive `probe` goes without "hasleader"). */
function callHeaders(method: string, c: CallOptions, probe: boolean): http2.OutgoingHttpHeaders {
  const headers: http2.OutgoingHttpHeaders = {
    ":method": "POST",
    ":path": `/${method}`,
    "content-type": "application/grpc",
    te: "trailers",
    "grpc-timeout": grpcTimeout(c.timeoutMs),
  };
  // etcd's require-leader metadata: a member cut off from its cluster answers "no leader"
  // at once instead of holding the request until it times out.
  if (!probe) headers.hasleader = "true";
  if (c.token) headers.token = c.token;
  return headers;
}

/** Why a call that ended without gRPC status 0 failed. */
function failure(
  grpcStatus: string | undefined,
  grpcMessage: string,
  httpStatus: number,
  sessionError: Error | undefined,
): Error {
  if (grpcStatus !== undefined) {
    return new EtcdError(grpcMessage || `gRPC status ${grpcStatus}`, +grpcStatus, 200);
  }
  const why = sessionError?.message ??
    (httpStatus ? `HTTP ${httpStatus} without a gRPC status` : "connection closed");
  return new GrpcConnectionError(why, { cause: sessionError });
}

export class GrpcTransport implements EtcdTransport, MemberLister {
  readonly #url: string;
  readonly #tls: GrpcTls;
  #session?: http2.ClientHttp2Session;
  #watch?: ConnectionWatch;
  /** Why the last session failed (a refused connection, a TLS error), for messages. */
  #sessionError?: Error;

  constructor(endpoint: string, tls: GrpcTls) {
    this.#url = endpoint.replace(/\/+$/, "");
    this.#tls = tls;
  }

  close(): void {
    this.#watch?.stop();
    this.#session?.destroy();
    this.#session = undefined;
  }

  #connect(): { session: http2.ClientHttp2Session; watch: ConnectionWatch } {
    const current = this.#session;
    if (current && !current.closed && !current.destroyed) {
      return { session: current, watch: this.#watch! };
    }
    const s = http2.connect(this.#url, {
      ...(this.#tls.ca ? { ca: this.#tls.ca } : {}),
      ...(this.#tls.cert && this.#tls.key ? { cert: this.#tls.cert, key: this.#tls.key } : {}),
    });
    this.#sessionError = undefined;
    const drop = () => {
      if (this.#session === s) this.#session = undefined;
    };
    // A connection that stops answering is given up: its requests fail, the client moves on.
    const watch = new ConnectionWatch(s, {
      dead: (why) => {
        if (this.#session === s) this.#sessionError = new Error(`${this.#url}: ${why}`);
        drop();
        s.destroy();
      },
      // Asked without "hasleader": mid-election is when the term matters.
      term: async () =>
        headerTerm(
          await this.#unary("etcdserverpb.Maintenance/Status", new Uint8Array(), {
            timeoutMs: this.#tls.keepalive?.timeoutMs ?? KEEPALIVE.timeoutMs,
          }, true),
        ),
    }, this.#tls.keepalive ?? KEEPALIVE);
    this.#watch = watch;
    s.on("error", (e: Error) => {
      this.#sessionError = e;
      drop();
    });
    s.on("goaway", drop);
    s.on("close", () => {
      watch.stop();
      drop();
    });
    this.#session = s;
    return { session: s, watch };
  }

  /**
   * One unary call: `method` is "package.Service/Method". A `probe` (the keepalive's own
   * question) goes without "hasleader" and unseen by the keepalive.
   */
  #unary(method: string, body: Uint8Array, c: CallOptions, probe = false): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err: Error | undefined, value?: Uint8Array) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        watch.end(waiting);
        if (err) reject(err);
        else resolve(value!);
      };
      const headers = callHeaders(method, c, probe);
      let req: http2.ClientHttp2Stream;
      let watch: Pick<ConnectionWatch, "begin" | "heard" | "end">;
      try {
        const conn = this.#connect();
        watch = probe ? UNWATCHED : conn.watch;
        req = conn.session.request(headers);
      } catch (e) {
        this.close();
        reject(e);
        return;
      }
      const waiting: Waiting = watch.begin((why) => {
        req.close(http2.constants.NGHTTP2_CANCEL);
        finish(new EtcdError(why, 14, 200));
      });
      const timer = setTimeout(() => {
        req.close(http2.constants.NGHTTP2_CANCEL);
        finish(new DOMException(`etcd did not answer within ${c.timeoutMs} ms`, "TimeoutError"));
      }, c.timeoutMs);
      const chunks: Uint8Array[] = [];
      let total = 0;
      let httpStatus = 0;
      let grpcStatus: string | undefined;
      let grpcMessage = "";
      const status = (h: http2.IncomingHttpHeaders) => {
        if (h["grpc-status"] !== undefined) {
          grpcStatus = String(h["grpc-status"]);
          grpcMessage = decodeURIComponent(String(h["grpc-message"] ?? ""));
        }
      };
      req.on("response", (h) => {
        watch.heard();
        httpStatus = Number(h[":status"]);
        status(h); // a "trailers-only" answer (an error) carries its status here
      });
      req.on("trailers", (h) => {
        watch.heard();
        status(h);
      });
      req.on("data", (d: Uint8Array) => {
        watch.heard();
        chunks.push(d);
        total += d.length;
      });
      req.on("error", (e: Error) => {
        const first = this.#sessionError ?? e;
        // Node's wording wraps the socket's reason: keep the reason.
        const why = /caused by: (.*)\)$/.exec(first.message)?.[1] ?? first.message;
        finish(new GrpcConnectionError(why));
      });
      req.on("close", () => {
        if (grpcStatus !== "0") {
          return finish(failure(grpcStatus, grpcMessage, httpStatus, this.#sessionError));
        }
        try {
          const message = unframe(concat(chunks, total));
          watch.heard(headerTerm(message));
          finish(undefined, message);
        } catch (e) {
          finish(e as Error);
        }
      });
      req.write(prefix(body.length));
      req.end(body);
    });
  }

  async range(key: string, o: RangeOptions, c: CallOptions): Promise<RangeResult> {
    return decodeRange(await this.#unary("etcdserverpb.KV/Range", encodeRange(key, o), c));
  }

  async put(key: string, value: string | Uint8Array, c: CallOptions): Promise<number> {
    return decodePut(await this.#unary("etcdserverpb.KV/Put", encodePut(key, value), c));
  }

  async deleteRange(key: string, rangeEnd: string | undefined, c: CallOptions): Promise<number> {
    return decodeDeleteRange(
      await this.#unary("etcdserverpb.KV/DeleteRange", encodeDeleteRange(key, rangeEnd), c),
    );
  }

  async txn(t: TxnRequest, c: CallOptions): Promise<TxnResult> {
    return decodeTxn(await this.#unary("etcdserverpb.KV/Txn", encodeTxn(t), c));
  }

  async authenticate(name: string, password: string, c: CallOptions): Promise<string> {
    return decodeAuthenticate(
      await this.#unary("etcdserverpb.Auth/Authenticate", encodeAuthenticate(name, password), c),
    );
  }

  async leaseGrant(ttlSeconds: number, c: CallOptions): Promise<string> {
    return decodeLeaseGrant(
      await this.#unary("etcdserverpb.Lease/LeaseGrant", encodeLeaseGrant(ttlSeconds), c),
    );
  }

  async leaseKeepAlive(id: string, c: CallOptions): Promise<number> {
    // A bidirectional stream in etcd's API: one request, the stream half-closed, one answer.
    return decodeLeaseKeepAlive(
      await this.#unary("etcdserverpb.Lease/LeaseKeepAlive", encodeLeaseId(id), c),
    );
  }

  async leaseRevoke(id: string, c: CallOptions): Promise<void> {
    await this.#unary("etcdserverpb.Lease/LeaseRevoke", encodeLeaseId(id), c);
  }

  async campaign(name: string, lease: string, value: string, c: CallOptions): Promise<LeaderKey> {
    return decodeCampaign(
      await this.#unary("v3electionpb.Election/Campaign", encodeCampaign(name, lease, value), c),
    );
  }

  async resign(leader: LeaderKey, c: CallOptions): Promise<void> {
    await this.#unary("v3electionpb.Election/Resign", encodeResign(leader), c);
  }

  async memberList(c: CallOptions): Promise<EtcdMember[]> {
    return decodeMemberList(
      await this.#unary("etcdserverpb.Cluster/MemberList", encodeMemberList(), c),
    );
  }
}
