import { startPostgres } from "../../tests/harness/postgres.ts";
import { startEtcd } from "../../tests/harness/etcd.ts";
import { insertRows } from "./pg_decode.ts";
import { benchDump } from "./sync_e2e.ts";
const pg = await startPostgres();
const etcd = await startEtcd({ quotaBytes: 8 * 2 ** 30 });
try {
  const n = Number(Deno.args[0] ?? 1000000);
  await pg.sql`CREATE TABLE bench_t (id int PRIMARY KEY, name text, payload text)`;
  await insertRows(pg, "bench_t", 1, n);
  console.log(new Date(), "inserted");
  console.log(await benchDump(pg, etcd, "bench_t", n));
} catch (e) {
  console.log(e);
  console.log("ETCD OUTPUT:\n" + etcd.proc.output());
} finally {
  await pg.close();
  await etcd.close();
}
