/**
 * etcd v3 client: it follows the cluster's members (read when it connects, every minute and
 * after an endpoint fails; `endpoints` are the seed), fails over to another member when one
 * does not answer, and tries again with backoff when etcd answers that a moment fixes it (a
 * leader election, an overloaded member); an auth token is fetched on first use and again
 * when etcd says it expired; answers no retry can fix become errors saying what to change.
 * The wire is a transport: native gRPC (default) or the JSON gateway.
 */

import { ConfigError } from "../core/source.ts";
import { EtcdError, type EtcdRetryReason } from "./errors.ts";
import { explain, fetchFailure, unreachable } from "./explain.ts";
import { GatewayTransport } from "./gateway.ts";
import { GrpcTransport } from "./grpc.ts";
import { memberEndpoints, type MemberLister, normalizeEndpoint } from "./members.ts";
import type {
  CallOptions,
  EtcdTransport,
  KeyValue,
  LeaderKey,
  RangeOptions,
  RangeResult,
  TxnRequest,
  TxnResult,
} from "./types.ts";

export { EtcdError, EtcdUnavailableError } from "./errors.ts";
export type { EtcdRetryReason } from "./errors.ts";
export type * from "./types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

export type EtcdTransportKind = "grpc" | "gateway";

export interface EtcdClientOptions {
  endpoints: string[];
  username?: string;
  password?: string;
  /** PEM text of a CA bundle to trust. */
  caCert?: string;
  /** PEM client certificate and key for mutual TLS. */
  cert?: string;
  key?: string;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** How requests travel (default grpc: see README, Benchmarks). */
  transport?: EtcdTransportKind;
  /** How often to read the member list (default a minute, as etcd's Go client; 0: never). */
  memberSyncMs?: number;
  /**
   * A request is tried again: why, where it had gone, etcd's words. A request that ends up
   * failing is thrown as well; this counts the ones on the way.
   */
  onRetry?: (reason: EtcdRetryReason, endpoint: string, message: string) => void;
  /** The member list changed the endpoints used (voting members first, then seeds). */
  onEndpoints?: (endpoints: string[]) => void;
}

type Wire = EtcdTransport & MemberLister;

/** Backoff between tries of one request after a passing etcd answer. */
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;
/** Answers that say this member cannot serve now while others may: try the next one. */
const NEXT_MEMBER = new Set<EtcdRetryReason>(["no_leader", "learner", "unavailable", "timed_out"]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The smallest key greater than every key starting with `prefix`. */
export function prefixEnd(prefix: string): string {
  const bytes = enc.encode(prefix);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) {
      const out = bytes.slice(0, i + 1);
      out[i]++;
      return dec.decode(out);
    }
  }
  return "\0";
}

/** Rough size of one op in etcd's protobuf request, for the request-bytes budget. */
export function opSize(key: string, valueBytes: number): number {
  return key.length + valueBytes + 16;
}

export class EtcdClient {
  readonly #opts: EtcdClientOptions;
  readonly #http?: Deno.HttpClient;
  /** `--etcd-endpoints`, tried after the members when none of those answers. */
  readonly #seeds: string[];
  #endpoints: string[];
  readonly #transports = new Map<string, Wire>();
  #current = 0;
  #token?: string;
  /** A user name was given but etcd has auth off: requests go without a token. */
  #authOff = false;
  /** When to read the member list next; 0: before the next request. */
  #syncAt = 0;
  #syncing?: Promise<void>;

