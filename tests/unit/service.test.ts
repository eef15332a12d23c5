/**
 * The service's retry loop and position hand-off (no servers): an in-memory sink and a
 * scripted source stand in for etcd and a database, so each rule of the design's failure
 * and ordering sections is checked on its own.
 */
import { assert, assertEquals, assertRejects } from "../../testing/assert.ts";
import { FatalError, runService } from "../../src/service/run.ts";
import type { ChangeBatch, Position } from "../../src/core/change.ts";
import { FencedError, OversizeError, type Sink } from "../../src/core/sink.ts";
import {
  type BatchOutput,
  ConfigError,
  type SavedState,
  type SourceFactory,
  type SourceSession,
  type StartPlan,
} from "../../src/core/source.ts";
import type { Log } from "../../src/core/log.ts";
import { ChangeStream } from "../../src/core/stream.ts";

/** etcd as a map: what is committed, and the order of what happened. */
class MemorySink implements Sink {
  rows = new Map<string, string>();
  state: SavedState | null = null;
  events: string[] = [];
  /** Thrown by the next apply. */
  failNext?: Error;
  #mark = 0;

  readState() {
    return Promise.resolve(this.state ? structuredClone(this.state) : null);
  }
  startDump() {
    this.state = null;
    this.events.push("startDump");
    return Promise.resolve(++this.#mark);
  }
  writeDump(b: ChangeBatch) {
    this.#write(b);
    return Promise.resolve();
  }
  settleDump() {
    return Promise.resolve();
  }
  sweep() {
    return Promise.resolve(0);
  }
  writeState(s: SavedState) {
    this.state = s;
    this.events.push(`state ${s.position.lsn}`);
    return Promise.resolve();
  }
  apply(batches: readonly ChangeBatch[], stateAt: (p: Position) => SavedState) {
    const e = this.failNext;
    this.failNext = undefined;
    if (e) return Promise.reject(e);
    let last: Position | undefined;
    for (const b of batches) {
      this.#write(b);
      if (b.commit) {
        last = b.commit.position;
        this.state = stateAt(last);
        this.events.push(`state ${last.lsn}`);
      }
    }
    return Promise.resolve(last);
  }
  #write(b: ChangeBatch) {
    for (const c of b.changes) {
      if (c.op === "put") this.rows.set(`${c.table}/${c.key}`, String(c.cells[0]));
      if (c.op === "delete") this.rows.delete(`${c.table}/${c.key}`);
    }
  }
}

/** What one attempt of the scripted source does. */
interface Script {
  plan?: (state: SavedState | null) => StartPlan;
  dumpRows?: [string, string][];
  dumpAt?: string;
  /** Transactions to stream: [key, value, lsn]. */
  txns?: [string, string, string][];
  /** The stream finds table `resync` altered: its transactions carry the mark. */
  resync?: string;
  /** Thrown once the transactions are out (else the stream waits for the stop). */
  then?: Error;
}

function source(scripts: Script[], sink: MemorySink, onAllDone: () => void): SourceFactory {
  let n = 0;
  return {
    driver: "fake",
    connect: () => {
      const s = scripts[Math.min(n++, scripts.length - 1)];
      const session: SourceSession = {
        driver: "fake",
        identity: { id: "x" },
        tables: () => ({}),
        plan: (state) =>
          Promise.resolve(
            s.plan?.(state) ??
              (state && !state.position.resync
                ? { mode: "resume", position: state.position }
                : { mode: "dump", reason: state ? "resync" : "no saved state" }),
          ),
        dump: async (out: BatchOutput) => {
          await out({
            changes: (s.dumpRows ?? []).map(([key, v]) => ({
              op: "put",
              table: "t",
              key,
              columns: ["v"],
              cells: [v],
            })),
          });
          return { position: { lsn: s.dumpAt ?? "0/1" }, tables: ["t"] };
        },
        stream: async (_from, out, signal) => {
          const cs = new ChangeStream(out);
          for (const [key, v, lsn] of s.txns ?? []) {
            cs.put("t", key, ["v"], [v]);
            await cs.commit({ lsn }, new Date(), s.resync);
          }
          if (s.then) throw s.then;
          if (n >= scripts.length) onAllDone();
          if (!signal.aborted) {
            await new Promise<void>((r) => signal.addEventListener("abort", () => r()));
          }
        },
        confirm: (p) => sink.events.push(`confirm ${p.lsn}`),
        close: () => Promise.resolve(),
      };
      return Promise.resolve(session);
    },
  };
}

function memoryLog(lines: string[]): Log {
  const log: Log = {
    debug: () => {},
    info: (m, f) => lines.push(`info ${m} ${JSON.stringify(f ?? {})}`),
    warn: (m, f) => lines.push(`warn ${m} ${JSON.stringify(f ?? {})}`),
    error: (m, f) => lines.push(`error ${m} ${JSON.stringify(f ?? {})}`),
    with: () => log,
  };
  return log;
}

