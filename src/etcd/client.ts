/**
 * etcd v3 client: endpoints fail over in order on connection errors; an auth token is
 * fetched on first use and again when etcd says it expired; answers no retry can fix become
 * errors saying what to change. The wire is a transport: native gRPC (default) or the JSON
 * gateway.
 */

import { ConfigError } from "../core/source.ts";
import { EtcdError, EtcdUnavailableError } from "./errors.ts";
import { GatewayTransport } from "./gateway.ts";
import { GrpcTransport } from "./grpc.ts";
import { notEtcd } from "./probe.ts";
import { NOT_RESOLVED } from "../core/net.ts";
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
}

/**
 * The first line of a connection failure, with its cause (Deno's fetch says only "fetch
 * failed" and puts the reason in the cause).
 */
function fetchFailure(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : "";
  return (cause && !msg.includes(cause) ? `${msg}: ${cause}` : msg).split("\n")[0];
}

/**
 * TLS rejections in a connection failure, the reason captured: etcd's certificate not
 * trusted (`invalid peer certificate: UnknownIssuer` from fetch, `unable to verify the first
 * certificate` from HTTP/2), or sync's client certificate refused by etcd.
 */
const SERVER_CERT_REJECTED =
  /(invalid peer certificate(?:: \w+)?|unable to verify[\w ]*|self[- ]signed certificate[\w ]*|unable to get (?:local )?issuer[\w ]*)/i;
const CLIENT_CERT_REJECTED =
  /((?:received )?fatal alert: (?:BadCertificate|CertificateRequired|UnknownCA|CertificateUnknown))/i;

