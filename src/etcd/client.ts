/**
 * etcd v3 client over the gRPC-gateway (JSON over HTTP with `fetch`).
 *
 * Keys and values travel base64-encoded; revisions arrive as strings (int64) and are kept
 * as numbers, which is exact below 2^53. Several endpoints fail over in order on connection
 * errors; an auth token is fetched on first use and again when etcd says it expired.
 */

import { ConfigError } from "../core/source.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

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
}

export interface KeyValue {
  key: string;
  value: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  lease?: string;
}

export interface RangeOptions {
  /** End of the range (exclusive); `prefixEnd(key)` for a prefix. */
  rangeEnd?: string;
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
  /** Only keys whose mod revision is at most this. */
  maxModRevision?: number;
  minModRevision?: number;
  revision?: number;
  serializable?: boolean;
}

export interface RangeResult {
  kvs: KeyValue[];
  more: boolean;
  count: number;
  revision: number;
}

export type TxnOp =
  | { put: { key: string; value: string | Uint8Array; lease?: string } }
  | { delete: { key: string; rangeEnd?: string } }
  | { range: { key: string; rangeEnd?: string } };

export type TxnCompare = {
  key: string;
  target: "VERSION" | "CREATE" | "MOD" | "VALUE" | "LEASE";
  result: "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL";
  version?: number;
  createRevision?: number;
  modRevision?: number;
  value?: string;
};

export interface TxnRequest {
  compare?: TxnCompare[];
  success: TxnOp[];
  failure?: TxnOp[];
}

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  /** Range results of the executed branch, in op order (undefined for puts/deletes). */
  ranges: (KeyValue[] | undefined)[];
}

/** An error etcd answered with (not a connection failure). */
export class EtcdError extends Error {
  override name = "EtcdError";
  constructor(message: string, readonly grpcCode: number, readonly httpStatus: number) {
    super(message);
  }
  /** etcd refused the request for its size (`--max-request-bytes`). */
  get tooLarge(): boolean {
    return /request is too large|message larger than max|exceeds max/i.test(this.message);
  }
  /** etcd's backend quota is full (`mvcc: database space exceeded`). */
  get noSpace(): boolean {
    return /database space exceeded/i.test(this.message);
  }
  get authFailed(): boolean {
    return this.grpcCode === 16 || /authentication failed|invalid auth token|user name is empty/i
      .test(this.message);
  }
  /** The user lacks a permission (a role on the key range). */
  get permissionDenied(): boolean {
    return this.grpcCode === 7 || /permission denied/i.test(this.message);
  }
}

/** No endpoint could be reached. */
export class EtcdUnavailableError extends Error {
  override name = "EtcdUnavailableError";
}

/** The first line of a failed fetch, with its cause: Deno's own message is "fetch failed". */
function fetchFailure(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : "";
  return (cause && !msg.includes(cause) ? `${msg}: ${cause}` : msg).split("\n")[0];
}

/** The TLS part of a fetch failure: `invalid peer certificate: UnknownIssuer`. */
function tlsReason(why: string): string {
  return /(invalid peer certificate: \w+|received fatal alert: \w+)/i.exec(why)?.[1] ?? why;
}

// Uint8Array base64 methods (ES2026) are in V8 but not yet in TypeScript's lib.
type B64Bytes = Uint8Array & { toBase64(): string };
const fromBase64 = (Uint8Array as unknown as { fromBase64(s: string): Uint8Array }).fromBase64;
const b64 = (s: string | Uint8Array): string =>
  ((typeof s === "string" ? enc.encode(s) : s) as B64Bytes).toBase64();
const unb64 = (s: string | undefined): Uint8Array => (s ? fromBase64(s) : new Uint8Array());
const num = (s: string | number | undefined): number => (s === undefined ? 0 : Number(s));

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

export class EtcdClient {
  readonly #opts: EtcdClientOptions;
  readonly #http?: Deno.HttpClient;
  #current = 0;
  #token?: string;
  /** A user name was given but etcd has auth off: requests go without a token. */
  #authOff = false;

