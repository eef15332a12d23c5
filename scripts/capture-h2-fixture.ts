/**
 * Capture the header blocks a real etcd sends, for tests/unit/etcd_h2.test.ts: node:http2
 * (nghttp2, independent of sync's HPACK decoder) talks gRPC to a throwaway etcd through a
 * TCP relay here that records the server's bytes; the HEADERS payloads are cut out of those
 * bytes and saved in order with the header fields nghttp2 decoded from them.
 *
 *   deno run --allow-all scripts/capture-h2-fixture.ts
 */

import http2 from "node:http2";
import { FRAME, framePayload, FrameReader } from "../src/etcd/h2_frames.ts";
import { startEtcd } from "../testing/etcd.ts";

const etcd = await startEtcd();
const upstream = new URL(etcd.endpoint);
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const fromServer: Uint8Array[] = [];

async function relay() {
  const client = await listener.accept();
  const server = await Deno.connect({ hostname: upstream.hostname, port: +upstream.port });
  const tap = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, c) {
      fromServer.push(chunk.slice());
      c.enqueue(chunk);
    },
  });
  client.readable.pipeTo(server.writable).catch(() => {});
  server.readable.pipeThrough(tap).pipeTo(client.writable).catch(() => {});
}
relay();

const session = http2.connect(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`);
/** Every header list nghttp2 decoded, in arrival order (":status" first as it arrived). */
const decoded: [string, string][][] = [];
const list = (h: http2.IncomingHttpHeaders) =>
  decoded.push(Object.entries(h).map(([k, v]) => [k, String(v)]));

function call(method: string, message: Uint8Array, metadata: Record<string, string> = {}) {
  return new Promise<void>((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": `/${method}`,
      "content-type": "application/grpc",
      te: "trailers",
      ...metadata,
    });
    req.on("response", list);
    req.on("trailers", list);
    req.on("data", () => {});
    req.on("error", reject);
    req.on("close", () => resolve());
    const body = new Uint8Array(5 + message.length);
    new DataView(body.buffer).setUint32(1, message.length);
    body.set(message, 5);
    req.end(body);
  });
}

// Range of "a" (field 1, key), twice: the second answer indexes the first's fields.
const range = new Uint8Array([0x0a, 0x01, 0x61]);
await call("etcdserverpb.KV/Range", range);
await call("etcdserverpb.KV/Range", range);
// A Put without a key: etcd refuses it (grpc-status 3, a Huffman-coded grpc-message).
await call("etcdserverpb.KV/Put", new Uint8Array());
await call("etcdserverpb.Maintenance/Status", new Uint8Array(), { hasleader: "true" });
session.close();
await new Promise((r) => setTimeout(r, 200));
listener.close();
await etcd.close();

const all = new FrameReader();
for (const c of fromServer) all.push(c);
const blocks: string[] = [];
for (let f = all.next(); f; f = all.next()) {
  if (f.type === FRAME.HEADERS) {
    blocks.push([...framePayload(f)].map((b) => b.toString(16).padStart(2, "0")).join(""));
  }
}
const out = new URL("../tests/fixtures/etcd/h2_headers.json", import.meta.url);
await Deno.writeTextFile(out, JSON.stringify({ blocks, decoded }, null, 2) + "\n");
console.log(`${blocks.length} header blocks, ${decoded.length} decoded lists`);
