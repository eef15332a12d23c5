/** The values etcd's KV API deals in, and what a transport to etcd provides. */

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

/** A won election (etcd's v3election LeaderKey): `key` is the leader's key under `name`. */
export interface LeaderKey {
  name: string;
  key: string;
  rev: number;
  /** Lease ID, decimal int64. */
  lease: string;
}

/** Per-call settings a transport gets from the client. */
export interface CallOptions {
  /** Auth token (etcd's `Authenticate`), when auth is on. */
  token?: string;
  timeoutMs: number;
}

/**
 * One way of talking to one etcd endpoint. Errors etcd answered with are `EtcdError`s;
 * anything else thrown is a connection failure (the client tries the next endpoint).
 */
export interface EtcdTransport {
  range(key: string, o: RangeOptions, c: CallOptions): Promise<RangeResult>;
  /** Returns the revision of the put. */
  put(key: string, value: string | Uint8Array, c: CallOptions): Promise<number>;
  /** Returns how many keys were deleted. */
  deleteRange(key: string, rangeEnd: string | undefined, c: CallOptions): Promise<number>;
  txn(t: TxnRequest, c: CallOptions): Promise<TxnResult>;
  /** Returns the token. */
  authenticate(name: string, password: string, c: CallOptions): Promise<string>;
  /** Returns the new lease's ID (decimal int64). */
  leaseGrant(ttlSeconds: number, c: CallOptions): Promise<string>;
  /** Returns the lease's TTL after the keep-alive: 0 when it had expired. */
  leaseKeepAlive(id: string, c: CallOptions): Promise<number>;
  leaseRevoke(id: string, c: CallOptions): Promise<void>;
  /** Blocks until this campaigner leads the election `name`. */
  campaign(name: string, lease: string, value: string, c: CallOptions): Promise<LeaderKey>;
  resign(leader: LeaderKey, c: CallOptions): Promise<void>;
  close(): void;
}