/** Run the service over `scripts` until the last attempt streams, then stop it. */
async function run(scripts: Script[], sink = new MemorySink()) {
  const lines: string[] = [];
  const stop = new AbortController();
  const factory = source(scripts, sink, () => setTimeout(() => stop.abort(), 10));
  await runService({
    factory,
    sink,
    log: memoryLog(lines),
    signal: stop.signal,
    minBackoffMs: 1,
    maxBackoffMs: 2,
  });
  return { sink, lines };
}

Deno.test("service: dump, then stream; a position is confirmed only once the sink holds it", async () => {
  const { sink, lines } = await run([{
    dumpRows: [["1", "a"], ["2", "b"]],
    dumpAt: "0/10",
    txns: [["3", "c", "0/20"], ["1", "d", "0/30"]],
  }]);
  assertEquals(Object.fromEntries(sink.rows), { "t/1": "d", "t/2": "b", "t/3": "c" });
  assertEquals(sink.state?.position, { lsn: "0/30" });
  for (const e of sink.events.filter((e) => e.startsWith("confirm"))) {
    const at = sink.events.indexOf(e);
    assert(sink.events.slice(0, at).includes(`state ${e.slice(8)}`), `${e} before its state`);
  }
  assert(lines.some((l) => l.startsWith("info dump starting")), lines.join("\n"));
});

Deno.test("service: a resync dumps again at once, with no retry", async () => {
  const { sink, lines } = await run([
    { dumpAt: "0/10", txns: [["1", "a", "0/20"]], resync: "t" },
    { dumpRows: [["1", "a"], ["9", "z"]], dumpAt: "0/40" },
  ]);
  assertEquals(sink.events.filter((e) => e === "startDump").length, 2);
  assertEquals(sink.state?.position, { lsn: "0/40" });
  assertEquals(sink.rows.get("t/9"), "z");
  assert(lines.some((l) => l.includes("dumping again")), lines.join("\n"));
  assert(!lines.some((l) => l.includes("retrying")), lines.join("\n"));
});

Deno.test("service: a failed sink is retried and the next attempt resumes", async () => {
  const sink = new MemorySink();
  sink.failNext = undefined;
  const { lines } = await run([
    { dumpAt: "0/10", txns: [["1", "a", "0/20"]], then: new Error("etcd unreachable") },
    { txns: [["2", "b", "0/30"]] },
  ], sink);
  assertEquals(sink.events.filter((e) => e === "startDump").length, 1, "resumed, no new dump");
  assertEquals(Object.fromEntries(sink.rows), { "t/1": "a", "t/2": "b" });
  assert(lines.some((l) => l.startsWith("warn retrying") && l.includes("etcd unreachable")));
  assert(lines.some((l) => l.startsWith("info resuming") && l.includes("lsn=0/20")));
});

Deno.test("service: misconfiguration at first start ends with status 2", async () => {
  const e = await assertRejects(
    () =>
      run([{
        plan: () => {
          throw new ConfigError("wal_level is replica");
        },
      }]),
    FatalError,
  );
  assertEquals(e.exitCode, 2);
});

Deno.test("service: after a first stream, a configuration error is retried", async () => {
  const { lines } = await run([
    { dumpAt: "0/10", txns: [["1", "a", "0/20"]], then: new ConfigError("role lost REPLICATION") },
    {},
  ]);
  assert(lines.some((l) => l.startsWith("warn retrying") && l.includes("REPLICATION")));
});

Deno.test("service: a row too big for the sink stops with status 1", async () => {
  const sink = new MemorySink();
  const e = await assertRejects(() => {
    sink.failNext = new OversizeError("row too large for etcd: table t key 1");
    return run([{ dumpAt: "0/10", txns: [["1", "a", "0/20"]] }], sink);
  }, FatalError);
  assertEquals(e.exitCode, 1);
  assertEquals(sink.state?.position, { lsn: "0/10" }, "nothing past the failed transaction");
});

Deno.test("service: fenced out by a new leader, it ends without retrying", async () => {
  const sink = new MemorySink();
  sink.failNext = new FencedError("lost leadership: another sync instance took over");
  // A retry would open the source again and take the slot from the new leader.
  const { lines } = await run([
    { dumpAt: "0/10", txns: [["1", "a", "0/20"]] },
    { txns: [["9", "z", "0/30"]] },
  ], sink);
  assert(lines.some((l) => l.startsWith("warn fenced out by a new leader")), lines.join("\n"));
  assert(!lines.some((l) => l.includes("retrying")), lines.join("\n"));
  assertEquals(sink.rows.get("t/9"), undefined, "a second attempt ran after the fence");
});