  constructor(opts: EtcdClientOptions) {
    if (opts.endpoints.length === 0) throw new Error("no etcd endpoint given");
    this.#opts = opts;
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

  close(): void {
    this.#http?.close();
  }

  async #post(
    path: string,
    body: unknown,
    auth = true,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>> {
    let lastErr: unknown;
    const n = this.#opts.endpoints.length;
    for (let attempt = 0; attempt < n; attempt++) {
      const base = this.#opts.endpoints[this.#current].replace(/\/+$/, "");
      try {
        if (auth && this.#opts.username && !this.#token && !this.#authOff) {
          await this.authenticate();
        }
        return await this.#send(base + path, body, auth, timeoutMs);
      } catch (e) {
        if (e instanceof EtcdError) {
          if (e.authFailed && auth && this.#opts.username && this.#token) {
            // Tokens expire (--auth-token-ttl); fetch a new one once and retry.
            this.#token = undefined;
            await this.authenticate();
            return await this.#send(base + path, body, auth, timeoutMs).catch((e2) => {
              throw this.#explain(e2);
            });
          }
          throw this.#explain(e);
        }
        if (e instanceof ConfigError) throw e;
        lastErr = e;
        this.#current = (this.#current + 1) % n;
      }
    }
    const at = this.#opts.endpoints.join(",");
    const why = fetchFailure(lastErr);
    // A certificate either side rejects stays rejected: say what to change (exit 2 at first
    // start, like bad credentials) instead of retrying "fetch failed" forever.
    if (/invalid peer certificate/i.test(why)) {
      throw new ConfigError(
        `cannot verify etcd's TLS certificate at ${at} (${tlsReason(why)}): give the CA that ` +
          "signed it with --etcd-ca",
      );
    }
    if (
      /fatal alert: (BadCertificate|CertificateRequired|UnknownCA|CertificateUnknown)/i.test(why)
    ) {
      throw new ConfigError(
        `etcd at ${at} rejected the TLS client certificate (${tlsReason(why)}): give ` +
          "--etcd-cert and --etcd-key signed by a CA etcd trusts (its --trusted-ca-file)",
      );
    }
    throw new EtcdUnavailableError(`etcd unreachable at ${at}: ${why}`);
  }

  async #send(
    url: string,
    body: unknown,
    auth: boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (auth && this.#token) headers.authorization = this.#token;
    const res = await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      client: this.#http,
      signal: AbortSignal.timeout(timeoutMs ?? this.#opts.timeoutMs ?? 30_000),
    });
    const text = await res.text();
    let json: Record<string, unknown>;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new EtcdError(
        `etcd answered ${res.status} with non-JSON: ${text.slice(0, 200)}`,
        2,
        res.status,
      );
    }
    if (!res.ok || (json.error !== undefined && json.code !== undefined)) {
      const msg = String(json.message ?? json.error ?? `HTTP ${res.status}`);
      throw new EtcdError(msg, num(json.code as string | undefined), res.status);
    }
    return json;
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
    const base = this.#opts.endpoints[this.#current].replace(/\/+$/, "");
    let r: Record<string, unknown>;
    try {
      r = await this.#send(`${base}/v3/auth/authenticate`, {
        name: this.#opts.username,
        password: this.#opts.password ?? "",
      }, false);
    } catch (e) {
      if (e instanceof EtcdError && /auth.*not enabled/i.test(e.message)) {
        // A user name for an etcd without auth: it works without a token.
        this.#authOff = true;
        return;
      }
      throw this.#explain(e);
    }
    this.#token = String(r.token);
  }

  async range(key: string, o: RangeOptions = {}): Promise<RangeResult> {
    const body: Record<string, unknown> = { key: b64(key) };
    if (o.rangeEnd !== undefined) body.range_end = b64(o.rangeEnd);
    if (o.limit) body.limit = o.limit;
    if (o.keysOnly) body.keys_only = true;
    if (o.countOnly) body.count_only = true;
    if (o.maxModRevision) body.max_mod_revision = o.maxModRevision;
    if (o.minModRevision) body.min_mod_revision = o.minModRevision;
    if (o.revision) body.revision = o.revision;
    if (o.serializable) body.serializable = true;
    const r = await this.#post("/v3/kv/range", body);
    const header = r.header as { revision?: string } | undefined;
    return {
      kvs: ((r.kvs as RawKv[] | undefined) ?? []).map(kvFrom),
      more: Boolean(r.more),
      count: num(r.count as string | undefined),
      revision: num(header?.revision),
    };
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

  async put(key: string, value: string | Uint8Array): Promise<number> {
    const r = await this.#post("/v3/kv/put", { key: b64(key), value: b64(value) });
    return num((r.header as { revision?: string })?.revision);
  }

  async deleteRange(key: string, rangeEnd?: string): Promise<number> {
    const body: Record<string, unknown> = { key: b64(key) };
    if (rangeEnd !== undefined) body.range_end = b64(rangeEnd);
    const r = await this.#post("/v3/kv/deleterange", body);
    return num(r.deleted as string | undefined);
  }

  async txn(t: TxnRequest): Promise<TxnResult> {
    const body = {
      compare: (t.compare ?? []).map((c) => ({
        key: b64(c.key),
        target: c.target,
        result: c.result,
        ...(c.version !== undefined ? { version: c.version } : {}),
        ...(c.createRevision !== undefined ? { create_revision: c.createRevision } : {}),
        ...(c.modRevision !== undefined ? { mod_revision: c.modRevision } : {}),
        ...(c.value !== undefined ? { value: b64(c.value) } : {}),
      })),
      success: t.success.map(opJson),
      failure: (t.failure ?? []).map(opJson),
    };
    const r = await this.#post("/v3/kv/txn", body);
    const responses = (r.responses as Record<string, { kvs?: RawKv[] }>[] | undefined) ?? [];
    return {
      succeeded: Boolean(r.succeeded),
      revision: num((r.header as { revision?: string })?.revision),
      ranges: responses.map((x) =>
        x.response_range ? (x.response_range.kvs ?? []).map(kvFrom) : undefined
      ),
    };
  }

  /** The store's current revision. */
  async revision(): Promise<number> {
    return (await this.range("\0", { countOnly: true })).revision;
  }

  /** Call a gateway path not wrapped above (leases, elections, auth admin). */
  call(path: string, body: unknown, timeoutMs?: number): Promise<Record<string, unknown>> {
    return this.#post(path, body, true, timeoutMs);
  }
}
