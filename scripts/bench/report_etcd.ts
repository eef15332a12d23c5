/**
 * BENCHMARKS.md sections that measure against etcd: the one ceiling (section 1), the dump
 * (4) and streaming (5). The ceiling is the best rate any writer of section 1 reached; the
 * dump and streaming verdicts use the issues' bars (4 in flight, serial), measured again on
 * the phase's own etcd just before and after it.
 */
import { OPS } from "./etcd.ts";
import type { Phase, StreamResult } from "./sync_e2e.ts";
import { int, pct, ratio, rowValue, table } from "./lib.ts";
import { ADJACENT_KEYS } from "./sync_e2e.ts";
// A cycle with report.ts, which renders these sections: only used at call time.
import { cores, missing, ms, type Results, verdict } from "./report.ts";

export function ceilingSection(r: Results): string[] {
  const { sizes } = r;
  const ceil = ceilingOf(r);
  const out: string[] = [
    "## 1. etcd ceiling",
    "",
    `keys/s etcd takes from the \`etcd3\` package (gRPC), transactions of ${OPS} puts ` +
    `(etcd's --max-txn-ops, and sync's --etcd-max-txn-ops), ${int(sizes.ceilKeys)} keys, ` +
    `${rowValue(1).length} B values (the benchmark row), one transaction in flight, then 4, 8 ` +
    "and 32 (the many requests in flight of a load test such as `etcdctl check perf`), " +
    "measured first and again last. Below them, sync's sink alone (no source, in-process), " +
    `${int(sizes.sinkKeys)} keys, through each of its transports: its own gRPC client (the ` +
    "default, chosen by this table) and etcd's JSON gateway. Each section of this run starts " +
    "on a fresh, empty etcd.",
    "",
    "**The ceiling** is the highest rate any writer in this table reached" +
    (ceil ? ` (${int(ceil.best)} keys/s, ${ceil.bestBy})` : "") +
    ": every etcd figure below is shown against it. The dump and streaming verdicts use the " +
    "issue's bars instead, measured again beside the phase they judge (sections 4 and 5): " +
    "etcd3 with 4 in flight for the dump, serial (one transaction in flight) for streaming. " +
    "Source transactions are applied in commit order, each etcd " +
    "transaction carrying the state key; etcd does not promise to apply concurrent requests " +
    "in the order sent, so sync's stream keeps two in flight, the second compared with the " +
    "state key's version the first leaves (refused and sent again if it overtook the first).",
    "",
  ];
  if (ceil && r.sink) {
    const f = r.ceilFirst, l = r.ceilLast;
    const row = (name: string, first: number, last?: number) => [
      name,
      int(first),
      last === undefined ? "" : int(last),
      pct(Math.max(first, last ?? 0) / ceil.best),
      ratio(Math.max(first, last ?? 0) / ceil.serial),
    ];
    out.push(
      ...table(["writer", "keys/s (first)", "keys/s (last)", "of ceiling", "vs serial"], [
        ...ETCD3_WRITERS.map(([k, name]) => row(name, f?.[k] ?? NaN, l?.[k] ?? NaN)),
        ...([["grpc", r.sink], ["gateway", r.sinkGateway]] as const).flatMap(([via, x]) =>
          x
            ? [
              row(`sync's sink (${via}), dump batches, 8 writers`, x.dump8),
              row(`sync's sink (${via}), stream batches, 2 chained`, x.stream1),
            ]
            : []
        ),
      ]),
      "",
      ...([["grpc", r.sink], ["gateway", r.sinkGateway]] as const).flatMap(([via, x]) =>
        x?.dumpCpuPerM !== undefined
          ? [
            `sync's CPU-seconds per 1,000,000 keys written by the sink alone (${via}): dump ` +
            `${x.dumpCpuPerM.toFixed(1)}, stream ${x.streamCpuPerM?.toFixed(1)}.`,
            "",
          ]
          : []
      ),
    );
  } else out.push(...missing(r, "ceiling"));

  return out;
}

/** What bounded a phase: CPU of sync and etcd, and sync's sink alone against the ceiling. */
function bound(r: Results, p: { syncCpu: number; etcdCpu: number }): string {
  const ceil = ceilingOf(r);
  return `sync used ${cores(p.syncCpu)} and etcd ${cores(p.etcdCpu)} of the 2 cores, which ` +
    "the database (the source) shares; the ceiling runs without a source" +
    (r.sink && ceil
      ? ` (sync's sink alone, no source, in-process: ${
        pct(r.sink.dump8 / ceil.best)
      } of the ceiling with 8 writers, ${
        pct(r.sink.stream1 / ceil.best)
      } with the stream's two chained transactions in flight)`
      : "");
}

/** Why streaming stays below the ceiling even when neither process fills a core. */
const streamGap = "Streaming applies source transactions in commit order, two etcd " +
  "transactions in flight, each chained to the one before by a compare on the state key; " +
  "reading and decoding the source, building the transactions and etcd's applying them " +
  "share two cores with the database";

