/**
 * MySQL decode: one binlog file of `n` row inserts (MariaDB, ROW format, CRC32, full row
 * metadata, transactions of 1,000 rows) decoded in-process by sync's decoder (binlog.ts
 * events, rows.ts row images to JSON cells and keys) and by `@powersync/mysql-zongji`'s
 * event classes on the same bytes, and the same binlog read from the server by
 * `mariadb-binlog --read-from-remote-server` (raw: the server's send rate; decoding rows:
 * the C client's rate).
 *
 * ZongJi has no API to decode bytes: its binlog packet class reads from a `mysql` protocol
 * Parser as the connection receives each packet. The benchmark builds that class for an
 * unstarted ZongJi (its own Parser class from the connection, checksums on as the server
 * has them) and hands each event to it exactly as the connection would (the OK marker byte,
 * then the event); its table-info query (INFORMATION_SCHEMA, once per table id) is answered
 * from one query made before the clock starts.
 */
import { Buffer } from "node:buffer";
import { ZongJi } from "@powersync/mysql-zongji";
import zongjiPackets from "@powersync/mysql-zongji/lib/packet/index.js";
import type { MariaServer } from "../../testing/mariadb.ts";
import { BinlogDecoder } from "../../src/mysql/binlog.ts";
import { decodeRowsEvent } from "../../src/mysql/rows.ts";
import { schemaForEvent } from "../../src/mysql/tablemeta.ts";
import { ROUNDS } from "./pg_decode.ts";
import { runBytes, sideBySide, timed } from "./lib.ts";

export interface MysqlDecodeResult {
  events: number;
  rows: number;
  bytes: number;
  /** rows/s per decoder. */
  oursEvents: number;
  oursRows: number;
  zongji: number;
  binlogRaw: number;
  binlogVerbose: number;
}

function splitEvents(file: Uint8Array): Uint8Array[] {
  const events: Uint8Array[] = [];
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  for (let at = 4; at + 19 <= file.length;) {
    const size = v.getUint32(at + 9, true);
    events.push(file.subarray(at, at + size));
    at += size;
  }
  return events;
}

/**
 * What sync's mysql driver does per event (src/mysql/stream.ts): decode it and, for a rows
 * event, read the table's schema for it and decode its row images to cells and keys
 * (`withRows` false: events only, counting the rows events' rows by their images' count
 * from the first round). One decoder per round; it keeps its table maps across chunks.
 */
function oursRows(withRows: boolean): () => (chunk: { e: Uint8Array }[]) => number {
  return () => {
    const d = new BinlogDecoder();
    return (chunk) => {
      let rows = 0;
      for (const { e } of chunk) {
        const { event } = d.decode(e);
        if (event.kind !== "rows") continue;
        const map = d.tableMap(event.tableId)!;
        if (!withRows) {
          rows += rowsIn.get(e) ?? 0;
          continue;
        }
        // As the driver: the schema from the table map's own metadata, per rows event.
        const schema = schemaForEvent(map, undefined)!;
        rows += decodeRowsEvent(event, map, schema).length;
      }
      return rows;
    };
  };
}

/** Rows per rows event, so the events-only decoder reports rows/s like the others. */
const rowsIn = new WeakMap<Uint8Array, number>();

