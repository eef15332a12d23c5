/**
 * The online snapshot engine with no servers: a table in memory stands in for the database,
 * a map for etcd, and the stream's changes are injected at the worst moments (after a
 * chunk was read, before it is written) to show the stream's values win, equal rows are
 * not written, the sweep removes only what nobody saw, and a restart goes on at the cursor.
 */
import { assert, assertEquals } from "../../testing/assert.ts";
import { type ChangeBatch, UNCHANGED } from "../../src/core/change.ts";
import { renderRow, splitRow } from "../../src/core/json.ts";
import { type Log, silentLog } from "../../src/core/log.ts";
import { SnapshotEngine } from "../../src/core/snapshot.ts";
import {
  type SnapshotProgress,
  type SnapshotRow,
  UnpageableTableError,
} from "../../src/core/snapshot_types.ts";

const COLS = ["id", "v"];

/** The database: rows by integer id, read in id order. */
class Table {
  rows = new Map<number, string>();
  reads = 0;
  /** Where each read that was not a replay (no `until`) began. */
  starts: (string | null)[] = [];
  /** Called after each chunk read, before the engine goes on. */
  afterRead?: () => Promise<void>;

  read(after: readonly string[] | null, limit: number, until?: readonly string[]) {
    this.reads++;
    if (!until) this.starts.push(after ? after[0] : null);
    const from = after ? Number(after[0]) : -Infinity;
    const to = until ? Number(until[0]) : Infinity;
    const ids = [...this.rows.keys()].filter((id) => id > from && id <= to).sort((a, b) => a - b);
    return ids.slice(0, limit).map((id): SnapshotRow => ({
      key: String(id),
      after: [String(id)],
      columns: COLS,
      cells: [String(id), JSON.stringify(this.rows.get(id))],
    }));
  }
}

/** etcd: rendered rows by key, and every key written, in order. */
class Etcd {
  rows = new Map<string, string>();
  writes: string[] = [];
  progress?: SnapshotProgress;
  /** Called inside each read of current values (the chunk is read, not yet written). */
  duringCurrent?: () => Promise<void>;

  apply(b: ChangeBatch) {
    for (const c of b.changes) {
      this.writes.push(`${c.op} ${"key" in c ? c.key : ""}`);
      if (c.op === "put") this.rows.set(c.key, renderRow(c.columns, this.#filled(c)));
      else if (c.op === "delete") this.rows.delete(c.key);
      else this.rows.clear();
    }
    if (b.commit?.snapshot) this.progress = b.commit.snapshot;
  }

  /** Unchanged (TOAST) cells from the row's current value, null without one (as the sink). */
  #filled(c: Extract<ChangeBatch["changes"][number], { op: "put" }>): string[] {
    const old = this.rows.has(c.key) ? splitRow(this.rows.get(c.key)!) : new Map();
    return c.cells.map((v, i) => (v === UNCHANGED ? old.get(c.columns[i]) ?? "null" : v));
  }
}

function setup(
  table: Table,
  etcd: Etcd,
  chunkRows = 10,
  progress?: SnapshotProgress,
  queue?: ChangeBatch[],
) {
  const engine: SnapshotEngine = new SnapshotEngine({
    source: {
      read: (_t, after, limit, until) => Promise.resolve(table.read(after, limit, until)),
      close() {},
    },
    store: {
      async current(_t, keys) {
        await etcd.duringCurrent?.();
        return new Map(keys.flatMap((k) => etcd.rows.has(k) ? [[k, etcd.rows.get(k)!]] : []));
      },
      keys: () => Promise.resolve([...etcd.rows.keys()]),
    },
    // With a queue, pushed batches wait there until `settled` applies them (a pipeline).
    push: (b) => {
      if (queue) queue.push(b);
      else etcd.apply(b);
      return Promise.resolve();
    },
    settled: () => {
      for (const b of queue?.splice(0) ?? []) etcd.apply(b);
      return Promise.resolve();
    },
    log: silentLog,
    chunkRows,
    parallel: 1,
    progress,
  });
  engine.start({ lsn: "0/1" });
  return engine;
}

function put(id: number, v: string): ChangeBatch["changes"][number] {
  return { op: "put", table: "t", key: String(id), columns: COLS, cells: [String(id), `"${v}"`] };
}

async function until(what: string, ok: () => boolean) {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setTimeout(r, 1));
  assert(ok(), `waited for ${what}`);
}

