/** What goes wrong talking to etcd: an answer refusing the request, or no answer. */

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
