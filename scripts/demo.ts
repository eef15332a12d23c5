/**
 * Run by scripts/demo. Uses the test harness to start real servers in a temp dir, so the
 * demo and the tests exercise the same code paths.
 */
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startSync } from "../testing/sync.ts";
import { EtcdClient } from "../src/etcd/client.ts";

const say = (s: string) => console.log(`\x1b[1m==> ${s}\x1b[0m`);
const cleanups: (() => Promise<void>)[] = [];
let stopping = false;
async function cleanup() {
  if (stopping) return;
  stopping = true;
  for (const c of cleanups.reverse()) await c().catch(() => {});
}
Deno.addSignalListener("SIGINT", async () => {
  console.log("\ninterrupted; stopping everything");
  await cleanup();
  Deno.exit(130);
});

async function waitUntil(what: string, f: () => Promise<boolean>, ms = 60_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

try {
  say("starting etcd and PostgreSQL (wal_level=logical) on free loopback ports");
  const etcd = await startEtcd();
  cleanups.push(() => etcd.close());
  const pg = await startPostgres();
  cleanups.push(() => pg.close());
  console.log(`    etcd ${etcd.endpoint}   postgres 127.0.0.1:${pg.port}`);

  say("creating a sample schema");
  await pg.sql.unsafe(`
    CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text,
                            created timestamptz NOT NULL DEFAULT '2024-05-01 12:00:00+00');
    CREATE TABLE orders (customer int, n int, total numeric(12,2), items jsonb, tags text[],
                         PRIMARY KEY (customer, n));
    INSERT INTO customers (name, email) VALUES ('Ada', 'ada@example.com'), ('Linus', NULL);
    INSERT INTO orders VALUES (1, 1, 19.90, '{"sku": "A-1", "qty": 2}', '{gift,express}'),
                              (2, 1, 5.00, '[]', '{}');
  `);

  say("running sync --driver pgx");
  const client = new EtcdClient({ endpoints: [etcd.endpoint] });
  cleanups.push(() => Promise.resolve(client.close()));
  const sync = startSync([
    "--driver=pgx",
    `--db-url=${pg.url}`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/demo",
  ]);
  cleanups.push(() => sync.stop());
  await waitUntil(
    "the dump",
    async () => (await client.get("/demo-state/pgx-postgres")) !== undefined,
  );

  say("changing rows: insert, update, delete, and a key change");
  await pg.sql.unsafe(`
    INSERT INTO customers (name, email) VALUES ('Grace', 'grace@example.com');
    UPDATE customers SET email = 'linus@example.org' WHERE id = 2;
    DELETE FROM orders WHERE customer = 2;
    UPDATE orders SET n = 2, total = 21.50 WHERE customer = 1 AND n = 1;
  `);
  await waitUntil(
    "the changes to reach etcd",
    async () =>
      (await client.get("/demo/orders/1/2")) !== undefined &&
      (await client.get("/demo/customers/3")) !== undefined,
  );

  say("etcd now holds (prefix /demo):");
  for await (const kv of client.scan("/demo/")) {
    console.log(`${kv.key}\n    ${new TextDecoder().decode(kv.value)}`);
  }
  say("sync's log:");
  console.log(sync.output().split("\n").map((l) => "    " + l).join("\n"));
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
  await cleanup();
  Deno.exit(1);
}
await cleanup();
say("stopped everything the demo started");
