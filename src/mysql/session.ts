/**
 * One connected attempt at a MySQL or MariaDB source: the plan (resume by file and offset,
 * by GTID on another server, or dump and why), the dump, the binlog stream, and the chunk
 * reads of online snapshots.
 */
import type { MysqlSourceOptions } from "./options.ts";
import type { Position } from "../core/change.ts";
import { keyTableName, splitKeyTableName } from "../core/keys.ts";
import type {
  BatchOutput,
  DumpProgress,
  DumpResult,
  SavedState,
  SourceIdentity,
  SourceSession,
  StartPlan,
} from "../core/source.ts";
import {
  driftedTables,
  sameDefinition,
  type TableDefinition,
  type TableDefinitions,
} from "../core/tables.ts";
import type { ChunkSource } from "../core/snapshot_types.ts";
import { DumpBatches, KeylessWarning } from "../core/stream.ts";
import { type MysqlConn, MysqlConnectionError } from "./conn.ts";
import type { MysqlUrl } from "./url.ts";
import { withConfigErrors } from "../core/errors.ts";
import {
  connectTo,
  mysqlConfigErrors,
  requireSettings,
  type ServerInfo,
  serverInfo,
} from "./connect.ts";
import { dumpTables, hasSnapshotPosition, startSnapshot } from "./dump.ts";
import { chunkSession, MysqlChunks } from "./chunks.ts";
import { applyKeyConfig, loadSchemas, qualifiedName, SYSTEM_SCHEMAS } from "./schema.ts";
import { requestBinlog } from "./replica.ts";
import { BinlogFollower, type BinlogTables } from "./stream.ts";
import { binlogAfter, gtidGap, resumableGtid } from "./resume.ts";
import type { TableSchema } from "./types.ts";

/** How the state records a table (design: Position and state). */
function definitionOf(t: TableSchema): TableDefinition {
  return {
    id: `${t.schema}.${t.table}`,
    columns: t.columns.map((c) =>
      `${c.name}:${c.columnType}${c.charset ? `:${c.charset}` : ""}${c.json ? ":json" : ""}`
    ),
    key: t.keyColumns.map((i) => t.columns[i].name),
  };
}

export class MysqlSession implements SourceSession {
  readonly driver = "mysql";
  identity: SourceIdentity = {};
  #conn?: MysqlConn;
  #binlog?: MysqlConn;
  /** The stream while it runs: chunk reads wait until what it passed is visible. */
  #follower?: BinlogFollower;
  #info?: ServerInfo;
  #schemas = new Map<string, TableSchema>();
  #keyless: KeylessWarning;
  /**
   * Resume on another server by GTID. On the same server file and offset are used: MariaDB
   * 10.11 was seen to crash (signal 11) under GTID binlog dumps in our parallel tests.
   */
  #gtidStart = false;
  /** The replicated tables as of the newest change handed out (replaced, never mutated). */
  #defs: TableDefinitions = {};
  /** The server tells a consistent snapshot's binlog position (MariaDB): a dump is possible. */
  #snapshotDump = false;
  #dumpConn?: MysqlConn;

  constructor(readonly opts: MysqlSourceOptions, readonly url: MysqlUrl) {
    this.#keyless = new KeylessWarning(opts.log);
  }

  async open(_signal: AbortSignal): Promise<void> {
    this.#conn = await connectTo(this.url);
    const info = await serverInfo(this.#conn);
    requireSettings(info);
    // Needs REPLICATION CLIENT (BINLOG MONITOR on MariaDB 10.5+): fails early and clearly.
    await this.#conn.query("SHOW MASTER STATUS");
    if (info.rowMetadata.toUpperCase() !== "FULL") {
      this.opts.log.warn(
        "binlog_row_metadata is not FULL: row events written before an ALTER TABLE cannot be " +
          "read once the table changed; set binlog_row_metadata = FULL",
        { binlog_row_metadata: info.rowMetadata },
      );
    }
    this.#info = info;
    this.#snapshotDump = await hasSnapshotPosition(this.#conn);
    this.identity = {
      server: info.mariadb ? `mariadb:${info.serverId}` : info.uuid,
      serverId: info.serverId,
    };
  }

  /** Whether a table is replicated: the filter, and the URL's database unless --tables. */
  #selected(schema: string, table: string): boolean {
    if (SYSTEM_SCHEMAS.includes(schema.toLowerCase())) return false;
    if (this.url.database && !this.opts.filter.hasIncludes && schema !== this.url.database) {
      return false;
    }
    return this.opts.filter.matches(schema, table);
  }