export function dumpSection(r: Results): string[] {
  const { sizes } = r;
  const ceil = ceilingOf(r);
  const out: string[] = [];
  out.push("## 4. Dump", "");
  const dumps: [string, Phase & { adjacent4?: number[] }][] = [];
  if (r.dump) dumps.push(["pgx dump", r.dump]);
  if (r.mysqlE2e) dumps.push(["mysql dump", r.mysqlE2e.dump]);
  if (!dumps.length || !ceil) return [...out, ...missing(r, "dump")];
  const bar = (d: { adjacent4?: number[] }) => Math.max(...(d.adjacent4 ?? [NaN]));
  out.push(
    `sync as its own process dumping the ${int(sizes.rows)}-row PostgreSQL table (the one ` +
      "decoded above) into an etcd that holds no keys of it, from `dump starting` to " +
      "`dump done` in its log (the sweep included), then every key's value checked; the " +
      "mysql row likewise for the MariaDB table of section 3 (sync reads it itself, in " +
      "chunks: no mysqldump). The dump keeps 4 transactions in flight. CPU per wall second " +
      "from /proc. **The dump's bar** is the issue's: the etcd ceiling with 4 in flight, " +
      `measured (etcd3, ${int(ADJACENT_KEYS)} keys, as in section 1) on the dump's own etcd ` +
      "just before and just after the dump, the higher of the two: the machine is shared, and " +
      "its speed drifts over the minutes between section 1 and the dump. The best writer's " +
      "ceiling of section 1 is shown beside it.",
    "",
    ...table(
      ["", "rows/s", "4 in flight beside it", "of it", "of ceiling", "sync CPU", "etcd CPU"],
      dumps.map(([name, d]) => [
        name,
        int(d.perSec),
        int(bar(d)),
        pct(d.perSec / bar(d)),
        pct(d.perSec / ceil.best),
        cores(d.syncCpu),
        cores(d.etcdCpu),
      ]),
    ),
    "",
    `Target ≥85% of the etcd ceiling (4 in flight): ${
      dumps.map(([name, d]) => {
        const frac = d.perSec / bar(d);
        return `${name} ${
          verdict(
            frac >= 0.85,
            `${pct(frac)} (${pct(d.perSec / ceil.best)} of the best ` +
              `writer's ceiling); ${bound(r, d)}`,
          )
        }`;
      }).join("; ")
    }.`,
    "",
  );
  return out;
}