  constructor(opts: EtcdClientOptions) {
    if (opts.endpoints.length === 0) throw new Error("no etcd endpoint given");
    this.#opts = opts;
    this.#seeds = [...new Set(opts.endpoints.map(normalizeEndpoint))];
    this.#endpoints = [...this.#seeds];
    if (opts.caCert || opts.cert) {
      this.#http = Deno.createHttpClient({
        caCerts: opts.caCert ? [opts.caCert] : undefined,
        ...(opts.cert && opts.key ? { cert: opts.cert, key: opts.key } : {}),
      });
    }
  }

  /** The endpoint requests currently go to. */
  get endpoint(): string {
    return this.#endpoints[this.#current];
  }

  /** Every endpoint in use, in the order they are tried (members, then seeds). */
  get endpoints(): readonly string[] {
    return this.#endpoints;
  }

  /** How requests travel. */
  get transport(): EtcdTransportKind {
    return this.#opts.transport ?? "grpc";
  }

  close(): void {
    for (const t of this.#transports.values()) t.close();
    this.#transports.clear();
    this.#http?.close();
  }

  /** The current endpoint's transport, made on first use. */
  #wire(): Wire {
    const url = this.endpoint;
    const made = this.#transports.get(url);
    if (made) return made;
    const t = this.transport === "gateway"
      ? new GatewayTransport(url, this.#http)
      : new GrpcTransport(url, {
        ca: this.#opts.caCert,
        cert: this.#opts.cert,
        key: this.#opts.key,
      });
    this.#transports.set(url, t);
    return t;
  }

  /**
   * Move on from endpoint `at` (giving its connection up when `drop`), unless a request
   * running alongside has already moved on.
   */
  #next(at: string, drop: boolean): void {
    if (drop) {
      this.#transports.get(at)?.close();
      this.#transports.delete(at);
    }
    if (this.endpoint === at) this.#current = (this.#current + 1) % this.#endpoints.length;
  }

  #call(timeoutMs?: number, auth = true): CallOptions {
    return {
      token: auth ? this.#token : undefined,
      timeoutMs: timeoutMs ?? this.#opts.timeoutMs ?? 30_000,
    };
  }

  /** Read the member list when it is due (at the first request, then every minute). */
  async #follow(): Promise<void> {
    const every = this.#opts.memberSyncMs ?? 60_000;
    if (every > 0 && !this.#syncing && Date.now() >= this.#syncAt) {
      this.#syncAt = Date.now() + every;
      this.#syncing = this.syncMembers().finally(() => (this.#syncing = undefined));
    }
    await this.#syncing;
  }

  /**
   * Ask the members for the member list, the current endpoint first, and use its voting
   * members' client URLs. No answer leaves the endpoints as they are: requests then say why.
   */
  async syncMembers(): Promise<void> {
    const wait = Math.min(5_000, this.#opts.timeoutMs ?? 30_000);
    for (let i = 0; i < this.#endpoints.length; i++) {
      const at = this.endpoint;
      try {
        const members = await this.#wire().memberList(this.#call(wait));
        this.#use(memberEndpoints(members, this.#seeds));
        return;
      } catch (e) {
        if (e instanceof EtcdError && !e.retryReason) return;
        this.#next(at, !(e instanceof EtcdError));
      }
    }
  }

  /** Switch to `list`, staying on the current endpoint when it is still there. */
  #use(list: string[]): void {
    if (!list.length) return;
    const at = this.endpoint;
    const changed = list.join() !== this.#endpoints.join();
    for (const [url, t] of this.#transports) {
      if (!list.includes(url)) {
        t.close();
        this.#transports.delete(url);
      }
    }
    this.#endpoints = list;
    this.#current = Math.max(0, list.indexOf(at));
    if (changed) this.#opts.onEndpoints?.(list);
  }

  /** One try on `wire`: a token first when needed, and again once when it expired. */
  async #attempt<T>(wire: Wire, op: (t: EtcdTransport, c: CallOptions) => Promise<T>, ms?: number) {
    if (this.#opts.username && !this.#token && !this.#authOff) await this.authenticate();
    try {
      return await op(wire, this.#call(ms));
    } catch (e) {
      if (!(e instanceof EtcdError && e.authFailed && this.#opts.username && this.#token)) throw e;
      // Tokens expire (--auth-token-ttl), and a simple token is known to one member only.
      this.#token = undefined;
      await this.authenticate();
      return await op(wire, this.#call(ms));
    }
  }

  /**
   * Run `op`: on another member when one does not answer (each once in a row, then
   * unreachable), and again after a backoff when etcd answers that a moment or another
   * member fixes it, until `timeoutMs` (the request's deadline) has passed.
   */
  async #do<T>(op: (t: EtcdTransport, c: CallOptions) => Promise<T>, timeoutMs?: number) {
    const giveUpAt = Date.now() + (timeoutMs ?? this.#opts.timeoutMs ?? 30_000);
    let backoff = RETRY_MIN_MS;
    let silent = 0;
    let lastErr: unknown;
    let lastAt = this.endpoint;
    for (;;) {
      await this.#follow();
      const at = this.endpoint;
      try {
        return await this.#attempt(this.#wire(), op, timeoutMs);
      } catch (e) {
        if (e instanceof ConfigError) throw e;
        if (e instanceof EtcdError) {
          const reason = e.retryReason;
          if (!reason || Date.now() + backoff > giveUpAt) throw explain(e, this.#opts.username);
          this.#opts.onRetry?.(reason, at, e.message);
          silent = 0;
          if (NEXT_MEMBER.has(reason)) this.#next(at, false);
          if (reason === "learner") this.#syncAt = 0;
          await sleep(Math.round(backoff / 2 + Math.random() * backoff / 2));
          backoff = Math.min(RETRY_MAX_MS, backoff * 2);
          continue;
        }
        lastErr = e;
        lastAt = at;
        this.#next(at, true);
        // The member may be gone for good (removed, replaced): ask the others who is there.
        this.#syncAt = 0;
        if (++silent >= this.#endpoints.length) break;
        this.#opts.onRetry?.("connection", at, fetchFailure(e));
      }
    }
    const probeMs = Math.min(3_000, timeoutMs ?? this.#opts.timeoutMs ?? 30_000);
    const tls = { ca: this.#opts.caCert, cert: this.#opts.cert, key: this.#opts.key };
    throw await unreachable(this.#endpoints, lastErr, lastAt, tls, probeMs);
  }

  /** Fetch an auth token with the configured user name and password. */
  async authenticate(): Promise<void> {
    try {
      this.#token = await this.#wire().authenticate(
        this.#opts.username ?? "",
        this.#opts.password ?? "",
        this.#call(undefined, false),
      );
    } catch (e) {
      if (e instanceof EtcdError && /auth.*not enabled/i.test(e.message)) {
        // A user name for an etcd without auth: it works without a token.
        this.#authOff = true;
        return;
      }
      throw explain(e, this.#opts.username);
    }
  }

  range(key: string, o: RangeOptions = {}): Promise<RangeResult> {
    return this.#do((t, c) => t.range(key, o, c));
  }

  /** Value of one key as text, or undefined. */
  async get(key: string): Promise<string | undefined> {
    const r = await this.range(key);
    return r.kvs.length ? dec.decode(r.kvs[0].value) : undefined;
  }

  /** Every key-value under `prefix`, paginated `pageSize` at a time. */
  async *scan(
    prefix: string,
    o: Omit<RangeOptions, "rangeEnd" | "limit"> & { pageSize?: number } = {},
  ): AsyncGenerator<KeyValue> {
    const end = prefixEnd(prefix);
    let from = prefix;
    let revision = o.revision;
    for (;;) {
      const r = await this.range(from, {
        ...o,
        rangeEnd: end,
        limit: o.pageSize ?? 1000,
        revision,
      });
      // Read every page at the first page's revision so the scan is one consistent view.
      revision ??= r.revision;
      for (const kv of r.kvs) yield kv;
      if (!r.more || r.kvs.length === 0) return;
      from = r.kvs[r.kvs.length - 1].key + "\0";
    }
  }

  put(key: string, value: string | Uint8Array): Promise<number> {
    return this.#do((t, c) => t.put(key, value, c));
  }

  deleteRange(key: string, rangeEnd?: string): Promise<number> {
    return this.#do((t, c) => t.deleteRange(key, rangeEnd, c));
  }

  txn(t: TxnRequest): Promise<TxnResult> {
    return this.#do((w, c) => w.txn(t, c));
  }

  /** A lease of `ttlSeconds`; returns its ID. */
  leaseGrant(ttlSeconds: number): Promise<string> {
    return this.#do((t, c) => t.leaseGrant(ttlSeconds, c));
  }

  /** Returns the lease's remaining TTL: 0 when it had expired. */
  leaseKeepAlive(id: string, timeoutMs?: number): Promise<number> {
    return this.#do((t, c) => t.leaseKeepAlive(id, c), timeoutMs);
  }

  leaseRevoke(id: string): Promise<void> {
    return this.#do((t, c) => t.leaseRevoke(id, c));
  }

  /** Wait (up to `timeoutMs`) to lead election `name` with `value`, on `lease`. */
  campaign(name: string, lease: string, value: string, timeoutMs?: number): Promise<LeaderKey> {
    return this.#do((t, c) => t.campaign(name, lease, value, c), timeoutMs);
  }

  resign(leader: LeaderKey): Promise<void> {
    return this.#do((t, c) => t.resign(leader, c));
  }
}
