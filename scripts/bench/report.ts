/** BENCHMARKS.md from the results of one run: a table per benchmark, a verdict per target. */
import type { Ceiling, SinkRates } from "./etcd.ts";
import type { PgDecodeResult } from "./pg_decode.ts";
import type { MysqlDecodeResult } from "./mysql_decode.ts";
import type { DumpResult, StreamResult } from "./sync_e2e.ts";
import type { MysqlE2eResult } from "./mysql_e2e.ts";
import type { SnapshotBenchResult } from "./snapshot_e2e.ts";
import { snapshotSection } from "./report_snapshot.ts";
import { cpuSection } from "./report_cpu.ts";
import { int, pct, ratio, SCALE, table } from "./lib.ts";
import { ROUNDS } from "./pg_decode.ts";
import { ceilingSection, dumpSection, streamSection } from "./report_etcd.ts";

export interface Results {
  sizes: {
    ceilKeys: number;
    sinkKeys: number;
    sustained: number;
    latencySeconds: number;
    rows: number;
  };
  errors: Partial<
    Record<
      "ceiling" | "pg" | "mysql" | "mysql-e2e" | "dump" | "stream" | "snapshot" | "chunks",
      string
    >
  >;
  /** Incidents of the run worth a line (etcd restarted, ...). */
  notes: string[];
  ceilFirst?: Ceiling;
  ceilLast?: Ceiling;
  /** sync's sink through each transport. */
  sink?: SinkRates;
  sinkGateway?: SinkRates;
  pg?: PgDecodeResult;
  mysql?: MysqlDecodeResult;
  dump?: DumpResult;
  stream?: StreamResult;
  mysqlE2e?: MysqlE2eResult;
  snapshot?: SnapshotBenchResult;
  /** The same online snapshot at each of `CHUNK_SIZES`. */
  chunkSweep?: SnapshotBenchResult[];
  minutes?: number;
}

export const verdict = (ok: boolean, gap: string) => (ok ? "**met**" : `**not met**: ${gap}`);
export const cores = (x: number) => `${x.toFixed(2)} cores`;
/** Whether RSS stayed level over a phase (first tenth → last tenth), in words. */
const level = (what: string, first: number, last: number) =>
  last <= first * 1.15
    ? `${what} stays level (${first.toFixed(0)} → ${
      last.toFixed(0)
    } MB): no data accumulates with the rows. `
    : `${what} grows (${first.toFixed(0)} → ${last.toFixed(0)} MB) over the phase, which ` +
      "includes the V8 heap growing from its start-up size to its working size; whether " +
      "anything holds data in proportion to the rows was not isolated. ";
export const ms = (x: number | undefined) => (x === undefined ? "n/a" : x.toFixed(1));

/** How sections 2 and 3 time the decoders (lib.ts sideBySide). */
const SIDE_BY_SIDE = "The in-process decoders run on the same bytes side by side: the stream " +
  `is cut into about 100 chunks, and each of ${ROUNDS} rounds feeds every decoder every chunk ` +
  "in turn (fresh decoder state each round, the decoders' order alternating), keeping per " +
  "decoder and chunk the fastest round, so a neighbour's burst on this shared machine costs " +
  "one chunk of one round and both decoders meet the same machine.";

/** What made the decoders fast (issue 16), profiled with `deno run --cpu-prof`. */
const PG_HOW = "What it takes (profiled with `deno run --cpu-prof`): a row plan per " +
  "relation (src/pg/row_change.ts), built when its Relation message arrives, reads each " +
  "insert, update and delete straight from its bytes into the JSON cells and the key, with " +
  "no row of text values, message object or key-part array between; the message's values " +
  "are cut from one decoded string of it (one decoder call per message, through a Buffer " +
  "view of the read buffer); integer columns are their own cell and key part; a text value " +
  "is quoted as it is when its bytes, checked four at a time, need no escaping. What " +
  "remains: the decoder call (about a quarter), the escaping check (about a fifth), the " +
  "cells array and the strings.";
const MY_HOW = "What it takes (profiled with `deno run --cpu-prof`): CRC32 through zlib's " +
  "native crc32 (the table loop in JS took 17% of the decode, ~100× slower); a row plan " +
  "per table, built when its table map and schema arrive and kept while they read rows the " +
  "same way: one closure per column, integers straight to their text, text in an " +
  "ASCII-compatible character set cut from one Latin-1 string of the event and quoted as " +
  "is when it is plain printable ASCII (decoded by the column's decoder otherwise), every " +
  "other type through the general value + cellOf path.";

export function render(r: Results): string[] {
  return [
    ...header(r),
    ...ceilingSection(r),
    ...pgSection(r),
    ...mysqlSection(r),
    ...dumpSection(r),
    ...streamSection(r),
    ...memorySection(r),
    ...cpuSection(r),
    ...snapshotSection(r),
  ];
}

/** "Not measured" for a benchmark that failed, with its one-line reason. */
export function missing(r: Results, what: keyof Results["errors"]): string[] {
  return [`Not measured in this run: ${r.errors[what] ?? "an earlier step failed"}.`, ""];
}

