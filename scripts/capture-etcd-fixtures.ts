/**
 * Capture real etcd gRPC answers for tests/unit/etcd_proto.test.ts: a throwaway etcd, requests
 * encoded with protobufjs from etcd's own rpc.proto (not with sync's encoder, so the fixtures
 * are independent of the codec under test), raw node:http2, each answer's message bytes saved
 * as hex with its grpc-status and grpc-message.
 *
 *   deno run --allow-all scripts/capture-etcd-fixtures.ts
 */

import http2 from "node:http2";
import { createRequire } from "node:module";
import protobuf from "protobufjs";
import { startEtcd } from "../testing/etcd.ts";
import { enableEtcdAuth } from "../testing/etcd_auth.ts";

const require = createRequire(import.meta.url);
const protoFile = new URL("../proto/rpc.proto", `file://${require.resolve("etcd3")}`).pathname;
// keepCase: the field names as etcd spells them (range_end, count_only).
const root = new protobuf.Root().loadSync(protoFile, { keepCase: true });
const enc = new TextEncoder();

interface Fixture {
  name: string;
  method: string;
  /** The protobufjs type of the answer. */
  type: string;
  status: string;
  message: string;
  hex: string;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** One unary call; resolves with the unframed answer and the gRPC status. */
function call(
  session: http2.ClientHttp2Session,
  method: string,
  reqType: string,
  body: Record<string, unknown>,
  token?: string,
): Promise<{ status: string; message: string; bytes: Uint8Array }> {
  const T = root.lookupType(reqType);
  const msg = T.encode(T.fromObject(body)).finish();
  const framed = new Uint8Array(5 + msg.length);
  new DataView(framed.buffer).setUint32(1, msg.length);
  framed.set(msg, 5);
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": `/${method}`,
      "content-type": "application/grpc",
      te: "trailers",
      ...(token ? { token } : {}),
    });
    const chunks: Uint8Array[] = [];
    let status: string | undefined;
    let message = "";
    const onStatus = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] === undefined) return;
      status = String(h["grpc-status"]);
      message = decodeURIComponent(String(h["grpc-message"] ?? ""));
    };
    req.on("response", onStatus);
    req.on("trailers", onStatus);
    req.on("data", (d: Uint8Array) => chunks.push(new Uint8Array(d)));
    req.on("error", reject);
    req.on("close", () => {
      if (status === undefined) return reject(new Error(`${method}: no grpc-status`));
      const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.length;
      }
      if (all.length === 0) return resolve({ status, message, bytes: all });
      if (all[0] !== 0) return reject(new Error(`${method}: compressed answer`));
      const len = new DataView(all.buffer).getUint32(1);
      resolve({ status, message, bytes: all.subarray(5, 5 + len) });
    });
    req.end(framed);
  });
}

const b = (s: string) => enc.encode(s);
const fixtures: Fixture[] = [];
const etcd = await startEtcd({ maxRequestBytes: 4096 });
const session = http2.connect(etcd.endpoint);
try {
  const capture = async (
    name: string,
    service: string,
    rpc: string,
    body: Record<string, unknown>,
    token?: string,
  ) => {
    const r = await call(
      session,
      `etcdserverpb.${service}/${rpc}`,
      `etcdserverpb.${rpc}Request`,
      body,
      token,
    );
    const fx: Fixture = {
      name,
      method: `etcdserverpb.${service}/${rpc}`,
      type: `etcdserverpb.${rpc}Response`,
      status: r.status,
      message: r.message,
      hex: hex(r.bytes),
    };
    fixtures.push(fx);
    console.log(`${name}: status ${fx.status} ${fx.message} ${r.bytes.length} bytes`);
    return r;
  };
  const put = async (key: string, value: string, lease?: string) => {
    const r = await call(session, "etcdserverpb.KV/Put", "etcdserverpb.PutRequest", {
      key: b(key),
      value: b(value),
      ...(lease ? { lease } : {}),
    });
    if (r.status !== "0") throw new Error(`put ${key}: ${r.message}`);
  };

  // A lease: etcd's IDs are random int64s, usually above 2^53.
  const grant = await capture("lease-grant", "Lease", "LeaseGrant", { TTL: 600 });
  const LG = root.lookupType("etcdserverpb.LeaseGrantResponse");
  const leaseId = String(LG.toObject(LG.decode(grant.bytes), { longs: String }).ID);
  console.log(`lease ${leaseId}`);
  await put("/p/a", '{"id":1}');
  await put("/p/b", "", undefined); // an empty value
  await put("/p/c", '{"lease":true}', leaseId);
  await put("/p/ü€😀", "wert ü€😀");
  await put("/p/d", "x".repeat(300)); // a value with a 2-byte length
  const prefix = { key: b("/p/"), range_end: b("/p0") };
  await capture("range-prefix", "KV", "Range", prefix);
  await capture("range-count-only", "KV", "Range", { ...prefix, count_only: true });
  await capture("range-limit-more", "KV", "Range", { ...prefix, limit: 2 });
  await capture("range-keys-only", "KV", "Range", { ...prefix, keys_only: true });
  await capture("range-empty", "KV", "Range", { key: b("/nothing") });
  await capture("put", "KV", "Put", { key: b("/q/1"), value: b("one") });
  await capture("put-prev-kv", "KV", "Put", { key: b("/q/1"), value: b("two"), prev_kv: true });
  await put("/q/2", "2");
  await capture("delete-range-2", "KV", "DeleteRange", { key: b("/q/"), range_end: b("/q0") });
  await capture("txn-success", "KV", "Txn", {
    compare: [{ key: b("/t/absent"), target: "VERSION", result: "EQUAL", version: 0 }],
    success: [
      { request_put: { key: b("/t/1"), value: b("v1"), lease: leaseId } },
      { request_delete_range: { key: b("/p/a") } },
      { request_range: { key: b("/p/"), range_end: b("/p0") } },
    ],
    failure: [],
  });
  await capture("txn-failure", "KV", "Txn", {
    compare: [{ key: b("/t/1"), target: "VERSION", result: "EQUAL", version: 0 }],
    success: [{ request_put: { key: b("/t/1"), value: b("never") } }],
    failure: [
      { request_range: { key: b("/t/1") } },
      { request_put: { key: b("/t/2"), value: b("v2") } },
    ],
  });
  await capture("txn-duplicate-key", "KV", "Txn", {
    success: [
      { request_put: { key: b("/d/1"), value: b("a") } },
      { request_put: { key: b("/d/1"), value: b("b") } },
    ],
  });
  await capture("put-too-large", "KV", "Put", { key: b("/big"), value: b("x".repeat(8192)) });

  await enableEtcdAuth(etcd.endpoint, "rootpw", []);
  await capture("auth-authenticate", "Auth", "Authenticate", { name: "root", password: "rootpw" });
  await capture("auth-wrong-password", "Auth", "Authenticate", { name: "root", password: "no" });
  await capture("range-no-token", "KV", "Range", { key: b("/p/a") });
} finally {
  session.destroy();
  await etcd.close();
}

const version = new TextDecoder().decode(
  (await new Deno.Command("etcd", { args: ["--version"], stdout: "piped" }).output()).stdout,
).split("\n")[0];
const out = new URL("../tests/fixtures/etcd/responses.json", import.meta.url);
await Deno.writeTextFile(out, JSON.stringify({ etcd: version, fixtures }, null, 2) + "\n");
console.log(`wrote ${fixtures.length} fixtures to ${out.pathname} (${version})`);