function expected(table: Table): Map<string, string> {
  return new Map(
    [...table.rows].map(([id, v]) => [String(id), renderRow(COLS, [String(id), `"${v}"`])]),
  );
}

Deno.test("a change streamed between a chunk's read and its write wins", async () => {
  const table = new Table();
  for (let i = 1; i <= 30; i++) table.rows.set(i, `v${i}`);
  const etcd = new Etcd();
  let lsn = 1;
  const engine = setup(table, etcd);
  etcd.duringCurrent = async () => {
    // Row 5 (or 15, 25) changes and is deleted after the chunk that holds it was read.
    const id = [5, 15, 25].find((i) => table.rows.get(i)?.startsWith("v"));
    if (id === undefined) return;
    table.rows.set(id, "streamed");
    await engine.take({
      changes: [put(id, "streamed")],
      commit: { position: { lsn: `0/${++lsn}` } },
    });
    table.rows.delete(id + 1);
    await engine.take({
      changes: [{ op: "delete", table: "t", key: String(id + 1) }],
      commit: { position: { lsn: `0/${++lsn}` } },
    });
  };
  engine.request(["t"]);
  await until("the snapshot", () => etcd.progress?.t?.state === "done");
  assertEquals(etcd.rows, expected(table));
  engine.stop();
});

Deno.test("a streamed row without its unchanged TOAST value gets it from its chunk", async () => {
  const table = new Table();
  for (let i = 1; i <= 30; i++) table.rows.set(i, `v${i}`);
  const etcd = new Etcd();
  const engine = setup(table, etcd);
  let once = false;
  etcd.duringCurrent = async () => {
    if (once) return;
    once = true;
    // Row 15 (a later chunk, not in etcd yet) is updated, its TOAST column left out.
    await engine.take({
      changes: [{ op: "put", table: "t", key: "15", columns: COLS, cells: ["15", UNCHANGED] }],
      commit: { position: { lsn: "0/2" } },
    });
  };
  engine.request(["t"]);
  await until("the snapshot", () => etcd.progress?.t?.state === "done");
  assertEquals(etcd.rows, expected(table));
  engine.stop();
});

Deno.test("rows equal to etcd's are not written; the sweep removes the rest", async () => {
  const table = new Table();
  const etcd = new Etcd();
  for (let i = 1; i <= 25; i++) table.rows.set(i, `v${i}`);
  for (const [k, v] of expected(table)) etcd.rows.set(k, v);
  table.rows.set(7, "changed while away");
  etcd.rows.set("99", renderRow(COLS, ["99", '"gone"']));
  const engine = setup(table, etcd);
  engine.request(["t"]);
  await until("the snapshot", () => etcd.progress?.t?.state === "done");
  assertEquals(etcd.rows, expected(table));
  assertEquals(etcd.writes, ["put 7", "delete 99"]);
  engine.stop();
});

Deno.test("a restart goes on at the saved cursor and sweeps what it did not see", async () => {
  const table = new Table();
  for (let i = 1; i <= 40; i++) table.rows.set(i, `new${i}`);
  const etcd = new Etcd();
  // Before the crash: rows up to 20 written, cursor at 20; 30..40 still old; 50 is stale.
  for (let i = 1; i <= 40; i++) {
    etcd.rows.set(String(i), renderRow(COLS, [String(i), `"${i <= 20 ? "new" : "old"}${i}"`]));
  }
  etcd.rows.set("50", renderRow(COLS, ["50", '"stale"']));
  const saved: SnapshotProgress = {
    t: { state: "running", after: ["20"], rows: 20, started: "2026-01-01T00:00:00Z" },
  };
  const engine = setup(table, etcd, 10, saved);
  await until("the snapshot", () => etcd.progress?.t?.state === "done");
  assertEquals(etcd.rows, expected(table));
  // Only the rows after the cursor and the stale key: nothing before the cursor again.
  assertEquals(etcd.writes.filter((w) => w.startsWith("put")).length, 20);
  assertEquals(etcd.writes.at(-1), "delete 50");
  assertEquals(table.starts[0], "20", "the first read after the restart starts at the cursor");
  assert(etcd.writes.every((w) => w === "delete 50" || Number(w.split(" ")[1]) > 20));
  engine.stop();
});