  #keyName(schema: string, table: string): string {
    return keyTableName(schema, table, this.url.database);
  }

  async #databases(): Promise<string[]> {
    const r = await this.#conn!.query("SHOW DATABASES");
    return r.rows.map(([d]) => d!).filter((d) =>
      !SYSTEM_SCHEMAS.includes(d.toLowerCase()) &&
      (this.opts.filter.hasIncludes || !this.url.database || d === this.url.database)
    );
  }

  async #loadAll(): Promise<TableSchema[]> {
    const all = applyKeyConfig(
      await loadSchemas(this.#conn!, await this.#databases(), this.#info!.mariadb),
      this.opts.keys,
    );
    const out: TableSchema[] = [];
    for (const t of all.values()) {
      if (!this.#selected(t.schema, t.table)) continue;
      this.#schemas.set(`${t.schema}.${t.table}`, t);
      out.push(t);
    }
    this.#keyless.warn(
      out.filter((t) => !t.keyColumns.length).map((t) => `${t.schema}.${t.table}`),
    );
    return out;
  }

  async plan(state: SavedState | null): Promise<StartPlan> {
    const plan = await this.#plan(state);
    if (plan.mode !== "dump" || this.#snapshotDump) return plan;
    return await this.#snapshotAll(plan.reason, state);
  }

  async #plan(state: SavedState | null): Promise<StartPlan> {
    if (!state) return { mode: "dump", reason: "no saved state" };
    if (state.driver !== "mysql") return { mode: "dump", reason: "state is from another driver" };
    if (state.position.resync) {
      return { mode: "dump", reason: `table ${state.position.resync} was altered` };
    }
    if (state.source.server !== this.identity.server) {
      // GTIDs name transactions the same on every server of a replication topology, so a
      // promoted replica can carry on from them; file and offset belong to one server.
      const gtid = resumableGtid(this.#info!.mariadb, state.position.gtid);
      if (!gtid) return { mode: "dump", reason: "the server's identity changed" };
      const missing = await gtidGap(this.#conn!, this.#info!.mariadb, gtid);
      if (missing) return { mode: "dump", reason: `the server's identity changed and ${missing}` };
      const resnapshot = await this.#drift(state);
      this.#gtidStart = true;
      return { mode: "resume", position: { ...state.position, gtid }, resnapshot };
    }
    const file = String(state.position.file);
    const offset = Number(state.position.offset);
    const logs = await this.#conn!.query("SHOW BINARY LOGS");
    const have = logs.rows.find(([name]) => name === file);
    const newest = logs.rows[logs.rows.length - 1];
    // Binlog names count up: a saved one past the newest, or an offset past a file's end,
    // is a position this server never reached, so etcd holds another history.
    if (have ? Number(have[1]) < offset : newest && binlogAfter(file, newest[0]!)) {
      return {
        mode: "dump",
        warn: true,
        reason: `the saved position ${file}:${offset} is past this server's binlog end ` +
          `${newest?.[0]}:${newest?.[1]}: etcd holds another history (a restored backup or ` +
          "another server with the same identity?)",
      };
    }
    if (!have) return { mode: "dump", reason: `binlog ${file} is no longer on the server` };
    return { mode: "resume", position: state.position, resnapshot: await this.#drift(state) };
  }

  /**
   * Where no consistent snapshot tells its binlog position (MySQL), a dump is every table
   * snapshotted online while streaming from the server's position now.
   */
  async #snapshotAll(reason: string, state: SavedState | null): Promise<StartPlan> {
    const keyed = (await this.#loadAll()).filter((t) => t.keyColumns.length);
    this.#defs = this.#definitions(keyed);
    const s = await this.#conn!.query("SHOW MASTER STATUS");
    if (!s.rows.length) throw new Error("SHOW MASTER STATUS shows no binlog position");
    const [file, offset, , , gtid] = s.rows[0];
    const position: Position = { file: file!, offset: Number(offset) };
    if (gtid) position.gtid = gtid.replace(/\s+/g, "");
    this.#gtidStart = false;
    // The saved state's tables too: those gone since lose their keys.
    const tables = [...new Set([...Object.keys(this.#defs), ...Object.keys(state?.tables ?? {})])];
    return { mode: "resume", position, resnapshot: { tables, reason } };
  }

  #definitions(keyed: TableSchema[]): TableDefinitions {
    return Object.fromEntries(
      keyed.map((t) => [this.#keyName(t.schema, t.table), definitionOf(t)]),
    );
  }

  /**
   * The tables changed, gone or new with rows since the saved state (the binlog does not
   * show such a change, or never logged it); sets the definitions.
   */
  async #drift(state: SavedState): Promise<{ tables: string[]; reason: string } | undefined> {
    const keyed = (await this.#loadAll()).filter((t) => t.keyColumns.length);
    const current = this.#definitions(keyed);
    this.#defs = current;
    // States written before definitions were recorded: take today's as the starting point.
    if (!state.tables) return undefined;
    return await driftedTables(state.tables, current, async (name) => {
      const t = keyed.find((k) => this.#keyName(k.schema, k.table) === name)!;
      const r = await this.#conn!.query(
        `SELECT 1 FROM ${qualifiedName(t.schema, t.table)} LIMIT 1`,
      );
      return r.rows.length > 0;
    });
  }

  tables(): TableDefinitions {
    return this.#defs;
  }

  /** A table the stream now carries (new, say) goes into the definitions the state records. */
  #record(t: TableSchema) {
    if (!t.keyColumns.length || !this.#selected(t.schema, t.table)) return;
    const name = this.#keyName(t.schema, t.table);
    const def = definitionOf(t);
    const old = this.#defs[name];
    if (!old || !sameDefinition(old, def)) this.#defs = { ...this.#defs, [name]: def };
  }

  dump(out: BatchOutput, signal: AbortSignal, progress?: DumpProgress): Promise<DumpResult> {
    return withConfigErrors(mysqlConfigErrors(this.url), () => this.#dump(out, signal, progress));
  }

  async #dump(
    out: BatchOutput,
    signal: AbortSignal,
    progress?: DumpProgress,
  ): Promise<DumpResult> {
    if (!this.#snapshotDump) {
      throw new Error("this server gives no consistent snapshot position: sync plans none");
    }
    const conn = await chunkSession(await connectTo(this.url));
    this.#dumpConn = conn;
    const abort = () => conn.close();
    signal.addEventListener("abort", abort, { once: true });
    try {
      const position = await startSnapshot(conn, this.#info!.mariadb);
      // Listed after the snapshot began: every table it holds is known.
      const tables = (await this.#loadAll()).filter((t) => t.keyColumns.length);
      this.#defs = this.#definitions(tables);
      await this.#estimates();
      const batches = new DumpBatches(out, signal);
      const targets = tables.map((t) => ({ table: t, name: this.#keyName(t.schema, t.table) }));
      await progress?.started(position, targets.map((t) => t.name));
      const done = progress && ((name: string, rows: number) => progress.finished(name, rows));
      await dumpTables(conn, targets, batches, signal, this.opts.log, done);
      await batches.flush();
      await conn.query("COMMIT");
      return {
        position,
        tables: targets.map((t) => t.name),
        owns: (name) => this.#selected(...splitKeyTableName(name, this.url.database)),
      };
    } finally {
      signal.removeEventListener("abort", abort);
      conn.close();
      this.#dumpConn = undefined;
    }
  }

  /** Each keyed table's estimated rows, for the dump's progress. */
  async #estimates(): Promise<void> {
    const est = await this.#conn!.query(
      `SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES
       WHERE TABLE_TYPE = 'BASE TABLE'`,
    );
    for (const [s, t, n] of est.rows) {
      if (this.#schemas.get(`${s}.${t}`)?.keyColumns.length) {
        this.opts.onTableEstimate?.(this.#keyName(s!, t!), Number(n ?? 0));
      }
    }
  }

  stream(from: Position, out: BatchOutput, signal: AbortSignal): Promise<void> {
    return withConfigErrors(mysqlConfigErrors(this.url), () => this.#stream(from, out, signal));
  }

  async #stream(from: Position, out: BatchOutput, signal: AbortSignal): Promise<void> {
    const c = await connectTo(this.url);
    this.#binlog = c;
    const onAbort = () => c.close();
    signal.addEventListener("abort", onAbort, { once: true });
    // A stop that came while connecting would otherwise never end the read.
    if (signal.aborted) onAbort();
    const file = String(from.file);
    const offset = Number(from.offset);
    const gtid = from.gtid === undefined || from.gtid === null ? "" : String(from.gtid);
    try {
      // By GTID on another server (it finds the file; the first ROTATE names it).
      const events = await requestBinlog(c, {
        mariadb: this.#info!.mariadb,
        serverId: this.opts.driver.serverId,
        from: this.#gtidStart ? { gtid } : { file, offset },
      });
      const follower = new BinlogFollower(this.#binlogTables(), from, out);
      this.#follower = follower;
      if (this.#gtidStart) this.opts.log.info("streaming", { gtid });
      else this.opts.log.info("streaming", { file, offset });
      for await (const raw of events) await follower.feed(raw);
      throw new MysqlConnectionError("the server ended the binlog stream");
    } catch (e) {
      if (signal.aborted) return;
      throw e;
    } finally {
      signal.removeEventListener("abort", onAbort);
      c.close();
      this.#binlog = undefined;
      this.#follower = undefined;
    }
  }

  /** What the binlog translation needs of this session. */
  #binlogTables(): BinlogTables {
    return {
      log: this.opts.log,
      database: this.url.database,
      selected: (s, t) => this.#selected(s, t),
      keyName: (s, t) => this.#keyName(s, t),
      schemaOf: (s, t) => this.#schemaOf(s, t),
      changed: () => this.#schemas.clear(),
      dropped: (table) => this.#forget(table),
    };
  }

  async #schemaOf(schema: string, table: string): Promise<TableSchema | undefined> {
    const id = `${schema}.${table}`;
    let t = this.#schemas.get(id);
    if (!t) {
      const m = applyKeyConfig(
        await loadSchemas(this.#conn!, [schema], this.#info!.mariadb, table),
        this.opts.keys,
      );
      t = m.get(id);
      if (t) {
        this.#schemas.set(id, t);
        this.#record(t);
      }
    }
    return t;
  }

  /** Online snapshot reads, on a connection of their own. */
  chunks(): ChunkSource {
    return new MysqlChunks({
      connect: () => connectTo(this.url),
      describe: (conn, table) => this.#describe(conn, table),
      streamAt: () => this.#follower?.passed(),
    });
  }

  /** A replicated table (by its key name) as the server has it now. */
  async #describe(conn: MysqlConn, table: string): Promise<TableSchema | undefined> {
    const [schema, name] = splitKeyTableName(table, this.url.database);
    if (!this.#selected(schema, name)) return undefined;
    const m = applyKeyConfig(
      await loadSchemas(conn, [schema], this.#info!.mariadb, name),
      this.opts.keys,
    );
    return m.get(`${schema}.${name}`);
  }

  #forget(name: string) {
    if (!(name in this.#defs)) return;
    const { [name]: _, ...rest } = this.#defs;
    this.#defs = rest;
  }

  confirm(_position: Position): void {
    // The binlog is the server's own: nothing to release. etcd's state key is the record.
  }

  close(): Promise<void> {
    this.#dumpConn?.close();
    this.#binlog?.close();
    this.#conn?.close();
    return Promise.resolve();
  }
}
