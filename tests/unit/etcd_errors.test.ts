/**
 * etcd's answers mapped to the retry reasons of `sync_etcd_retries_total{reason}`
 * (src/etcd/errors.ts `retryReason`). The messages and gRPC status codes are etcd's own
 * (api/v3rpc/rpctypes/error.go: `ErrGRPCNoLeader = status.New(codes.Unavailable,
 * "etcdserver: no leader")`, ...), as they reach sync over gRPC (grpc-status and
 * grpc-message) and over the JSON gateway (the same code and message in a JSON body, with the
 * HTTP status grpc-gateway gives the code). No servers needed.
 */

import { assert, assertEquals } from "../../testing/assert.ts";
import { EtcdError, type EtcdRetryReason } from "../../src/etcd/errors.ts";
import { Status } from "../../src/service/status.ts";
import { renderMetrics } from "../../src/service/metrics.ts";

/** gRPC status codes etcd uses (google.golang.org/grpc/codes). */
const code = {
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  OutOfRange: 11,
  Unavailable: 14,
  DataLoss: 15,
} as const;

/** grpc-gateway's HTTP status for a gRPC code (runtime.HTTPStatusFromCode). */
const httpStatus: Record<number, number> = {
  3: 400,
  4: 504,
  7: 403,
  8: 429,
  9: 400,
  11: 400,
  14: 503,
  15: 500,
};

/** etcd's answer, its gRPC code, and the reason sync retries it for (undefined: no retry). */
const ANSWERS: [string, number, EtcdRetryReason | undefined][] = [
  // The four the issue names: passing answers, retried with backoff.
  ["etcdserver: too many requests", code.ResourceExhausted, "too_many_requests"],
  ["etcdserver: leader changed", code.Unavailable, "leader_changed"],
  ["etcdserver: no leader", code.Unavailable, "no_leader"],
  ["etcdserver: request timed out", code.Unavailable, "timed_out"],
  [
    "etcdserver: request timed out, possibly due to previous leader failure",
    code.Unavailable,
    "timed_out",
  ],
  [
    "etcdserver: request timed out, possibly due to connection lost",
    code.Unavailable,
    "timed_out",
  ],
  // grpc-go's own answer when the request's grpc-timeout ran out inside etcd.
  ["context deadline exceeded", code.DeadlineExceeded, "timed_out"],
  // Other passing answers: a learner, a member stopping or not yet caught up.
  ["etcdserver: rpc not supported for learner", code.Unavailable, "learner"],
  ["etcdserver: server stopped", code.Unavailable, "unavailable"],
  ["etcdserver: unhealthy cluster", code.Unavailable, "unavailable"],
  ["etcdserver: not capable", code.Unavailable, "unavailable"],
  // Answers no retry fixes: they go to the service (which says what to change).
  ["etcdserver: mvcc: database space exceeded", code.ResourceExhausted, undefined],
  ["etcdserver: request is too large", code.InvalidArgument, undefined],
  ["etcdserver: not leader", code.FailedPrecondition, undefined],
  ["etcdserver: permission denied", code.PermissionDenied, undefined],
  ["etcdserver: mvcc: required revision has been compacted", code.OutOfRange, undefined],
  ["etcdserver: corrupt cluster", code.DataLoss, undefined],
];

Deno.test("etcd's answers over gRPC map to the retry metric's reasons", () => {
  for (const [message, grpc, reason] of ANSWERS) {
    assertEquals(new EtcdError(message, grpc, 200).retryReason, reason, message);
  }
});

Deno.test("etcd's answers over the JSON gateway map to the same reasons", () => {
  for (const [message, grpc, reason] of ANSWERS) {
    const e = new EtcdError(message, grpc, httpStatus[grpc]);
    assertEquals(e.retryReason, reason, `${message} (HTTP ${httpStatus[grpc]})`);
  }
});

Deno.test("every retry reason is a series of sync_etcd_retries_total, counted", () => {
  const status = new Status();
  const reasons = new Set(ANSWERS.map((a) => a[2]).filter((r) => r !== undefined));
  reasons.add("connection"); // no answer at all: refused, reset, no ping answer
  for (const r of reasons) status.count(status.etcdRetries, r);
  status.count(status.etcdRetries, "no_leader");
  const text = renderMetrics(status);
  for (const r of reasons) {
    const n = r === "no_leader" ? 2 : 1;
    assert(
      text.includes(`sync_etcd_retries_total{reason="${r}"} ${n}\n`),
      `no series for ${r} counted ${n}:\n${text}`,
    );
  }
});