Deno.test("a TRUNCATE during a snapshot starts the table over", async () => {
  const table = new Table();
  for (let i = 1; i <= 30; i++) table.rows.set(i, `v${i}`);
  const etcd = new Etcd();
  let truncated = false;
  const engine = setup(table, etcd);
  etcd.duringCurrent = async () => {
    if (truncated || !etcd.progress?.t || etcd.progress.t.state !== "running") return;
    if (!(etcd.progress.t.rows >= 10)) return;
    truncated = true;
    table.rows.clear();
    table.rows.set(3, "after truncate");
    await engine.take({
      changes: [{ op: "truncate", table: "t" }, put(3, "after truncate")],
      commit: { position: { lsn: "0/9" } },
    });
  };
  engine.request(["t"]);
  await until("the snapshot", () => etcd.progress?.t?.state === "done");
  assert(truncated, "truncate injected");
  assertEquals(etcd.rows, expected(table));
  engine.stop();
});

Deno.test("a TRUNCATE still queued when a table's snapshot begins is applied first", async () => {
  // A rename and a rename back: the old name's TRUNCATE is pushed, not yet in etcd, when
  // the same name is snapshotted again; its rows equal what etcd still holds.
  const table = new Table();
  for (let i = 1; i <= 25; i++) table.rows.set(i, `v${i}`);
  const etcd = new Etcd();
  for (const [k, v] of expected(table)) etcd.rows.set(k, v);
  const queue: ChangeBatch[] = [];
  const engine = setup(table, etcd, 10, undefined, queue);
  await engine.take({
    changes: [{ op: "truncate", table: "t" }],
    commit: { position: { lsn: "0/2" } },
    resnapshot: ["t"],
  });
  await until("the snapshot", () => {
    for (const b of queue.splice(0)) etcd.apply(b);
    return etcd.progress?.t?.state === "done";
  });
  assertEquals(etcd.rows, expected(table));
  engine.stop();
});

/** A log that keeps its warnings. */
function warnings(): { log: Log; warned: string[] } {
  const warned: string[] = [];
  const log: Log = {
    ...silentLog,
    warn: (m, f) => warned.push(`${m} ${JSON.stringify(f)}`),
    with: () => log,
  };
  return { log, warned };
}