/** A name that does not resolve is said so, with the host (the fix is the name or DNS). */
function resolveFailure(why: string, endpoint: string): string {
  if (!NOT_RESOLVED.test(why)) return why;
  const host = new URL(endpoint).hostname;
  return `cannot resolve ${host} (${why.replace(host, "").replace(/:\s*$/, "").trim()})`;
}

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
  readonly #transports: (EtcdTransport | undefined)[];
  #current = 0;
  #token?: string;
  /** A user name was given but etcd has auth off: requests go without a token. */
  #authOff = false;

  constructor(opts: EtcdClientOptions) {
    if (opts.endpoints.length === 0) throw new Error("no etcd endpoint given");
    this.#opts = opts;
    this.#transports = opts.endpoints.map(() => undefined);
    if (opts.caCert || opts.cert) {
      this.#http = Deno.createHttpClient({
        caCerts: opts.caCert ? [opts.caCert] : undefined,
        ...(opts.cert && opts.key ? { cert: opts.cert, key: opts.key } : {}),
      });
    }
  }

  /** The endpoint requests currently go to. */
  get endpoint(): string {
    return this.#opts.endpoints[this.#current];
  }

  /** How requests travel. */
  get transport(): EtcdTransportKind {
    return this.#opts.transport ?? "grpc";
  }

  close(): void {
    for (const t of this.#transports) t?.close();
    this.#http?.close();
  }

  /** The current endpoint's transport, made on first use. */
  #wire(): EtcdTransport {
    const i = this.#current;
    const made = this.#transports[i];
    if (made) return made;
    const url = this.#opts.endpoints[i];
    const t = this.transport === "gateway"
      ? new GatewayTransport(url, this.#http)
      : new GrpcTransport(url, {
        ca: this.#opts.caCert,
        cert: this.#opts.cert,
        key: this.#opts.key,
      });
    this.#transports[i] = t;
    return t;
  }

  #call(timeoutMs?: number, auth = true): CallOptions {
    return {
      token: auth ? this.#token : undefined,
      timeoutMs: timeoutMs ?? this.#opts.timeoutMs ?? 30_000,
    };
  }

  /** Run `op` on the current endpoint, failing over to the next on connection errors. */
  async #do<T>(op: (t: EtcdTransport, c: CallOptions) => Promise<T>, timeoutMs?: number) {
    let lastErr: unknown;
    let lastAt = this.endpoint;
    const n = this.#opts.endpoints.length;
    for (let attempt = 0; attempt < n; attempt++) {
      const wire = this.#wire();
      try {
        if (this.#opts.username && !this.#token && !this.#authOff) await this.authenticate();
        return await op(wire, this.#call(timeoutMs));
      } catch (e) {
        if (e instanceof EtcdError) {
          if (e.authFailed && this.#opts.username && this.#token) {
            // Tokens expire (--auth-token-ttl); fetch a new one once and retry.
            this.#token = undefined;
            await this.authenticate();
            return await op(wire, this.#call(timeoutMs)).catch((e2) => {
              throw this.#explain(e2);
            });
          }
          throw this.#explain(e);
        }
        if (e instanceof ConfigError) throw e;
        lastErr = e;
        lastAt = this.#opts.endpoints[this.#current];
        this.#transports[this.#current]?.close();
        this.#transports[this.#current] = undefined;
        this.#current = (this.#current + 1) % n;
      }
    }
    const at = this.#opts.endpoints.join(",");
    const why = fetchFailure(lastErr);
    // A certificate either side rejects stays rejected: say what to change (exit 2 at first
    // start, like bad credentials) instead of retrying "fetch failed" forever.
    const server = SERVER_CERT_REJECTED.exec(why)?.[1];
    if (server) {
      throw new ConfigError(
        `cannot verify etcd's TLS certificate at ${at} (${server}): give the CA that ` +
          "signed it with --etcd-ca",
      );
    }
    const client = CLIENT_CERT_REJECTED.exec(why)?.[1];
    if (client) {
      throw new ConfigError(
        `etcd at ${at} rejected the TLS client certificate (${client}): give ` +
          "--etcd-cert and --etcd-key signed by a CA etcd trusts (its --trusted-ca-file)",
      );
    }
    // After the TLS rejections: a refused client certificate also ends the connection unanswered.
    await this.#refuseNotEtcd(timeoutMs);
    throw new EtcdUnavailableError(`etcd unreachable at ${at}: ${resolveFailure(why, lastAt)}`);
  }

  /**
   * No endpoint answered: one that is not etcd at all (a web server, a database port) is a
   * configuration error, said in one line (exit 2 at first start) instead of being retried
   * as `Protocol error` or `write EPIPE` for ever.
   */
  async #refuseNotEtcd(timeoutMs?: number): Promise<void> {
    const wait = Math.min(3_000, timeoutMs ?? this.#opts.timeoutMs ?? 30_000);
    const tls = { ca: this.#opts.caCert, cert: this.#opts.cert, key: this.#opts.key };
    for (const ep of this.#opts.endpoints) {
      const why = await notEtcd(ep, tls, wait);
      if (why) {
        throw new ConfigError(
          `etcd endpoint ${ep} is not an etcd server (${why}): fix --etcd-endpoints`,
        );
      }
    }
  }

  /**
   * etcd's answers that no retry can fix become ConfigErrors saying what to change (the
   * service exits with status 2 at first start); a full backend gets a clearer message.
   */
  #explain(e: unknown): unknown {
    if (!(e instanceof EtcdError)) return e;
    const user = this.#opts.username;
    if (e.authFailed) {
      return new ConfigError(
        user
          ? `etcd refused user "${user}": ${e.message} (check --etcd-username and --etcd-password)`
          : `etcd requires authentication: ${e.message} (set --etcd-username and --etcd-password)`,
      );
    }
    if (e.permissionDenied) {
      return new ConfigError(
        `etcd: ${e.message} for ${user ? `user "${user}"` : "this client"} (grant its role ` +
          "readwrite on --etcd-prefix and the state prefix)",
      );
    }
    if (e.noSpace) {
      return new EtcdError(
        `etcd is out of space (${e.message}): nothing was written; free space (compact, ` +
          'defragment, then "etcdctl alarm disarm") or raise etcd\'s --quota-backend-bytes',
        e.grpcCode,
        e.httpStatus,
      );
    }
    return e;
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
      throw this.#explain(e);
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
  leaseKeepAlive(id: string): Promise<number> {
    return this.#do((t, c) => t.leaseKeepAlive(id, c));
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
