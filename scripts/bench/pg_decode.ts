/**
 * PostgreSQL decode: one captured pgoutput stream (proto_version 1, ROWS inserts in
 * transactions of 1,000 rows, read from a real slot with pg_logical_slot_peek_binary_changes)
 * decoded in-process by sync's decoder and by postgres.js's `subscribe()` decoder on the same
 * bytes, and the same slot read by `pg_recvlogical` (the server's own decoding rate).
 *
 * postgres.js does not export its pgoutput parser: `parse()` is private to its
 * src/subscribe.js. The benchmark loads that file from the installed package, unchanged,
 * with one `export` line appended, so the code measured is exactly what `subscribe()` runs
 * on every XLogData message; the subscriber dispatch around it is replaced by a counter
 * (which favours postgres.js).
 */
import { Buffer } from "node:buffer";
import type { PgServer } from "../../testing/postgres.ts";
import { pgBin } from "../../testing/postgres.ts";
import { decodePgOutput } from "../../src/pg/pgoutput.ts";
import {
  decodeRowChange,
  isRowChange,
  type RowPlan,
  rowPlan,
  rowRelationId,
} from "../../src/pg/row_change.ts";
import { BUILTIN_TYPES, valueRenderer } from "../../src/pg/values.ts";
import { runBytes, sideBySide, timed } from "./lib.ts";

const CHANGE_TAGS = new Set(["insert", "update", "delete"]);

export interface PgDecodeResult {
  messages: number;
  changes: number;
  bytes: number;
  /** changes/s per decoder. */
  oursDecode: number;
  oursChanges: number;
  pgjsParsers: number;
  pgjsText: number;
  recvlogical: number;
}

const SLOT = "bench_cap";

/**
 * Insert `n` rows into `table` in transactions of 1,000 (one DO block, COMMIT inside).
 * Commits are synchronous: logical decoding reads only flushed WAL, and the test server's
 * synchronous_commit=off would leave the last transactions out of a capture made right after.
 */
export async function insertRows(pg: PgServer, table: string, from: number, n: number) {
  await pg.psql(`SET synchronous_commit = on; DO $$ BEGIN
    FOR b IN 0..${Math.ceil(n / 1000) - 1} LOOP
      INSERT INTO ${table} SELECT g, 'row ' || g, repeat('x', 100)
        FROM generate_series(${from} + b * 1000, ${from} + least(b * 1000 + 999, ${n - 1})) g;
      COMMIT;
    END LOOP;
  END $$;`);
}

/** The messages of COPY ... TO STDOUT (FORMAT binary) of one bytea column. */
function copyBinaryRows(b: Uint8Array): Uint8Array[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 11 + 4;
  at += 4 + v.getUint32(at);
  const out: Uint8Array[] = [];
  while (at < b.length) {
    const fields = v.getInt16(at);
    at += 2;
    if (fields === -1) break;
    const len = v.getInt32(at);
    at += 4;
    out.push(b.subarray(at, at + len));
    at += len;
  }
  return out;
}

/** postgres.js's private pgoutput parser, loaded from the installed package. */
async function loadPostgresJsParse(): Promise<
  // deno-lint-ignore no-explicit-any
  (x: Buffer, state: any, parsers: any, handle: any, transform: any) => void
> {
  const src = await Deno.readTextFile(new URL("subscribe.js", import.meta.resolve("postgres")));
  const file = await Deno.makeTempFile({ suffix: ".mjs" });
  await Deno.writeTextFile(
    file,
    `import { Buffer } from "node:buffer";\n${src}\nexport { parse };\n`,
  );
  try {
    return (await import(`file://${file}`)).parse;
  } finally {
    await Deno.remove(file);
  }
}

/**
 * What sync's pgx driver does per message (src/pg/relations.ts): a row plan per Relation
 * message, then each row change read by it into JSON cells and the key. One decoder per
 * round; it keeps its relations across chunks.
 */
export function oursToChanges(): (messages: { m: Uint8Array }[]) => number {
  const plans = new Map<number, RowPlan>();
  const types = (oid: number) => BUILTIN_TYPES.get(oid);
  return (messages) => {
    let changes = 0;
    for (const { m } of messages) {
      if (isRowChange(m)) {
        const plan = plans.get(rowRelationId(m, false))!;
        const c = decodeRowChange(m, false, plan);
        if (c.tag === "delete" ? c.oldKey !== null : c.key !== null && c.cells.length) changes++;
        continue;
      }
      const msg = decodePgOutput(m, false);
      if (msg.tag === "relation") {
        const keyIdx = msg.columns.flatMap((c, i) => (c.key ? [i] : []));
        plans.set(
          msg.relationId,
          rowPlan(msg.columns.map((c) => valueRenderer(c.typeOid, types)), keyIdx),
        );
      }
    }
    return changes;
  };
}

