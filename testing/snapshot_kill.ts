/**
 * The scenario of tests/snapshot_kill.test.ts for either driver (issue 14: "a snapshot
 * killed at 90% must not start over nor rewrite keys"). A table of ROWS rows is dumped and
 * streamed; an `ALTER TABLE ... ADD COLUMN extra ... DEFAULT 7` changes every row's JSON
 * without a row event, so sync re-snapshots it online, in chunks of CHUNK rows written in
 * etcd transactions of TXN_OPS operations (a chunk spans ten of them). A seeded writer
 * changes every 10th id meanwhile. sync is killed with SIGKILL three times, at cursors a
 * seeded PRNG picks (the last one past 80%), as soon as a chunk is seen half in etcd, and
 * restarted each time. Everything is judged from etcd: key versions, the state's cursor
 * (sampled every few ms across the restarts), and the independent checker at the end.
 */
import { assert, assertEquals } from "./assert.ts";
import { assertConverges, readEtcdKvs } from "./checker.ts";
import { waitFor } from "./process.ts";
import { prng, RowWriter } from "./row_writer.ts";
import { step } from "./steps.ts";
import { launchSync, streaming, type SyncRun } from "./sync.ts";

export const ROWS = 12_000;
export const CHUNK = 300;
export const TXN_OPS = 30;
const KILLS = 3;

export interface KillCase {
  driver: string;
  /** sync's flags but the snapshot ones (added here). */
  args: string[];
  endpoint: string;
  /** `<prefix>-state/<id>/snapshots`. */
  stateKey: string;
  /** The table's name in the state and in its keys (`big`). */
  table: string;
  /** ... and in SQL (`big`, `app.big`). */
  sqlTable: string;
  /** Every table's key prefix (`/s/`). */
  prefix: string;
  /** Runs one statement on the source. */
  exec: (sql: string) => Promise<unknown>;
  /** Runs statements in one transaction on the source. */
  txn: (statements: string[]) => Promise<unknown>;
  expected: () => Promise<Map<string, string>>;
}

/** SNAPSHOT_KILL_SEED, default 14. */
export function seedFromEnv(): number {
  const raw = Deno.env.get("SNAPSHOT_KILL_SEED") ?? "";
  const seed = raw === "" ? 14 : Number(raw);
  if (!Number.isSafeInteger(seed)) throw new Error(`SNAPSHOT_KILL_SEED=${raw}: not an integer`);
  return seed;
}

type Snap = {
  state?: string;
  after?: string[] | null;
  rows?: number;
  started?: string;
  done?: string;
};

