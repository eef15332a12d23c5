/**
 * `slot-failover` off on PostgreSQL 17 (issue 15, docs/topologies.md): sync makes its slot
 * without FAILOVER, and after a promotion it trusts a slot of its name that another tool kept
 * on the standby (as a Patroni permanent slot is: made there, `synced = false`) as it does
 * before 17: it resumes from etcd's position, no dump, and etcd equals the promoted server.
 * With the default (tests/pg_failover_slots.test.ts) such a slot is not trusted: a dump.
 */
import { test } from "../testing/deadline.ts";
import { startEtcd } from "../testing/etcd.ts";
import { embeddedPgBin } from "../testing/embedded_pg.ts";
import { standbyOwnSlot, standbySlot, startPair } from "../testing/pg_standby.ts";
import { launchSync, runSync, streaming } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { waitFor } from "../testing/process.ts";
import { step } from "../testing/steps.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";

const opts = { sanitizeOps: false, sanitizeResources: false, deadlineMs: 6 * 60_000 };
const PREFIX = "/o";

test(
  "pgx 17, slot-failover off: a slot the standby kept itself is trusted, no dump",
  opts,
  async () => {
    const etcd = await startEtcd();
    // A standby set up as before 17: no slot synchronization, nothing held back for it.
    const pair = await startPair({
      serverBin: await embeddedPgBin(17),
      standbySlots: false,
      syncSlots: false,
    }).catch(async (e) => {
      await etcd.close();
      throw e;
    });
    const p = pair.primary.sql, s = pair.standby.sql;
    const args = [
      "--driver=pgx",
      `--db-url=${pair.syncUrl}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      `--etcd-prefix=${PREFIX}`,
      "--slot-failover=false",
    ];
    try {
      await p`CREATE TABLE t (id int PRIMARY KEY, v text, n int)`;
      await p`INSERT INTO t SELECT g, 'v' || g, 0 FROM generate_series(1, 300) g`;
      // The slot another tool keeps on the standby, made there before sync's own (so at a
      // position not past any etcd will hold), as a Patroni permanent slot would be.
      await standbyOwnSlot(p, s);
      const check = await runSync(["check", ...args]);
      assertMatch(
        check.stdout,
        /failover slot.*off \(--slot-failover=false\)/,
        `${check.stdout}\n${check.stderr}`,
      );

      const sync = launchSync(args);
      let frozen = false;
      try {
        await streaming(sync, 90_000);
        await assertConverges(etcd.endpoint, `${PREFIX}/`, () => expectedFromPg(p, PREFIX), 90_000)
          .catch((e) => Promise.reject(new Error(`${e.message}\n${sync.output()}`)));
        const [slot] = await p`SELECT failover FROM pg_replication_slots WHERE slot_name = 'sync'`;
        assertEquals(slot?.failover, false, "sync's slot on the primary is a failover slot");
        const kept = await standbySlot(s);
        assertEquals(kept?.synced, false, `the standby's slot: ${JSON.stringify(kept)}`);

        // Changes etcd then holds, on the standby too before the primary dies.
        await p`UPDATE t SET v = 'before', n = n + 1 WHERE id <= 20`;
        await p`INSERT INTO t SELECT g, 'before', 0 FROM generate_series(1000, 1020) g`;
        await assertConverges(etcd.endpoint, `${PREFIX}/`, () => expectedFromPg(p, PREFIX), 60_000)
          .catch((e) => Promise.reject(new Error(`${e.message}\n${sync.output()}`)));
        // Frozen, sync saves no later position (an idle heartbeat's) the standby may miss.
        sync.kill("SIGSTOP");
        frozen = true;
        const [{ lsn }] = await p`SELECT pg_current_wal_lsn()::text AS lsn`;
        await waitFor("the standby to replay the primary's WAL", async () => {
          const [r] = await s`SELECT pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn AS ok`;
          return r.ok === true;
        }, 30_000);
        const [{ confirmed }] = await s`SELECT confirmed_flush_lsn::text AS confirmed
          FROM pg_replication_slots WHERE slot_name = 'sync'`;
        const where = `the standby's own slot confirmed ${confirmed}, the primary at ${lsn}`;
        step(where);

        await pair.primary.stop(true);
        await pair.standby.promote();
        sync.kill("SIGCONT");
        frozen = false;
        await s`UPDATE t SET v = 'after', n = n + 1 WHERE id > 280`;
        await s`DELETE FROM t WHERE id BETWEEN 1000 AND 1005`;
        await s`INSERT INTO t SELECT g, 'after', 0 FROM generate_series(2000, 2020) g`;
        await waitFor(
          "sync to come back on the promoted server",
          () => /msg=resuming|dump starting/.test(afterDump(sync.output())),
          60_000,
          () => sync.output(),
        );
        await assertConverges(etcd.endpoint, `${PREFIX}/`, () => expectedFromPg(s, PREFIX), 120_000)
          .catch((e) => Promise.reject(new Error(`${e.message}\n${sync.output()}`)));
        const out = sync.output();
        const dumps = out.match(/dump starting/g)?.length ?? 0;
        assertEquals(dumps, 1, `dumped again after the promotion:\n${afterDump(out)}`);
        const resumed = /^.*msg=resuming.*$/m.exec(afterDump(out));
        assert(resumed, `no resume after the promotion:\n${afterDump(out)}`);
        console.log(`${where}; after the promotion: ${resumed[0]}`);
        // The promoted server's slot is the one sync resumed from and confirms on.
        await waitFor("sync to confirm on the promoted server's slot", async () => {
          const [r] = await s`SELECT confirmed_flush_lsn > ${lsn}::pg_lsn AS ok
            FROM pg_replication_slots WHERE slot_name = 'sync'`;
          return r?.ok === true;
        }, 30_000);
      } finally {
        if (frozen) sync.kill("SIGCONT");
        await sync.stop();
      }
    } finally {
      await pair.close();
      await etcd.close();
    }
  },
);

/** sync's log after its first "dump done": how it came back after the failover. */
function afterDump(out: string): string {
  const i = out.indexOf('msg="dump done"');
  assert(i >= 0, out);
  return out.slice(i + 1);
}