Deno.test("a table whose key may repeat is read whole, once, and warned of", async () => {
  // Keys 2 and 3 repeat across what would be chunk boundaries at 2 rows a chunk: a keyset
  // page ending at 2 would go on after 2 and skip the later 2s.
  const rows: [number, string][] = [[1, "a"], [2, "b"], [2, "c"], [2, "d"], [3, "e"], [3, "e"]];
  const reads: number[] = [];
  const etcd = new Etcd();
  etcd.rows.set("9", renderRow(COLS, ["9", '"stale"']));
  etcd.rows.set("3", renderRow(COLS, ["3", '"e"']));
  const afters: (readonly string[] | null)[] = [];
  const apply = etcd.apply.bind(etcd);
  etcd.apply = (b) => {
    apply(b);
    const s = b.commit?.snapshot?.t;
    if (s?.state === "running") afters.push(s.after);
  };
  const { log, warned } = warnings();
  let lsn = 1;
  const run = async (saved?: SnapshotProgress) => {
    const engine: SnapshotEngine = new SnapshotEngine({
      source: {
        read(table, after, limit) {
          reads.push(limit);
          if (limit !== Infinity) throw new UnpageableTableError(table);
          assertEquals(after, null, "a whole read starts at the start");
          return Promise.resolve(rows.map(([id, v]): SnapshotRow => ({
            key: String(id),
            after: [String(id)],
            columns: COLS,
            cells: [String(id), JSON.stringify(v)],
          })));
        },
        close() {},
      },
      store: {
        async current(_t, keys) {
          // Row 1 changes (streamed) after the whole read, before its write: it wins.
          if (rows[0][1] === "a") {
            rows[0][1] = "streamed";
            await engine.take({
              changes: [put(1, "streamed")],
              commit: { position: { lsn: `0/${++lsn}` } },
            });
          }
          return new Map(keys.flatMap((k) => etcd.rows.has(k) ? [[k, etcd.rows.get(k)!]] : []));
        },
        keys: () => Promise.resolve([...etcd.rows.keys()]),
      },
      push: (b) => Promise.resolve(etcd.apply(b)),
      log,
      chunkRows: 2,
      parallel: 1,
      progress: saved,
    });
    engine.start({ lsn: `0/${lsn}` });
    if (!saved) engine.request(["t"]);
    await until("the snapshot", () => engine.progress.t?.state === "done");
    engine.stop();
  };
  await run();
  // The last row read of a repeated key wins, as a transaction writing a key twice does.
  const want = new Map([[1, "streamed"], [2, "d"], [3, "e"]].map(([id, v]) => [
    String(id),
    renderRow(COLS, [String(id), JSON.stringify(v)]),
  ]));
  assertEquals(etcd.rows, want);
  assertEquals(reads, [2, Infinity], "one chunk read refused, then one whole read");
  assertEquals(warned.length, 1, warned.join("\n"));
  assert(warned[0].includes('"table":"t"') && warned[0].includes("read whole"), warned[0]);
  assert(afters.every((a) => a === null), `no cursor while running: ${JSON.stringify(afters)}`);
  // The stream's row 1; of the read, only 2 (3 equals etcd's, 1 is the stream's); the sweep.
  assertEquals(etcd.writes, ["put 1", "put 2", "delete 9"]);

  // Again, as after a restart from a cursor saved while a unique index still covered the
  // key: the replay is refused, the table is read whole, and nothing equal is written.
  etcd.writes = [];
  reads.length = 0;
  const saved: SnapshotProgress = {
    t: { state: "running", after: ["1"], rows: 1, started: "2026-01-01T00:00:00Z" },
  };
  await run(saved);
  assertEquals(etcd.rows, want);
  assertEquals(etcd.writes, []);
  assertEquals(reads, [2, Infinity]);
  assertEquals(warned.length, 2, "once per snapshot");
});

Deno.test("a table held mid-snapshot writes nothing until the stream asks again", async () => {
  const table = new Table();
  for (let i = 1; i <= 30; i++) table.rows.set(i, `v${i}`);
  const etcd = new Etcd();
  const engine = setup(table, etcd);
  let held = false;
  etcd.duringCurrent = async () => {
    if (held) return;
    held = true;
    // Its first chunk is read, not yet written: the stream holds the table.
    const hold = [{ table: "t", why: "identity" }];
    await engine.take({ changes: [], commit: { position: { lsn: "0/2" } }, hold });
  };
  engine.request(["t"]);
  await until("the hold", () => etcd.progress?.t?.state === "held");
  const reads = table.reads;
  // An operator's request: ignored while held, and said so (the service then dismisses it).
  assertEquals(engine.request(["t"], "r7"), []);
  await new Promise((r) => setTimeout(r, 20));
  assertEquals([etcd.rows.size, table.reads, etcd.progress?.t?.state], [0, reads, "held"]);
  await engine.take({ changes: [], commit: { position: { lsn: "0/3" } }, resnapshot: ["t"] });
  await until("the snapshot", () => etcd.progress?.t?.state === "done");
  assertEquals(etcd.rows, expected(table));
  const gone = { changes: [{ op: "truncate" as const, table: "t" }], gone: ["t"] };
  await engine.take({ ...gone, commit: { position: { lsn: "0/4" } } });
  assertEquals([etcd.rows.size, "t" in etcd.progress!], [0, false]);
  engine.stop();
});
