/**
 * The chunk readers' connection pool (src/core/conn_pool.ts), no servers: reads at once get
 * connections of their own, an idle one is reused, one a read failed on is closed, and
 * close() closes them all, the ones in use when they come back too.
 */
import { assert, assertEquals } from "../../testing/assert.ts";
import { ConnPool } from "../../src/core/conn_pool.ts";

class Fake {
  closed = false;
  constructor(readonly id: number) {}
  close(): void {
    this.closed = true;
  }
}

function pool(): { pool: ConnPool<Fake>; opened: Fake[] } {
  const opened: Fake[] = [];
  const p = new ConnPool(() => {
    const c = new Fake(opened.length + 1);
    opened.push(c);
    return Promise.resolve(c);
  });
  return { pool: p, opened };
}

/** A read that holds its connection until `release()`. */
function held(p: ConnPool<Fake>) {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let conn: Fake | undefined;
  const done = p.use(async (c) => {
    conn = c;
    await gate;
    return c.id;
  });
  return { done, release, conn: () => conn };
}

Deno.test("conn pool: reads at once get their own connections, idle ones are reused", async () => {
  const { pool: p, opened } = pool();
  const a = held(p), b = held(p), c = held(p);
  await new Promise((r) => setTimeout(r, 0));
  const ids = [a, b, c].map((h) => h.conn()?.id);
  assertEquals(new Set(ids).size, 3, `distinct: ${ids}`);
  a.release();
  b.release();
  c.release();
  await Promise.all([a.done, b.done, c.done]);
  assertEquals(p.size, 3);
  // Sequential reads after that take idle ones: nothing more is opened.
  for (let i = 0; i < 5; i++) await p.use((conn) => Promise.resolve(conn.id));
  assertEquals(opened.length, 3);
  p.close();
  assert(opened.every((c) => c.closed), "close() closes every connection");
});

Deno.test("conn pool: a connection a read failed on is closed, not reused", async () => {
  const { pool: p, opened } = pool();
  const err = await p.use(() => Promise.reject(new Error("boom"))).catch((e) => e);
  assertEquals((err as Error).message, "boom");
  assert(opened[0].closed, "the failed connection is closed");
  assertEquals(await p.use((c) => Promise.resolve(c.id)), 2);
  // One closed under it (the server went away) is not handed out again either.
  opened[1].close();
  assertEquals(await p.use((c) => Promise.resolve(c.id)), 3);
  assertEquals(p.size, 1);
});

Deno.test("conn pool: close() closes connections in use, and they are not pooled", async () => {
  const { pool: p, opened } = pool();
  const a = held(p);
  await new Promise((r) => setTimeout(r, 0));
  p.close();
  assert(opened[0].closed, "in use, closed by close()");
  a.release();
  assertEquals(await a.done, 1);
  assertEquals(p.size, 0);
  // A read after close() opens afresh (a new attempt).
  assertEquals(await p.use((c) => Promise.resolve(c.id)), 2);
});