export async function benchMysqlDecode(
  db: MariaServer,
  n: number,
  log: (s: string) => void,
): Promise<MysqlDecodeResult> {
  await db.query(
    "CREATE DATABASE bench; CREATE TABLE bench.bench_t " +
      "(id int PRIMARY KEY, name varchar(64), payload varchar(200))",
  );
  await db.query("FLUSH BINARY LOGS");
  const [{ Log_name: file }] = (await db.query("SHOW BINARY LOGS")).slice(-1);
  log(`mysql decode: inserting ${n} rows into ${file}`);
  for (let b = 0; b < n; b += 100_000) {
    const stmts: string[] = ["USE bench"];
    for (let i = b; i < Math.min(n, b + 100_000); i += 1000) {
      stmts.push(
        `INSERT INTO bench.bench_t SELECT seq, CONCAT('row ', seq), REPEAT('x', 100) ` +
          `FROM seq_${i + 1}_to_${Math.min(n, i + 1000)}`,
      );
    }
    await db.query(stmts.join(";"));
  }
  await db.query("FLUSH BINARY LOGS");
  const bytes = await Deno.readFile(`${db.dataDir}/${file}`);
  const events = splitEvents(bytes);
  log(`mysql decode: ${events.length} events, ${bytes.length} bytes`);

  // Count every rows event's rows once (with the full decoder) for the events-only one.
  {
    const d = new BinlogDecoder();
    let total = 0;
    for (const e of events) {
      const { event } = d.decode(e);
      if (event.kind !== "rows") continue;
      const map = d.tableMap(event.tableId)!;
      const k = decodeRowsEvent(event, map, schemaForEvent(map, undefined)!).length;
      rowsIn.set(e, k);
      total += k;
    }
    if (total !== n) throw new Error(`sync's decoder read ${total} rows of ${n}`);
  }

  // ZongJi, unstarted: only its connection's Parser class and its state are used.
  // deno-lint-ignore no-explicit-any
  const zj: any = new ZongJi({
    host: "127.0.0.1",
    port: db.port,
    user: "root",
    password: db.password,
  });
  zj.useChecksum = true;
  const Parser = zj.connection._protocol._parser.constructor;
  const BinlogPacket = zongjiPackets.initBinlogPacketClass(zj);
  const columnSchemas = await db.query(
    "SELECT COLUMN_NAME, COLLATION_NAME, CHARACTER_SET_NAME, COLUMN_COMMENT, COLUMN_TYPE " +
      "FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA='bench' AND TABLE_NAME='bench_t' " +
      "ORDER BY ORDINAL_POSITION",
  );
  const packets = events.map((e) => {
    const b = Buffer.alloc(e.length + 1);
    b.set(e, 1);
    return b;
  });
  const zongji = () => {
    zj.tableMap = {};
    const parser = new Parser({ config: {} });
    return (chunk: { packet: Buffer }[]) => {
      let rows = 0;
      for (const { packet: b } of chunk) {
        parser._buffer = b;
        parser._offset = 0;
        parser._packetEnd = b.length;
        const p = new BinlogPacket();
        p.parse(parser);
        const ev = p.getEvent();
        const name = ev.getTypeName();
        if (name === "TableMap") {
          // What ZongJi's binlog handler does on a table id it has not seen.
          const t = zj.tableMap[ev.tableId];
          if (!t || t.tableName !== ev.tableName || t.columns.length !== ev.columnCount) {
            zj.tableMap[ev.tableId] = {
              columnSchemas,
              parentSchema: ev.schemaName,
              tableName: ev.tableName,
            };
            ev.updateColumnInfo();
          }
        } else if (ev.rows) rows += ev.rows.length;
      }
      return rows;
    };
  };
  const items = events.map((e, i) => ({ e, packet: packets[i] }));
  log(`mysql decode: ${ROUNDS} rounds side by side`);
  const rates = sideBySide(items, ROUNDS, {
    oursRows: oursRows(true),
    oursEvents: oursRows(false),
    zongji,
  }, n);

  log("mysql decode: mariadb-binlog --read-from-remote-server");
  const remote = [
    "--no-defaults",
    "--read-from-remote-server",
    "--host=127.0.0.1",
    `--port=${db.port}`,
    "--user=root",
  ];
  const env = { MYSQL_PWD: db.password };
  const dir = await Deno.makeTempDir({ prefix: "bench-binlog-" });
  const tRaw = await timed(() =>
    runBytes("mariadb-binlog", [...remote, "--raw", `--result-file=${dir}/`, file], env)
  );
  const raw = await Deno.stat(`${dir}/${file}`);
  await Deno.remove(dir, { recursive: true });
  if (raw.size !== bytes.length) throw new Error(`mariadb-binlog --raw read ${raw.size} bytes`);
  let text = 0;
  const tVerbose = await timed(async () => {
    const child = new Deno.Command("mariadb-binlog", {
      args: [...remote, "--base64-output=DECODE-ROWS", "--verbose", file],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    // Count the decoded rows as they stream by (the output is a few hundred MB).
    const needle = "### INSERT INTO";
    let tail = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const s = tail + chunk;
      for (let i = s.indexOf(needle); i >= 0; i = s.indexOf(needle, i + 1)) text++;
      tail = s.slice(-needle.length + 1);
    }
    await child.status;
  });
  if (text !== n) throw new Error(`mariadb-binlog printed ${text} rows of ${n}`);
  return {
    events: events.length,
    rows: n,
    bytes: bytes.length,
    oursEvents: rates.oursEvents,
    oursRows: rates.oursRows,
    zongji: rates.zongji,
    binlogRaw: n / tRaw,
    binlogVerbose: n / tVerbose,
  };
}