function header(r: Results): string[] {
  const { sizes } = r;
  const mem = Deno.systemMemoryInfo();
  const cpuModel = Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.*)$/m)?.[1];
  return [
    "# Benchmarks",
    "",
    `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; ` +
    `${navigator.hardwareConcurrency} cores (${cpuModel ?? "unknown CPU"}), ` +
    `${(mem.total / 2 ** 30).toFixed(1)} GiB memory; Deno ${Deno.version.deno}; ` +
    `scale ${SCALE} (${int(sizes.rows)}-row tables); whole run ${r.minutes?.toFixed(1)} min. ` +
    "Written by `deno task bench` (scripts/bench/; `deno task bench --scale=0.1` is a quick run).",
    "",
    "The machine is shared with other work running at the same time, so absolute figures move " +
    "from run to run; the ratios are against baselines measured in this same run on the same " +
    "servers. Servers: etcd 3.4, PostgreSQL 15 and MariaDB 10.11 from Debian, started by " +
    "testing/ on loopback (PostgreSQL and MariaDB with fsync off, as in the tests; etcd " +
    "with its defaults but --snapshot-count=5000, which keeps its memory to a few hundred MB, " +
    "and its data directory on tmpfs, so its fsyncs are free as the databases' are: on this " +
    "VM's disk etcd alone had a p99 write latency of 104 ms at 1,000 writes/s).",
    "",
    ...r.notes.flatMap((n) => [`Note: ${n}`, ""]),
  ];
}

function pgSection(r: Results): string[] {
  const out: string[] = [];
  out.push("## 2. PostgreSQL decode", "");
  const pg = r.pg;
  if (pg) {
    const ratioPg = pg.oursChanges / pg.pgjsParsers;
    out.push(
      `One pgoutput stream (proto_version 1) captured from a real slot: ${int(pg.messages)} ` +
        `messages, ${int(pg.changes)} inserts in transactions of 1,000, ` +
        `${(pg.bytes / 1e6).toFixed(1)} MB. ${SIDE_BY_SIDE} postgres.js exports no decoder: ` +
        "its private `parse()` from the installed src/subscribe.js is loaded unchanged with an " +
        "`export` appended, so the code measured is what `subscribe()` runs per XLogData " +
        "message (its subscriber dispatch replaced by a counter, which favours it). sync's " +
        "row is what the pgx driver does per change (src/pg/relations.ts): its relation's " +
        "row plan reads the message into a JSON cell per column and the key. " +
        "pg_recvlogical reads the same slot up to the same LSN.",
      "",
      ...table(["decoder", "changes/s", "vs postgres.js"], [
        [
          "sync: decode + JSON cells + key (what the pgx driver does per change)",
          int(pg.oursChanges),
          ratio(ratioPg),
        ],
        ["sync: decodePgOutput only", int(pg.oursDecode), ratio(pg.oursDecode / pg.pgjsParsers)],
        ["postgres.js subscribe() parse, default type parsers", int(pg.pgjsParsers), ratio(1)],
        [
          "postgres.js subscribe() parse, no type parsers (text values)",
          int(pg.pgjsText),
          ratio(pg.pgjsText / pg.pgjsParsers),
        ],
        [
          "pg_recvlogical on the same slot (the server's decoding and sending)",
          int(pg.recvlogical),
          ratio(pg.recvlogical / pg.pgjsParsers),
        ],
      ]),
      "",
      `Target ≥3× the npm peer: ${verdict(ratioPg >= 3, ratio(ratioPg))}. Measured: ` +
        `${ratio(ratioPg)} for rows ready to write (${
          ratio(pg.oursChanges / pg.pgjsText)
        } against postgres.js without type parsers); rows ready to write take ${
          ratio(pg.oursDecode / pg.oursChanges)
        } the time per change of decodePgOutput alone (the general decoder: text values, ` +
        "no JSON, no key). " + PG_HOW,
      "",
      `Both decoders are ${
        ratio(Math.min(pg.oursChanges, pg.pgjsParsers) / pg.recvlogical)
      } or more faster than the server produces the stream (pg_recvlogical), so neither ` +
        "limits replication.",
      "",
    );
  } else out.push(...missing(r, "pg"));

  return out;
}