/** Rounds of the side-by-side decoder timing (lib.ts sideBySide). */
export const ROUNDS = 5;

/**
 * Create the slot and publication on `table`, insert `n` rows into it, capture the stream
 * and decode it every way. The slot is dropped at the end; the rows stay (the dump uses them).
 */
export async function benchPgDecode(
  pg: PgServer,
  table: string,
  n: number,
  log: (s: string) => void,
): Promise<PgDecodeResult> {
  await pg.sql.unsafe(`CREATE PUBLICATION ${SLOT} FOR TABLE ${table}`);
  await pg.sql`SELECT pg_create_logical_replication_slot(${SLOT}, 'pgoutput')`;
  try {
    log(`pg decode: inserting ${n} rows`);
    await insertRows(pg, table, 1, n);
    const [{ lsn }] = await pg.sql`SELECT pg_current_wal_insert_lsn()::text AS lsn`;
    log("pg decode: capturing the stream");
    const copy = await runBytes(`${pgBin()}/psql`, [
      "-X",
      "-q",
      "-h",
      "127.0.0.1",
      "-p",
      String(pg.port),
      "-U",
      "postgres",
      "-c",
      `COPY (SELECT data FROM pg_logical_slot_peek_binary_changes('${SLOT}', '${lsn}', NULL, ` +
      `'proto_version', '1', 'publication_names', '${SLOT}')) TO STDOUT WITH (FORMAT binary)`,
    ]);
    const messages = copyBinaryRows(copy);
    const bytes = messages.reduce((a, m) => a + m.length, 0);
    const changes = messages.filter((m) => m[0] === 0x49 || m[0] === 0x55 || m[0] === 0x44)
      .length;
    log(`pg decode: ${messages.length} messages, ${changes} changes, ${bytes} bytes`);

    const parse = await loadPostgresJsParse();
    // deno-lint-ignore no-explicit-any
    const parsers = (pg.sql as any).options.parsers;
    const transform = { column: {}, value: {}, row: {} };
    // Each decoder gets the message in the form it takes: postgres.js a Buffer.
    const items = messages.map((m) => ({
      m,
      buf: Buffer.from(m.buffer, m.byteOffset, m.byteLength),
    }));
    type Item = (typeof items)[number];
    const pgjs = (p: unknown) => () => {
      const state = {};
      return (chunk: Item[]) => {
        let k = 0;
        const handle = () => void k++;
        for (const x of chunk) parse(x.buf, state, p, handle, transform);
        return k;
      };
    };
    const decodeOnly = () => (chunk: Item[]) => {
      let k = 0;
      for (const x of chunk) if (CHANGE_TAGS.has(decodePgOutput(x.m, false).tag)) k++;
      return k;
    };
    log(`pg decode: ${ROUNDS} rounds side by side`);
    const rates = sideBySide(items, ROUNDS, {
      oursChanges: oursToChanges,
      oursDecode: decodeOnly,
      pgjsParsers: pgjs(parsers),
      pgjsText: pgjs({}),
    }, changes);

    log("pg decode: pg_recvlogical");
    const out = await Deno.makeTempFile({ suffix: ".pgoutput" });
    const tRecv = await timed(() =>
      runBytes("pg_recvlogical", [
        "-h",
        "127.0.0.1",
        "-p",
        String(pg.port),
        "-U",
        "postgres",
        "-d",
        "postgres",
        "--slot",
        SLOT,
        "--start",
        "--no-loop",
        "--endpos",
        lsn,
        "-o",
        "proto_version=1",
        "-o",
        `publication_names=${SLOT}`,
        "-f",
        out,
      ])
    );
    const written = (await Deno.stat(out)).size;
    await Deno.remove(out);
    // pg_recvlogical writes each message and a newline.
    if (written < bytes) throw new Error(`pg_recvlogical wrote ${written} of ${bytes} bytes`);
    return {
      messages: messages.length,
      changes,
      bytes,
      oursDecode: rates.oursDecode,
      oursChanges: rates.oursChanges,
      pgjsParsers: rates.pgjsParsers,
      pgjsText: rates.pgjsText,
      recvlogical: changes / tRecv,
    };
  } finally {
    await pg.sql`SELECT pg_drop_replication_slot(${SLOT})`.catch(() => {});
    await pg.sql.unsafe(`DROP PUBLICATION IF EXISTS ${SLOT}`);
  }
}