export function streamSection(r: Results): string[] {
  const ceil = ceilingOf(r);
  const out: string[] = [];
  out.push("## 5. Streaming end to end", "");
  const st = r.stream;
  if (st && ceil) {
    const frac = st.sustained.perSec / ceil.best;
    // The serial rate measured on the stream's own etcd just before and after (as the dump's).
    const bar = Math.max(...(st.adjacentSerial ?? [NaN]));
    const serial = st.sustained.perSec / bar;
    const lat = st.latency;
    out.push(
      `sync as its own process streaming from PostgreSQL: ${int(st.sustained.changes)} ` +
        `inserts in transactions of 10 (the server committed them in ` +
        `${st.sustained.sourceSeconds.toFixed(1)} s), timed from the first commit until the ` +
        `last row is in etcd; one ${int(st.bigTxn.rows)}-row transaction likewise; then every ` +
        `row's value checked. Latency: ${int(lat.samples)} single-row transactions at ` +
        `${int(lat.txPerSec)} tx/s (after a first second left out), each from the moment ` +
        "before its INSERT is sent (synchronous_commit on for these sessions) to the key's PUT " +
        "arriving on an etcd watch (`etcd3`) in the benchmark process; the commit's own round " +
        "trip (sent to acknowledged) is shown beside it. A watch event earlier than its send " +
        "would be a bug in the measurement and fails the run. Baselines at the same rate: a " +
        "one-put etcd write through gRPC (`etcd3`) and through the JSON gateway, from sending " +
        "it to the watch event. **The streaming bar** is etcd's serial rate (etcd3, one " +
        `transaction in flight, ${int(ADJACENT_KEYS)} keys) measured on the stream's own etcd ` +
        `just before the sustained phase and after the big transaction: ${int(bar)} keys/s, ` +
        `the higher of ${st.adjacentSerial?.map(int).join(" and ")} (section 1: ` +
        `${int(ceil.serial)}).`,
      "",
      ...table([
        "",
        "changes/s",
        "of ceiling",
        "of serial beside it",
        "sync CPU",
        "etcd CPU",
      ], [[
        "sustained",
        int(st.sustained.perSec),
        pct(frac),
        pct(serial),
        cores(st.sustained.syncCpu),
        cores(st.sustained.etcdCpu),
      ], [
        `one ${int(st.bigTxn.rows)}-row transaction`,
        int(st.bigTxn.perSec),
        pct(st.bigTxn.perSec / ceil.best),
        pct(st.bigTxn.perSec / bar),
        cores(st.bigTxn.syncCpu),
        cores(st.bigTxn.etcdCpu),
      ]]),
      "",
      `Target ≥85% of the serial etcd rate (issue 16): ${
        verdict(
          serial >= 0.85,
          `${pct(serial)} (${pct(frac)} of the best writer's ceiling); ` +
            `${bound(r, st.sustained)}. ${streamGap}`,
        )
      }.`,
      "",
      ...latencyPart(st),
    );
  } else out.push(...missing(r, "stream"));
  return out;
}

/** The latency table of section 5 and its verdict. */
function latencyPart(st: StreamResult): string[] {
  const lat = st.latency, base = st.etcdLatency, gw = st.gatewayLatency;
  return [
    ...table([
      "latency at 1,000 tx/s, ms",
      "sync: commit sent → watch",
      "sync: commit round trip",
      "etcd gRPC put → watch",
      "etcd gateway txn → watch",
      "sync vs gRPC put",
    ], [
      [
        "p50",
        ms(lat.p50),
        ms(lat.roundTrip.p50),
        ms(base?.p50),
        ms(gw?.p50),
        ratio(lat.p50 / (base?.p50 ?? NaN)),
      ],
      [
        "p99",
        ms(lat.p99),
        ms(lat.roundTrip.p99),
        ms(base?.p99),
        ms(gw?.p99),
        ratio(lat.p99 / (base?.p99 ?? NaN)),
      ],
      ["max", ms(lat.max), ms(lat.roundTrip.max), ms(base?.max), ms(gw?.max), ""],
    ]),
    "",
    `Target p50 ≤5 ms, p99 ≤25 ms at 1,000 tx/s: p50 ${
      verdict(lat.p50 <= 5, `${ms(lat.p50)} ms`)
    }; p99 ${
      verdict(
        lat.p99 <= 25,
        `${ms(lat.p99)} ms` +
          (base && base.p99 >= lat.p99
            ? `. etcd alone, at the same rate on the same server, has a longer tail (p99 ` +
              `${ms(base.p99)} ms through gRPC, ${ms(gw?.p99)} ms through the gateway): the ` +
              "tail is etcd's own stalls on this shared 2-core machine"
            : ""),
      )
    }. All figures: ${
      verdict(
        lat.p50 <= 5 && lat.p99 <= 25,
        `p50 ${ms(lat.p50)} ms, p99 ${ms(lat.p99)} ms. Measured: the commit itself takes ` +
          `${ms(lat.roundTrip.p50)} ms (p50) to be acknowledged; one etcd write alone takes ` +
          `${ms(base?.p50)} ms (p50; p99 ${ms(base?.p99)}) through gRPC and ${ms(gw?.p50)} ms ` +
          `(p99 ${ms(gw?.p99)}) through the gateway on this machine at this rate, so sync's ` +
          "own share (PostgreSQL's walsender, decode, queueing behind the one etcd " +
          `transaction in flight) is about ${
            base ? ms(Math.max(0, lat.p50 - lat.roundTrip.p50 - base.p50)) : "n/a"
          } ms at p50`,
      )
    }.`,
    "",
  ];
}

/** The etcd3 writers of section 1: field of `Ceiling`, and how the table names it. */
const ETCD3_WRITERS = [
  ["serial", "etcd3 gRPC, serial"],
  ["parallel4", "etcd3 gRPC, 4 in parallel"],
  ["parallel8", "etcd3 gRPC, 8 in parallel"],
  ["parallel32", "etcd3 gRPC, 32 in parallel"],
] as const;

/**
 * The one ceiling: the highest keys/s any writer of section 1 reached (etcd3 at any
 * concurrency, first or last, or sync's sink alone), and the serial rate beside it.
 */
export function ceilingOf(
  r: Pick<Results, "ceilFirst" | "ceilLast" | "sink" | "sinkGateway">,
): { best: number; bestBy: string; serial: number } | undefined {
  if (!r.ceilFirst && !r.ceilLast) return undefined;
  const rates: [string, number][] = [];
  for (const c of [r.ceilFirst, r.ceilLast]) {
    for (const [k, name] of ETCD3_WRITERS) if (c && c[k] > 0) rates.push([name, c[k]]);
  }
  for (const [via, x] of [["grpc", r.sink], ["gateway", r.sinkGateway]] as const) {
    if (x) rates.push([`sync's sink (${via}), 8 writers`, x.dump8]);
    if (x) rates.push([`sync's sink (${via}), stream`, x.stream1]);
  }
  const [bestBy, best] = rates.reduce((a, b) => (b[1] > a[1] ? b : a));
  const serial = Math.max(r.ceilFirst?.serial ?? 0, r.ceilLast?.serial ?? 0);
  return { best, bestBy, serial };
}