function mysqlSection(r: Results): string[] {
  const out: string[] = [];
  out.push("## 3. MySQL decode", "");
  const my = r.mysql;
  if (my) {
    const ratioMy = my.oursRows / my.zongji;
    out.push(
      `One MariaDB binlog file: ${int(my.rows)} row inserts in transactions of 1,000, ` +
        `${int(my.events)} events, ${(my.bytes / 1e6).toFixed(1)} MB (ROW, CRC32, ` +
        `binlog_row_metadata=FULL). ${SIDE_BY_SIDE} ` +
        "`@powersync/mysql-zongji` 0.6 (the maintained ZongJi fork; it runs under Deno) has no " +
        "decode-bytes API: its binlog packet class is built for an unstarted ZongJi and fed " +
        "each event as its connection would be (marker byte + event, through its own `mysql` " +
        "Parser), its per-table INFORMATION_SCHEMA lookup answered from one query made before " +
        "the clock starts. sync verifies every CRC32; ZongJi skips them. sync's row is what " +
        "the mysql driver does per rows event (src/mysql/stream.ts): the table's schema from " +
        "the table map, then its row images to JSON cells and keys. " +
        "`mariadb-binlog --read-from-remote-server` reads the same file from the server.",
      "",
      ...table(["decoder", "rows/s", "vs ZongJi"], [
        [
          "sync: events + row images to JSON cells and key (binlog.ts + rows.ts)",
          int(my.oursRows),
          ratio(ratioMy),
        ],
        [
          "sync: events only (binlog.ts, CRC32 checked)",
          int(my.oursEvents),
          ratio(my.oursEvents / my.zongji),
        ],
        ["@powersync/mysql-zongji event classes", int(my.zongji), ratio(1)],
        [
          "mariadb-binlog --raw (the server's send rate)",
          int(my.binlogRaw),
          ratio(my.binlogRaw / my.zongji),
        ],
        [
          "mariadb-binlog --base64-output=DECODE-ROWS --verbose (its C decoder, text out)",
          int(my.binlogVerbose),
          ratio(my.binlogVerbose / my.zongji),
        ],
      ]),
      "",
      `Target ≥3× the npm peer: ${verdict(ratioMy >= 3, ratio(ratioMy))}. Measured: ` +
        `${ratio(ratioMy)}; the row images (values to JSON cells and the key) take ${
          pct(1 - my.oursRows / my.oursEvents)
        } of sync's time. ` + MY_HOW,
      "",
    );
  } else out.push(...missing(r, "mysql"));

  return out;
}

function memorySection(r: Results): string[] {
  const out: string[] = [];
  out.push("## 6. Memory", "");
  const { sizes } = r;
  const dump = r.dump, st = r.stream;
  if (dump && st) {
    out.push(
      "Peak resident memory (VmHWM, /proc/<pid>/status) of the sync process; the baseline is " +
        "the same process's RSS idle after start (Deno and V8 alone).",
      "",
      ...table(["", "peak RSS, MB", "idle RSS, MB", "peak − idle, MB"], [
        [
          `dumping ${int(sizes.rows)} rows`,
          dump.peakMB.toFixed(0),
          dump.idleMB.toFixed(0),
          (dump.peakMB - dump.idleMB).toFixed(0),
        ],
        [
          `streaming one ${int(st.bigTxn.rows)}-row transaction (peak before it: ` +
          `${st.bigTxn.peakBeforeMB.toFixed(0)} MB)`,
          st.bigTxn.peakMB.toFixed(0),
          st.idleMB.toFixed(0),
          (st.bigTxn.peakMB - st.idleMB).toFixed(0),
        ],
      ]),
      "",
      `Target ≤150 MB: dumping ${
        verdict(dump.peakMB <= 150, `${dump.peakMB.toFixed(0)} MB`)
      }; streaming ${verdict(st.bigTxn.peakMB <= 150, `${st.bigTxn.peakMB.toFixed(0)} MB`)}.`,
      "",
      "Where it goes, measured (RSS sampled every 250 ms; mean over the first and last tenth of " +
        "each phase): " +
        `dumping ${dump.rssFirstTenthMB.toFixed(0)} → ${dump.rssLastTenthMB.toFixed(0)} MB, ` +
        `the ${int(st.bigTxn.rows)}-row transaction ${st.bigTxn.rssFirstTenthMB.toFixed(0)} → ` +
        `${st.bigTxn.rssLastTenthMB.toFixed(0)} MB; an idle sync (Deno, V8, the code) is ` +
        `${dump.idleMB.toFixed(0)} MB. sync holds a bounded working set by design (the dump ` +
        "hands on 500 rows at a time and waits for etcd; the stream queue holds at most 2,000 " +
        "changes and the driver passes a big transaction on in chunks of 1,000). " +
        level("The dump", dump.rssFirstTenthMB, dump.rssLastTenthMB) +
        level(
          `The ${int(st.bigTxn.rows)}-row transaction`,
          st.bigTxn.rssFirstTenthMB,
          st.bigTxn.rssLastTenthMB,
        ) +
        (st.bigTxn.peakBeforeMB >= 0.98 * st.bigTxn.peakMB
          ? "The streaming peak was reached before the big transaction, in the latency and " +
            "sustained phases of the same process (many small transactions), so it is not the " +
            "transaction's size. "
          : "") +
        "sync runs with `--v8-flags=--max-semi-space-size=8,--heap-growing-percent=20` " +
        "(docs/operations.md, Permissions): V8's young generation and its heap growth steps " +
        "are what lies above the idle process, not data. A hard heap limit (`--max-old-space-size`) would " +
        "cut it further but turns an unusually large row into a " +
        "crash, so it is not set.",
      "",
    );
  } else out.push(...missing(r, dump ? "stream" : "dump"));
  return out;
}
