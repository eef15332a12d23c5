/**
 * Bad input during online snapshots (issue 14, "Bad input"), MySQL (MariaDB) side of the
 * two cases `tests/snapshot_bad_input.test.ts` runs for pgx only. A table is caught in the
 * middle of its snapshot (20,000 rows read 50 at a time; the state key shows it running
 * with rows read and not done), and then:
 * - sync is killed, and the key columns change while it is stopped: the next start sees
 *   the recorded definition differ, the snapshot starts over under the new key (rather
 *   than replay up to the old cursor), the old layout's keys are swept, and etcd ends equal
 *   to the database by the independent checker;
 * - a row it reads is larger than etcd accepts: `--oversize fail` stops sync (exit 1) with
 *   one line naming table and key, the cursor before that chunk, and a restart stops at the
 *   same row; `--oversize skip` logs, counts (`sync_oversize_rows_skipped_total`) and goes
 *   on, and the rest converges.
 */
import { step, test } from "../testing/deadline.ts";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { readEtcd } from "../testing/checker.ts";
import {
  converges as convergesTables,
  ERROR_LINE,
  exitStatus,
  midSnapshot,
  mysqlSource,
  oversizeStopsThenSkips,
  progress,
  ROWS,
  snapshotDone,
  type Source,
  startSync,
  withOutput,
} from "../testing/snapshot_sources.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** etcd and MariaDB, database `app` created by `schema`; run `body`, then stop both. */
async function withSource(schema: string, body: (src: Source) => Promise<void>): Promise<void> {
  const src = await mysqlSource(schema);
  try {
    await body(src);
  } finally {
    await src.close();
  }
}

/** etcd equal to every table of `app` (keys of `skip` left out). */
function converges(src: Source, skip: string[] = []): Promise<void> {
  return convergesTables(src, ["moving", "big", "steady"], skip);
}

// ---------------------------------------------------------------------------------------
// 1. The key columns change while sync is stopped in the middle of the snapshot.

test("mysql: the key columns change while sync is stopped mid-snapshot", opts, async () => {
  // Keys of the new layout overlap the old ones (other = id + 10): a row read again only to
  // be known at the sweep (rows up to the saved cursor) must not keep an old row's value.
  await withSource(
    `CREATE TABLE moving (id INT PRIMARY KEY, other INT NOT NULL UNIQUE, v TEXT);
    INSERT INTO moving SELECT seq, seq + 10, CONCAT('m', seq) FROM seq_1_to_${ROWS};`,
    async (src) => {
      let sync = startSync(src);
      try {
        await converges(src).catch(withOutput(sync));
        await midSnapshot(src, sync, "moving");
        sync.kill("SIGKILL");
        await exitStatus(sync, 30_000);
        const saved = (await progress(src)).moving;
        assertEquals(saved?.state, "running", "killed mid-snapshot");
        assert(saved.after, "killed with a cursor");

        step("the key changes while sync is stopped, then sync starts again");
        await src.exec("ALTER TABLE moving DROP PRIMARY KEY, ADD PRIMARY KEY (other)");
        sync = startSync(src);
        await snapshotDone(src, sync, "moving");
        await converges(src).catch(withOutput(sync));
        assertMatch(sync.output(), /msg="snapshotting tables again" reason=".*changed: moving/);

        step("keys of the new layout only: the old layout's swept");
        const now = await readEtcd(src.etcd.endpoint, "/s/moving/");
        assertEquals(now.size, ROWS);
        for (const gone of ["/s/moving/1", "/s/moving/10"]) assert(!now.has(gone), `${gone} swept`);
        assert(now.has(`/s/moving/${ROWS + 10}`), "a key only the new layout has");
        assertEquals(JSON.parse(now.get("/s/moving/11")!).id, 1, "key 11 holds the row other=11");
        assert(!sync.done, `sync keeps running:\n${sync.output()}`);
        const errors = sync.output().split("\n").filter((l) => ERROR_LINE.test(l));
        assertEquals(errors, [], "no error lines");
      } finally {
        await sync.stop();
      }
    },
  );
});

// ---------------------------------------------------------------------------------------
// 2. A row larger than etcd accepts, read by an online snapshot.

const HUGE_ID = 15_000;

test(
  "mysql: a chunk row larger than etcd accepts, with --oversize fail and skip",
  opts,
  async () => {
    await withSource(
      `CREATE TABLE big (id INT PRIMARY KEY, v MEDIUMTEXT);
    INSERT INTO big SELECT seq, CONCAT('b', seq) FROM seq_1_to_${ROWS};
    CREATE TABLE steady (id INT PRIMARY KEY, v TEXT);
    INSERT INTO steady SELECT seq, CONCAT('s', seq) FROM seq_1_to_500;`,
      // Out of the binlog (sql_log_bin = 0): only a snapshot can read the row. The ALTER after
      // it is in the binlog: the stream asks for big's snapshot again.
      (src) =>
        oversizeStopsThenSkips(
          src,
          `SET SESSION sql_log_bin = 0;
        UPDATE big SET v = REPEAT(MD5('x'), 10000) WHERE id = ${HUGE_ID};
        SET SESSION sql_log_bin = 1;
        ALTER TABLE big MODIFY v LONGTEXT;`,
          HUGE_ID,
        ),
    );
  },
);
