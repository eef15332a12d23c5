/**
 * The gRPC transport's hand-written HTTP/2 client against a real etcd, where node:http2 did
 * the work before: flow control both ways (a request above etcd's 64 KiB send window, answers
 * beyond our receive windows), many requests at once on one connection, a connection lost
 * under a waiting request and a new one after it, and an idle connection that lets the
 * process exit. etcd's contents are read back with the etcd3 package (testing/checker.ts).
 */
import { test } from "../testing/deadline.ts";
import { step } from "../testing/steps.ts";
import { assert, assertEquals, assertRejects } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { readEtcd } from "../testing/checker.ts";
import { run } from "../testing/process.ts";
import { GrpcConnectionError, GrpcTransport } from "../src/etcd/grpc.ts";
import { H2Session } from "../src/etcd/h2_session.ts";
import { makeCerts, makeClientCert } from "../testing/tls.ts";

const CALL = { timeoutMs: 30_000 };
const dec = new TextDecoder();

/** A value of `size` octets that differs per key and per position (so a shifted or mixed-up
 * chunk shows). */
function value(key: string, size: number): string {
  const unit = `${key}:0123456789abcdefghijklmnopqrstuvwxyz|`;
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

test("etcd gRPC over the hand-written HTTP/2 client", async () => {
  const etcd = await startEtcd();
  const t = new GrpcTransport(etcd.endpoint, {});
  try {
    step("a transaction of 1.2 MB: beyond etcd's initial send window of 64 KiB");
    const big = Array.from({ length: 12 }, (_, i) => `/h2/txn/${i}`);
    const r = await t.txn({
      success: big.map((k) => ({ put: { key: k, value: value(k, 100_000) } })),
    }, CALL);
    assert(r.succeeded);
    assertEquals(
      await readEtcd(etcd.endpoint, "/h2/txn/"),
      new Map(big.map((k) => [k, value(k, 100_000)])),
    );

    step("answers of 18 MB, four times: beyond our stream and connection windows");
    const huge = Array.from({ length: 18 }, (_, i) => `/h2/huge/${String(i).padStart(2, "0")}`);
    for (const k of huge) await t.put(k, value(k, 1_000_000), CALL);
    for (let round = 0; round < 4; round++) {
      const got = await t.range("/h2/huge/", { rangeEnd: "/h2/huge0" }, CALL);
      assertEquals(got.kvs.map((kv) => kv.key), huge);
      for (const kv of got.kvs) assert(dec.decode(kv.value) === value(kv.key, 1_000_000), kv.key);
    }

    step("500 requests at once on one connection");
    const many = Array.from({ length: 500 }, (_, i) => `/h2/many/${i}`);
    await Promise.all(many.map((k) => t.put(k, k.repeat(3), CALL)));
    assertEquals(
      await readEtcd(etcd.endpoint, "/h2/many/"),
      new Map(many.map((k) => [k, k.repeat(3)])),
    );

    step("etcd killed under a waiting request: it fails at once as a lost connection");
    const holder = await t.leaseGrant(60, CALL);
    const waiter = await t.leaseGrant(60, CALL);
    await t.campaign("/h2/election", holder, "first", CALL);
    const waiting = t.campaign("/h2/election", waiter, "second", { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 300));
    const killedAt = Date.now();
    const failed = assertRejects(() => waiting, GrpcConnectionError);
    await etcd.stop(true);
    const e = await failed;
    assert(Date.now() - killedAt < 5_000, `failed after ${Date.now() - killedAt} ms: ${e.message}`);
    await assertRejects(() => t.put("/h2/after", "x", CALL), GrpcConnectionError);

    step("etcd back: the same transport opens a new connection");
    await etcd.restart();
    await t.put("/h2/after", "back", CALL);
    assertEquals(await readEtcd(etcd.endpoint, "/h2/after"), new Map([["/h2/after", "back"]]));

    step("an idle connection left open does not keep a process alive");
    const script = `
      import { GrpcTransport } from ${
      JSON.stringify(new URL("../src/etcd/grpc.ts", import.meta.url).href)
    };
      const t = new GrpcTransport(${JSON.stringify(etcd.endpoint)}, {});
      await t.put("/h2/idle", "left open", { timeoutMs: 10000 });
      console.log("put done");`;
    const out = await run(Deno.execPath(), { args: ["eval", script], timeoutMs: 20_000 });
    assert(out.includes("put done"), out);
  } finally {
    t.close();
    await etcd.close();
  }
});

test("etcd's MAX_CONCURRENT_STREAMS: requests beyond it wait for a stream", async () => {
  const etcd = await startEtcd({ args: ["--max-concurrent-streams=2"] });
  const t = new GrpcTransport(etcd.endpoint, {});
  try {
    // The first requests go before etcd's SETTINGS arrive: etcd refuses those beyond 2.
    await t.put("/h2/first", "1", CALL);
    const keys = Array.from({ length: 100 }, (_, i) => `/h2/limited/${i}`);
    await Promise.all(keys.map((k) => t.put(k, k, CALL)));
    assertEquals(await readEtcd(etcd.endpoint, "/h2/limited/"), new Map(keys.map((k) => [k, k])));
  } finally {
    t.close();
    await etcd.close();
  }
});

test("etcd's GOAWAY (pings with no request open) ends the session with its reason", async () => {
  const etcd = await startEtcd();
  const { hostname, port } = new URL(etcd.endpoint);
  let gone: Error | undefined;
  const s = new H2Session({ hostname, port: Number(port) }, { gone: (e) => (gone ??= e) });
  try {
    // etcd's gRPC server (--grpc-keepalive-min-time 5 s) allows 2 such pings, then says GOAWAY.
    const deadline = Date.now() + 10_000;
    while (s.usable) {
      assert(Date.now() < deadline, "no GOAWAY from etcd within 10 s of pings");
      await new Promise<void>((answered) => {
        if (!s.ping(() => answered())) answered();
      });
    }
    assert(/GOAWAY, error code 11: too_many_pings/.test(gone?.message ?? ""), gone?.message);
  } finally {
    s.destroy();
    await etcd.close();
  }
});

test("TLS: a request of several TLS records is not held by Nagle's algorithm", async () => {
  const certs = await makeCerts();
  const client = await makeClientCert(certs);
  const etcd = await startEtcd({
    tls: {
      caFile: certs.caFile,
      certFile: `${certs.dir}/server.pem`,
      keyFile: `${certs.dir}/server.key`,
      client,
    },
  });
  const t = new GrpcTransport(etcd.endpoint, { ca: certs.ca, cert: client.cert, key: client.key });
  try {
    await t.put("/h2/tls/warm", "x", CALL);
    // 20 KB: two TLS records. With Nagle on, the second waits for etcd's delayed ACK (40 ms
    // on loopback) every time; without, a put takes a few ms.
    const started = performance.now();
    for (let i = 0; i < 20; i++) await t.put(`/h2/tls/${i}`, value(`/h2/tls/${i}`, 20_000), CALL);
    const each = (performance.now() - started) / 20;
    assert(each < 25, `a 20 KB put over TLS took ${each.toFixed(1)} ms on average`);
  } finally {
    t.close();
    await etcd.close();
  }
});