const utf8 = new TextDecoder();
const fromB64 = (v: string) => utf8.decode(Uint8Array.from(atob(v), (ch) => ch.charCodeAt(0)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `keys` read in one etcd transaction (the JSON gateway): one revision for all. */
async function readKeys(endpoint: string, keys: string[]): Promise<(string | undefined)[]> {
  const body = { success: keys.map((k) => ({ request_range: { key: btoa(k) } })) };
  const r = await fetch(`${endpoint}/v3/kv/txn`, {
    method: "POST",
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(2_000),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`etcd txn: ${r.status} ${text}`);
  type Range = { response_range?: { kvs?: { value?: string }[] } };
  const j = JSON.parse(text) as { responses?: Range[] };
  return keys.map((_, i) => {
    const kv = j.responses?.[i]?.response_range?.kvs?.[0];
    return kv ? fromB64(kv.value ?? "") : undefined;
  });
}

const cursorOf = (s: Snap | undefined) => (s?.after ? Number(s.after[0]) : 0);

/**
 * The table's snapshot state, sampled: once running, its cursor never goes back, it keeps
 * its start time (no new snapshot), and after done it does not run again.
 */
class CursorWatch {
  phase: "before" | "running" | "done" = "before";
  cursor = 0;
  samples = 0;
  /** What went wrong, once per run and kind, with how many samples showed it. */
  readonly #bad = new Map<string, { text: string; samples: number }>();
  #started?: string;
  #done?: string;

  constructor(readonly firstDone: string | undefined) {}

  note(s: Snap | undefined, run: number): void {
    this.samples++;
    const bad = (why: string, kind = why) => {
      const seen = this.#bad.get(`${run} ${kind}`);
      if (seen) seen.samples++;
      else this.#bad.set(`${run} ${kind}`, { text: `sync run ${run}: ${why}`, samples: 1 });
    };
    if (!s) return bad("the table left the snapshot state");
    if (this.phase === "before") {
      if (s.state === "running") {
        this.phase = "running";
        this.#started = s.started;
        this.cursor = cursorOf(s);
      } else if (s.done !== this.firstDone) {
        bad(`the re-snapshot ended before a sample saw it run: ${JSON.stringify(s)}`);
      }
      return;
    }
    if (this.phase === "done") {
      if (s.state !== "done" || s.done !== this.#done) {
        bad(`a snapshot again after the one killed had ended: ${JSON.stringify(s)}`);
      }
      return;
    }
    if (s.state === "done") {
      this.phase = "done";
      this.#done = s.done;
      return;
    }
    if (s.state !== "running") return bad(`state ${JSON.stringify(s)}`);
    if (s.started !== this.#started) {
      bad(`a new snapshot: started ${this.#started}, then ${s.started} (cursor ${cursorOf(s)})`);
      this.#started = s.started;
    }
    const c = cursorOf(s);
    if (c < this.cursor) bad(`the cursor went back from ${this.cursor} to ${c}`, "back");
    this.cursor = Math.max(this.cursor, c);
  }

  /** Each violation seen, first sample's words, with the count of samples that showed it. */
  get violations(): string[] {
    return [...this.#bad.values()].map((v) => `${v.text} (${v.samples} samples)`);
  }
}

interface Kill {
  target: number;
  /** The cursor last sampled before the kill, and the one the state held after it. */
  seen: number;
  saved: number;
  /** A chunk was seen half in etcd when the kill was sent. */
  midChunk: boolean;
  /** Rows of the chunk in flight already in etcd (past the saved cursor). */
  landed: number;
  /** Rows up to the saved cursor: read again by the next start (to know them at the sweep). */
  reread: number;
  /** How long the killed process ran. */
  ranMs: number;
}

const count = (text: string, re: RegExp) => text.match(new RegExp(re, "g"))?.length ?? 0;

export async function killedSnapshot(c: KillCase, seed: number): Promise<void> {
  console.log(`${c.driver}: SNAPSHOT_KILL_SEED=${seed}`);
  const args = [...c.args, `--snapshot-chunk-rows=${CHUNK}`, `--etcd-max-txn-ops=${TXN_OPS}`];
  const runs: SyncRun[] = [launchSync(args)];
  let runStart = Date.now();
  const sync = () => runs[runs.length - 1];
  const fail = (e: Error) => {
    const out = sync().output().split("\n").slice(-60).join("\n");
    throw new Error(`${e.message}\n--- sync run ${runs.length}, last lines:\n${out}`);
  };
  const keyPrefix = `${c.prefix}${c.table}/`;
  const idOf = (k: string) => Number(k.slice(keyPrefix.length));
  const progress = async () => {
    const [raw] = await readKeys(c.endpoint, [c.stateKey]);
    return (raw ? JSON.parse(raw) : {}) as Record<string, Snap>;
  };
  const r = prng(seed);
  // Three cursors to kill at: early, middle, and past 80% ("killed at 90%").
  const targets = [[0.08, 0.3], [0.4, 0.65], [0.82, 0.92]]
    .map(([lo, hi]) => Math.round((lo + r() * (hi - lo)) * ROWS));
  const writer = new RowWriter({ txn: c.txn, table: c.sqlTable, rows: ROWS, rand: prng(~seed) });
  try {
    await streaming(sync(), 90_000).catch(fail);
    await assertConverges(c.endpoint, c.prefix, c.expected, 60_000).catch(fail);
    const before = await readEtcdKvs(c.endpoint, keyPrefix);
    assertEquals(before.kvs.size, ROWS, "the first dump wrote every row");
    const first = (await progress())[c.table];
    assertEquals(first?.state, "done", "the first dump marked the table done");

    step(`kill targets (cursor ids): ${targets.join(", ")}`);
    // Every row's JSON changes and no row event says so: the re-snapshot writes each once.
    await c.exec(`ALTER TABLE ${c.sqlTable} ADD COLUMN extra int DEFAULT 7`);
    writer.start();
    const watch = new CursorWatch(first?.done);
    const kills: Kill[] = [];
    const killFaults: string[] = [];
    let eligibleSince: number | undefined;
    const t0 = Date.now();

    /** Kill sync, look at what it left in etcd, start it again. */
    const killAndRestart = async (midChunk: boolean) => {
      const seen = watch.cursor;
      const ranMs = Date.now() - runStart;
      sync().kill("SIGKILL");
      const exited = await Promise.race([sync().exited.then(() => true), sleep(10_000)]);
      if (!exited) throw new Error("sync still running 10 s after SIGKILL");
      const killed = await readEtcdKvs(c.endpoint, keyPrefix);
      const s = (await progress())[c.table];
      watch.note(s, runs.length);
      const n = kills.length + 1;
      if (s?.state !== "running") killFaults.push(`kill ${n}: state ${JSON.stringify(s)}`);
      const saved = cursorOf(s);
      let landed = 0, reread = 0;
      for (const [k, kv] of killed.kvs) {
        const id = idOf(k);
        if (id <= saved) reread++;
        else if (!writer.ownsId(id) && kv.value.includes('"extra"')) landed++;
      }
      // One chunk is written at a time: what is ahead of the cursor is that chunk's.
      if (landed > CHUNK) killFaults.push(`kill ${n}: ${landed} rows ahead of cursor ${saved}`);
      kills.push({ target: targets[n - 1], seen, saved, midChunk, landed, reread, ranMs });
      eligibleSince = undefined;
      runs.push(launchSync(args));
      runStart = Date.now();
    };

    /**
     * One sample of the state (and of the keys just past the cursor); kills when due. True
     * while a kill is due but waits for a chunk half written: sample again at once.
     */
    const tick = async (): Promise<boolean> => {
      const prev = watch.cursor;
      // The next rows only sync writes, one chunk apart: the first is past the cursor.
      const probes: number[] = [];
      for (let j = 0; j < 4; j++) {
        let id = prev + 1 + j * CHUNK;
        while (writer.ownsId(id)) id++;
        probes.push(id);
      }
      const [raw, ...vals] = await readKeys(c.endpoint, [
        c.stateKey,
        ...probes.map((id) => `${keyPrefix}${id}`),
      ]);
      watch.note((raw ? JSON.parse(raw) : {})[c.table], runs.length);
      if (watch.phase !== "running" || kills.length >= KILLS) return false;
      const cur = watch.cursor;
      const last = kills.at(-1)?.saved ?? -1;
      if (cur < targets[kills.length] || cur <= last) return false;
      eligibleSince ??= Date.now();
      const mid = probes.some((id, i) => id > cur && vals[i]?.includes('"extra"'));
      // Near the end, at once: the table must not end before its last kill.
      const due = Date.now() - eligibleSince > 2_000 || cur >= ROWS - 2 * CHUNK;
      if (!mid && !due) return true;
      await killAndRestart(mid);
      return false;
    };

    await waitFor(
      `${KILLS} kills and the end of ${c.table}'s snapshot`,
      async () => {
        // Fast polls inside a slow one (whose 100 ms pauses would let chunks by unseen).
        for (const end = Date.now() + 10_000; Date.now() < end;) {
          if (writer.error) return true;
          const aiming = await tick();
          if (watch.phase === "done") return true; // fewer kills: told below
          if (!aiming) await sleep(5);
        }
        return false;
      },
      100_000,
      () => sync().output().split("\n").slice(-40).join("\n"),
    ).catch(fail);
    const snapshotMs = Date.now() - t0;
    await writer.stop();
    await assertConverges(c.endpoint, c.prefix, c.expected, 60_000).catch(fail);
    const after = await readEtcdKvs(c.endpoint, keyPrefix);
    const done = (await progress())[c.table];

    // (1) A key no one but sync wrote: one write, the snapshot's, however often it was killed.
    const wrong: string[] = [];
    const byKill = kills.map(() => 0);
    let untouched = 0, rewrites = 0;
    for (const [k, b] of before.kvs) {
      const id = idOf(k);
      if (writer.ownsId(id) || writer.touched.has(id)) continue;
      untouched++;
      const a = after.kvs.get(k);
      const writes = a && a.createRevision === b.createRevision ? a.version - b.version : NaN;
      if (writes === 1) continue;
      rewrites += writes > 1 ? writes - 1 : 0;
      // The chunk in flight at a kill: past its saved cursor, about one chunk of ids.
      const near = kills.findIndex((x) => id > x.saved && id <= x.saved + CHUNK + CHUNK / 10);
      if (near >= 0) byKill[near] += writes > 1 ? writes - 1 : 0;
      const what = !a
        ? "gone"
        : Number.isNaN(writes)
        ? "deleted, created again"
        : `${writes} writes`;
      if (wrong.length < 5) wrong.push(`${k}: ${what}`);
    }
    const landed = kills.map((k) => k.landed);

    const outs = runs.map((s) => s.output());
    console.log(
      `${c.driver}: seed ${seed}, targets ${targets.join("/")}; kills (seen cursor -> saved, ` +
        `half-written chunk seen, rows of it in etcd, rows re-read at the next start, ran ms): ` +
        kills.map((k) =>
          `[${k.seen}->${k.saved} mid=${k.midChunk} landed=${k.landed} ` +
          `reread=${k.reread} ${k.ranMs}ms]`
        ).join(" ") +
        `; snapshot ${(snapshotMs / 1000).toFixed(1)} s with restarts; ${watch.samples} ` +
        `state samples; ${untouched} untouched keys, ${rewrites} rewritten; writer ` +
        `${JSON.stringify(writer.counts)}; done rows ${done?.rows}`,
    );

    assertEquals(kills.length, KILLS, `the snapshot ended after ${kills.length} kills`);
    assertEquals(killFaults, [], "what the kills left in etcd");
    assertEquals(watch.violations, [], "the snapshot state sampled across the restarts");
    assertEquals(done?.state, "done", `the table's state at the end: ${JSON.stringify(done)}`);
    // Rows read before a kill count once: the state's total is the table's size, give or take
    // the rows the writer added or removed while it was read.
    const drift = writer.counts.insert + writer.counts.delete;
    assert(
      Math.abs(Number(done?.rows) - after.kvs.size) <= drift,
      `the snapshot counted ${done?.rows} rows for a table of ${after.kvs.size} (±${drift})`,
    );
    assert(
      wrong.length === 0,
      `${c.driver}: of ${untouched} keys the writer never touched, each must be written once ` +
        `after the ALTER (bound 0 rewrites: rows equal to etcd are skipped and a resumed job ` +
        `goes on at its cursor), but ${rewrites} rewrites; in the chunk in flight at each kill: ` +
        `${byKill.join(", ")} (its rows already in etcd at the kill: ${landed.join(", ")}), ` +
        `elsewhere ${rewrites - byKill.reduce((x, y) => x + y, 0)}; e.g.\n${wrong.join("\n")}`,
    );
    // (2) No new dump: only the first run dumps, none starts the snapshot over.
    assertEquals(count(outs[0], /msg="dump starting"/), 1, "the first run dumps");
    for (const [i, out] of outs.entries()) {
      if (i > 0) assertEquals(count(out, /msg="dump starting"/), 0, `run ${i + 1} dumped:\n${out}`);
      assertEquals(count(out, /snapshot starts over/), 0, `run ${i + 1} started over`);
    }
    const end = new RegExp(`msg="snapshot done" table=${c.table} `);
    assertEquals(outs.slice(1).map((o) => count(o, end)), [0, 0, 1], "snapshot done, by run");
  } finally {
    await writer.stop().catch(() => {});
    for (const s of runs) await s.stop();
  }
}
