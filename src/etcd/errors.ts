/** What goes wrong talking to etcd: an answer refusing the request, or no answer. */

/**
 * Why a request is tried again: an etcd answer that a moment or another member fixes, or no
 * answer at all (`connection`: refused, reset, no keepalive ping answer, request deadline).
 */
export type EtcdRetryReason =
  | "too_many_requests"
  | "leader_changed"
  | "no_leader"
  | "timed_out"
  | "learner"
  | "unavailable"
  | "connection";

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
  /**
   * The reason to try again when this answer is passing (etcd's rpctypes: a leader election,
   * an overloaded or cut-off member, a learner), undefined when no retry can help. A full
   * backend is also ResourceExhausted but stays full: not retried.
   */
  get retryReason(): EtcdRetryReason | undefined {
    const m = this.message;
    if (/too many requests/i.test(m)) return "too_many_requests";
    if (/leader changed/i.test(m)) return "leader_changed";
    if (/no leader/i.test(m)) return "no_leader";
    if (/not supported for learner/i.test(m)) return "learner";
    // Unavailable: "request timed out ...", "server stopped", "unhealthy cluster";
    // DeadlineExceeded: etcd's own side of the request deadline.
    if (/timed out|deadline exceeded/i.test(m) || this.grpcCode === 4) return "timed_out";
    if (this.grpcCode === 14 || this.httpStatus === 503) return "unavailable";
    return undefined;
  }
}

/** No endpoint could be reached. */
export class EtcdUnavailableError extends Error {
  override name = "EtcdUnavailableError";
}
