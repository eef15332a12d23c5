/**
 * etcd's native gRPC transport: protobuf messages over one HTTP/2 connection per endpoint.
 *
 * etcd spends several times less CPU on a gRPC transaction than on the same transaction
 * through its JSON gateway (which decodes, re-encodes and calls itself over gRPC), and the
 * gateway is the bottleneck of a dump. KV, Authenticate, leases and elections go this way.
 */

import { EtcdError } from "./errors.ts";
import type { H2Target } from "./h2_dial.ts";
import { concat } from "./h2_frames.ts";
import { H2Session, type StreamEvents } from "./h2_session.ts";
import { encodeHeaders, type HeaderField } from "./hpack.ts";
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

/** A gRPC message: not compressed, its length (big-endian), then the message. */
function framed(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  new DataView(out.buffer).setUint32(1, body.length);
  out.set(body, 5);
  return out;
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

/** What a probe's request reports to: nothing (see `#unary`). */
const UNWATCHED: Pick<ConnectionWatch, "begin" | "heard" | "end"> = {
  begin: (abandon) => ({ since: Date.now(), term: 0, abandon }),
  heard: () => {},
  end: () => {},
};

/** A unary call's request headers (a keepalive `probe` goes without "hasleader"). */
function callHeaders(fixed: Uint8Array, c: CallOptions, probe: boolean): Uint8Array {
  const more: HeaderField[] = [["grpc-timeout", grpcTimeout(c.timeoutMs)]];
  // etcd's require-leader metadata: a member cut off from its cluster answers "no leader"
  // at once instead of holding the request until it times out.
  if (!probe) more.push(["hasleader", "true"]);
  if (c.token) more.push(["token", c.token]);
  const tail = encodeHeaders(more);
  const out = new Uint8Array(fixed.length + tail.length);
  out.set(fixed);
  out.set(tail, fixed.length);
  return out;
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

/** An endpoint URL as the session needs it. */
function target(url: string, tls: GrpcTls): H2Target {
  const u = new URL(url);
  const secure = u.protocol === "https:";
  return {
    hostname: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: Number(u.port) || (secure ? 443 : 80),
    tls: secure ? { ca: tls.ca, cert: tls.cert, key: tls.key } : undefined,
  };
}

export class GrpcTransport implements EtcdTransport, MemberLister {
  readonly #url: string;
  readonly #tls: GrpcTls;
  readonly #target: H2Target;
  /** Each method's constant request headers, encoded once. */
  readonly #fixed = new Map<string, Uint8Array>();
  #session?: H2Session;
  #watch?: ConnectionWatch;
  /** Why the last session failed (a refused connection, a TLS error), for messages. */
  #sessionError?: Error;

  constructor(endpoint: string, tls: GrpcTls) {
    this.#url = endpoint.replace(/\/+$/, "");
    this.#tls = tls;
    this.#target = target(this.#url, tls);
  }

  close(): void {
    this.#watch?.stop();
    this.#session?.destroy();
    this.#session = undefined;
  }

  #connect(): { session: H2Session; watch: ConnectionWatch } {
    const current = this.#session;
    if (current?.usable) return { session: current, watch: this.#watch! };
    this.#sessionError = undefined;
    let s: H2Session | undefined = undefined;
    const drop = () => {
      if (s && this.#session === s) this.#session = undefined;
    };
    s = new H2Session(this.#target, {
      // An error, a GOAWAY or the end of the connection: later requests take a new one.
      gone: (err) => {
        if (err && this.#session === s) this.#sessionError = err;
        if (s!.destroyed) watch.stop();
        drop();
      },
    });
    const session = s;
    // A connection that stops answering is given up: its requests fail, the client moves on.
    const watch = new ConnectionWatch(session, {
      dead: (why) => {
        if (this.#session === session) this.#sessionError = new Error(`${this.#url}: ${why}`);
        drop();
        session.destroy(new Error(`${this.#url}: ${why}`));
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
    if (!session.destroyed) this.#session = session;
    return { session, watch };
  }

  /** The headers every call of `method` sends. */
  #fixedHeaders(method: string): Uint8Array {
    let h = this.#fixed.get(method);
    if (!h) {
      h = encodeHeaders([
        [":method", "POST"],
        [":scheme", this.#target.tls ? "https" : "http"],
        [":path", `/${method}`],
        [":authority", new URL(this.#url).host],
        ["content-type", "application/grpc"],
        ["te", "trailers"],
      ]);
      this.#fixed.set(method, h);
    }
    return h;
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
      const chunks: Uint8Array[] = [];
      let httpStatus = 0;
      let grpcStatus: string | undefined;
      let grpcMessage = "";
      const events: StreamEvents = {
        // A "trailers-only" answer (an error) carries its status in its only headers.
        headers: (fields) => {
          watch.heard();
          for (const [name, value] of fields) {
            if (name === ":status") httpStatus = Number(value);
            else if (name === "grpc-status") grpcStatus = value;
            else if (name === "grpc-message") grpcMessage = decodeURIComponent(value);
          }
        },
        data: (d) => {
          watch.heard();
          chunks.push(d);
        },
        fail: (e) => finish(new GrpcConnectionError((this.#sessionError ?? e).message)),
        end: () => {
          if (grpcStatus !== "0") {
            return finish(failure(grpcStatus, grpcMessage, httpStatus, this.#sessionError));
          }
          try {
            const message = unframe(concat(chunks));
            watch.heard(headerTerm(message));
            finish(undefined, message);
          } catch (e) {
            finish(e as Error);
          }
        },
      };
      let session: H2Session;
      let watch: Pick<ConnectionWatch, "begin" | "heard" | "end">;
      let cancel: () => void;
      try {
        const conn = this.#connect();
        session = conn.session;
        watch = probe ? UNWATCHED : conn.watch;
        cancel = session.request(
          callHeaders(this.#fixedHeaders(method), c, probe),
          framed(body),
          events,
        );
      } catch (e) {
        this.close();
        reject(e);
        return;
      }
      const waiting: Waiting = watch.begin((why) => {
        cancel();
        finish(new EtcdError(why, 14, 200));
      });
      const timer = setTimeout(() => {
        cancel();
        finish(new DOMException(`etcd did not answer within ${c.timeoutMs} ms`, "TimeoutError"));
      }, c.timeoutMs);
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
