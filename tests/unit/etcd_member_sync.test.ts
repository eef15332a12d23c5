/**
 * How often the etcd client reads the member list (src/etcd/client.ts): before its first
 * request, then once a minute by default (as etcd's Go client's auto-sync), never with
 * `memberSyncMs: 0`. A fake JSON gateway in this process answers, and the clock is a stub:
 * no server, no minute waited.
 */
import { assertEquals } from "../../testing/assert.ts";
import { EtcdClient } from "../../src/etcd/client.ts";

/** A gateway answering MemberList (one member: itself) and Put, counting the lists. */
function fakeGateway() {
  let lists = 0;
  let puts = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req): Response => {
      const path = new URL(req.url).pathname;
      if (path === "/v3/cluster/member/list") {
        lists++;
        return Response.json({ members: [{ ID: "1", name: "m1", clientURLs: [endpoint] }] });
      }
      if (path === "/v3/kv/put") {
        puts++;
        return Response.json({ header: { revision: String(puts + 1) } });
      }
      return Response.json({ error: "unexpected", code: 12, message: path }, { status: 501 });
    },
  );
  const endpoint: string = `http://127.0.0.1:${server.addr.port}`;
  return { endpoint, lists: () => lists, close: () => server.shutdown() };
}

/** Run `body` with `Date.now` reading `clock.now`. */
async function withClock(body: (clock: { now: number }) => Promise<void>): Promise<void> {
  const real = Date.now;
  const clock = { now: real() };
  Date.now = () => clock.now;
  try {
    await body(clock);
  } finally {
    Date.now = real;
  }
}

Deno.test("etcd member list: read at the first request, then every 60 s by default", async () => {
  const gw = fakeGateway();
  const client = new EtcdClient({ endpoints: [gw.endpoint], transport: "gateway" });
  try {
    await withClock(async (clock) => {
      await client.put("k", "v");
      assertEquals(gw.lists(), 1);
      clock.now += 59_999;
      await client.put("k", "v");
      assertEquals(gw.lists(), 1, "read again before a minute had passed");
      clock.now += 1;
      await client.put("k", "v");
      assertEquals(gw.lists(), 2, "not read again once a minute had passed");
      clock.now += 30_000;
      await client.put("k", "v");
      assertEquals(gw.lists(), 2);
      clock.now += 30_000;
      await client.put("k", "v");
      assertEquals(gw.lists(), 3);
    });
  } finally {
    client.close();
    await gw.close();
  }
});

Deno.test("etcd member list: memberSyncMs sets the interval, 0 never reads it", async () => {
  const gw = fakeGateway();
  const every = new EtcdClient({
    endpoints: [gw.endpoint],
    transport: "gateway",
    memberSyncMs: 500,
  });
  const never = new EtcdClient({ endpoints: [gw.endpoint], transport: "gateway", memberSyncMs: 0 });
  try {
    await withClock(async (clock) => {
      await every.put("k", "v");
      clock.now += 499;
      await every.put("k", "v");
      assertEquals(gw.lists(), 1);
      clock.now += 1;
      await every.put("k", "v");
      assertEquals(gw.lists(), 2);
      for (let i = 0; i < 3; i++) {
        await never.put("k", "v");
        clock.now += 3_600_000;
      }
      await never.put("k", "v");
      assertEquals(gw.lists(), 2, "memberSyncMs: 0 read the member list");
    });
  } finally {
    every.close();
    never.close();
    await gw.close();
  }
});
