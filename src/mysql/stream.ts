/**
 * Binlog events turned into ChangeStream calls: transactions by their BEGIN/GTID and
 * COMMIT/XID, rows rendered against the table's schema, DDL that empties a replicated table
 * or reshapes it (snapshotted again online), and the position (file, offset, GTID set) each
 * commit reaches.
 */
import type { Position } from "../core/change.ts";
import type { Log } from "../core/log.ts";
import type { BatchOutput } from "../core/source.ts";
import { ChangeStream } from "../core/stream.ts";
import { BinlogDecoder, type BinlogEvent, type EventHeader } from "./binlog.ts";
import { ddlTargets } from "./ddl.ts";
import { addGtid } from "./gtid.ts";
import { decodeRowsEvent } from "./rows.ts";
import { schemaForEvent } from "./tablemeta.ts";
import type { TableMap } from "./binlog.ts";
import type { TableSchema } from "./types.ts";
import type { BinlogSpot } from "./visibility.ts";

interface EventSchema {
  current: TableSchema | undefined;
  schema: TableSchema | undefined;
  columns: string[];
}

/** What the session lends the translation: the selection and the tables' schemas. */
export interface BinlogTables {
  log: Log;
  /** The URL's database: a DDL statement's default schema when it names none. */
  database: string;
  selected(schema: string, table: string): boolean;
  keyName(schema: string, table: string): string;
  /** The table's schema as the server has it now (cached until the next DDL). */
  schemaOf(schema: string, table: string): Promise<TableSchema | undefined>;
  /** A DDL statement ran: cached schemas are stale. */
  changed(): void;
  /** A replicated table is gone (dropped, renamed away). */
  dropped(table: string): void;
}

export class BinlogFollower {
  readonly #t: BinlogTables;
  readonly #cs: ChangeStream;
  readonly #decoder = new BinlogDecoder();
  #file: string;
  #gtid?: string;
  #txnGtid?: string;
  #lastOffset: number;
  /** Tables to snapshot again when the current transaction commits. */
  readonly #again = new Set<string>();
  /**
   * Per table map (the decoder hands the same one again for the same bytes): the schema
   * built from it and the table's, and its column names, kept while the table's schema
   * is the same one (so the row plan and the JSON lead-ins are reused too).
   */
  readonly #bySchema = new WeakMap<TableMap, EventSchema>();

  constructor(t: BinlogTables, from: Position, out: BatchOutput) {
    this.#t = t;
    this.#cs = new ChangeStream(out);
    this.#file = String(from.file);
    this.#gtid = from.gtid === undefined || from.gtid === null ? undefined : String(from.gtid);
    this.#lastOffset = Number(from.offset);
  }

  /** One raw event from the server (a MySQL 8 compressed transaction: each inside it). */
  async feed(raw: Uint8Array): Promise<void> {
    const { header, event } = this.#decoder.decode(raw);
    if (event.kind !== "transaction_payload") return await this.#handle(header, event);
    // Its events end where the payload ends.
    for (const inner of event.events) {
      await this.#handle({ ...inner.header, logPos: header.logPos }, inner.event);
    }
  }

  /** Where the stream is: the end of the last transaction (or heartbeat) it passed. */
  passed(): BinlogSpot {
    return { file: this.#file, offset: this.#lastOffset };
  }

  #pos(offset: number): Position {
    const file = this.#file;
    return this.#gtid === undefined ? { file, offset } : { file, offset, gtid: this.#gtid };
  }

  /** The event ending a transaction: its GTID joins the set, its end is the position. */
  #ended(header: EventHeader): Position {
    if (this.#txnGtid) this.#gtid = addGtid(this.#gtid, this.#txnGtid);
    this.#lastOffset = header.logPos;
    return this.#pos(header.logPos);
  }

