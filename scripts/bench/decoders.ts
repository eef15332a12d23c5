/**
 * Decoder throughput on bytes captured from real servers (tests/fixtures): pgoutput messages
 * and MariaDB binlog events, each decoded in a loop, against a baseline run in the same
 * process on the same bytes: UTF-8 decoding of every byte (the least any decoder must do).
 */
import { decodePgOutput } from "../../src/pg/pgoutput.ts";
import { BinlogDecoder } from "../../src/mysql/binlog.ts";

export interface DecoderRow {
  name: string;
  mbPerSec: number;
  baselineMbPerSec: number;
  messagesPerSec: number;
}

const FIX = new URL("../../tests/fixtures/", import.meta.url);

function measure(messages: Uint8Array[], run: (m: Uint8Array) => void, minMs = 1500) {
  let bytes = 0, count = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs) {
    for (const m of messages) {
      run(m);
      bytes += m.length;
      count++;
    }
  }
  const s = (performance.now() - t0) / 1000;
  return { mbPerSec: bytes / s / 1e6, perSec: count / s };
}

export function benchDecoders(): DecoderRow[] {
  const td = new TextDecoder();
  const baseline = (m: Uint8Array) => void td.decode(m);
  const pg = Deno.readTextFileSync(new URL("pg/v1.jsonl", FIX)).trim().split("\n")
    .map((l) => JSON.parse(l).hex as string)
    .map((h) => Uint8Array.from(h.match(/../g)!, (x) => parseInt(x, 16)));
  const rows: DecoderRow[] = [];
  const pgRun = measure(pg, (m) => void decodePgOutput(m, false));
  const pgBase = measure(pg, baseline);
  rows.push({
    name: "pgoutput (protocol 1, captured)",
    mbPerSec: pgRun.mbPerSec,
    baselineMbPerSec: pgBase.mbPerSec,
    messagesPerSec: pgRun.perSec,
  });
  const file = Deno.readFileSync(new URL("mysql/bin.000001", FIX));
  const events: Uint8Array[] = [];
  for (let at = 4; at < file.length;) {
    const size = new DataView(file.buffer, at + 9, 4).getUint32(0, true);
    events.push(file.subarray(at, at + size));
    at += size;
  }
  // Decode the whole file per pass, so checksums and table maps are exercised as in a stream.
  const binRun = measure([file], () => {
    const d = new BinlogDecoder();
    for (const e of events) d.decode(e);
  });
  const binBase = measure([file], baseline);
  rows.push({
    name: "MariaDB binlog events (bin.000001, CRC32 checked)",
    mbPerSec: binRun.mbPerSec,
    baselineMbPerSec: binBase.mbPerSec,
    messagesPerSec: binRun.perSec * events.length,
  });
  return rows;
}

if (import.meta.main) {
  for (const r of benchDecoders()) console.log(r);
}