  async #handle(header: EventHeader, event: BinlogEvent): Promise<void> {
    const cs = this.#cs;
    switch (event.kind) {
      case "rotate":
        this.#file = event.file;
        this.#lastOffset = Number(event.position);
        break;
      case "mariadb_gtid":
        this.#txnGtid = `${event.domain}-${event.server}-${event.seq}`;
        if (!event.standalone) cs.begin();
        break;
      case "gtid":
        this.#txnGtid = event.gtid;
        break;
      case "query":
        await this.#query(event.query.trim(), event.schema, header);
        break;
      case "xid":
        await this.#commit(header);
        break;
      case "rows":
        await this.#rows(event);
        await cs.settle();
        break;
      case "heartbeat":
        // Idle: let the saved position follow the server's.
        if (!cs.open && header.logPos > this.#lastOffset && event.file === this.#file) {
          this.#lastOffset = header.logPos;
          await cs.heartbeat(this.#pos(header.logPos));
        }
        break;
      default:
        break;
    }
  }

  async #query(q: string, schema: string, header: EventHeader): Promise<void> {
    const cs = this.#cs;
    if (/^BEGIN$/i.test(q)) cs.begin();
    else if (/^COMMIT$/i.test(q)) await this.#commit(header);
    else if (/^\s*(ALTER|CREATE|DROP|RENAME|TRUNCATE)\b/i.test(q)) {
      const inTxn = cs.open;
      await this.#ddl(q, schema);
      if (!inTxn) await this.#commit(header);
    }
  }

  /** The transaction ends; tables a DDL statement reshaped are snapshotted again from here. */
  async #commit(header: EventHeader): Promise<void> {
    const time = new Date(header.timestamp * 1000);
    const again = [...this.#again];
    this.#again.clear();
    const at = this.#ended(header);
    if (again.length) await this.#cs.commitResnapshot(at, time, again);
    else await this.#cs.commit(at, time);
  }

  /**
   * A DDL statement: the tables it empties lose their keys, and the replicated tables it
   * reshapes are snapshotted again (their rows changed shape without row events; a
   * rename's new name holds the old one's rows).
   */
  async #ddl(q: string, schema: string): Promise<void> {
    const t = this.#t;
    // Table definitions may have changed: read them again before the next rows.
    t.changed();
    const ddl = ddlTargets(q, schema || t.database);
    const again = ddl.reshaped.filter(([s, name]) => t.selected(s, name))
      .map(([s, name]) => t.keyName(s, name));
    for (const name of again) this.#again.add(name);
    // A renamed table's old name is snapshotted too, not emptied here: the snapshot removes
    // its keys when it is gone, and reads it again when it came back (a swap, a rename back)
    // in the stream's order, where an emptying here would race the snapshot's reads.
    for (const [s, name] of ddl.emptied) {
      const table = t.keyName(s, name);
      if (t.selected(s, name) && !again.includes(table)) this.#cs.truncate(table);
    }
    // The definitions the state records follow (a dropped or renamed table's goes).
    for (const [s, name] of [...ddl.emptied, ...ddl.reshaped]) {
      if (t.selected(s, name) && !(await t.schemaOf(s, name))) t.dropped(t.keyName(s, name));
    }
  }

  async #rows(event: Extract<BinlogEvent, { kind: "rows" }>): Promise<void> {
    const t = this.#t;
    const map = this.#decoder.tableMap(event.tableId);
    if (!map || !t.selected(map.schema, map.table)) return;
    const current = await t.schemaOf(map.schema, map.table);
    let known = this.#bySchema.get(map);
    if (!known || known.current !== current) {
      const schema = schemaForEvent(map, current);
      const columns = schema?.columns.map((col) => col.name) ?? [];
      this.#bySchema.set(map, known = { current, schema, columns });
    }
    const { schema, columns } = known;
    if (!schema) {
      throw new Error(
        `table ${map.schema}.${map.table} changed since this event was written and ` +
          "the binlog has no column metadata: set binlog_row_metadata = FULL",
      );
    }
    if (!schema.keyColumns.length) return;
    const table = t.keyName(map.schema, map.table);
    const cs = this.#cs;
    for (const r of decodeRowsEvent(event, map, schema)) {
      const after = r.after;
      if (r.op === "delete") cs.delete(table, r.before!.key);
      else if (r.op === "update" && r.before && r.before.key !== after!.key) {
        cs.move(table, r.before.key, after!.key, columns, after!.cells);
      } else cs.put(table, after!.key, columns, after!.cells);
    }
  }
}
