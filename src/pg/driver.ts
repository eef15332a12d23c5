/**
 * The pgx driver: a PostgreSQL database as a source (design: Shape, Dump and resync).
 *
 * A replication connection creates the slot with an exported snapshot; the dump reads every
 * selected table inside that snapshot on `--dump-parallel` ordinary connections; streaming
 * then follows the slot with pgoutput and confirms only what etcd has committed.
 */
import type { Position } from "../core/change.ts";
import { UNCHANGED } from "../core/change.ts";
import { rowKey, splitKeyTableName } from "../core/keys.ts";
import { JSON_NULL } from "../core/json.ts";
import { ChangeStream, DumpBatches, KeylessWarning } from "../core/stream.ts";
import {
  definitionDrift,
  sameDefinition,
  type TableDefinition,
  type TableDefinitions,
} from "../core/tables.ts";
import {
  type BatchOutput,
  ConfigError,
  type DumpResult,
  type SavedState,
  type SourceFactory,
  type SourceIdentity,
  type SourceOptions,
  type SourceSession,
  type StartPlan,
} from "../core/source.ts";
import { ident, literal, type PgConn, PgConnectionError } from "./conn.ts";
import { errorFromBody } from "./protocol.ts";
import { parsePgUrl, type PgUrl } from "./url.ts";
import { configErrorFor, connectPrimary } from "./connect.ts";
import { check, drop, inspect } from "./admin.ts";
import {
  identityProblem,
  listTables,
  qualified,
  relationSignature,
  tableByOid,
  type TableInfo,
  Types,
} from "./catalog.ts";
import { decodePgOutput, formatLsn, parseLsn, type TupleValue } from "./pgoutput.ts";
import { parseReplicationMessage, pgTimeToDate, standbyStatus } from "./replication.ts";
import { historyText, timelineEnd } from "./timeline.ts";
import {
  createLogicalSlot,
  dropSlot,
  identifySystem,
  startLogicalReplication,
  timelineHistory,
} from "./commands.ts";

export function createPgSource(opts: SourceOptions): SourceFactory {
  return {
    driver: "pgx",
    connect: async (signal) => {
      const url = parsePgUrl(opts.url);
      const s = new PgSession(opts, url);
      try {
        await s.open(signal);
      } catch (e) {
        await s.close();
        throw configErrorFor(e, url);
      }
      return s;
    },
    check: () => check(opts),
    inspect: (state) => inspect(opts, state),
    drop: () => drop(opts),
  };
}

function baselineOf(tables: TableInfo[]): Map<number, { keyName: string; signature: string }> {
  return new Map(tables.map((t) => [t.oid, {
    keyName: t.keyName,
    signature: relationSignature(t.schema, t.name, t.columns),
  }]));
}

/** How the state records a table (design: Position and state). */
function definitionOf(
  oid: number,
  columns: readonly { name: string; typeOid: number; typmod: number }[],
  key: string[],
  identity: string,
): TableDefinition {
  return {
    id: String(oid),
    columns: columns.map((c) => `${c.name}:${c.typeOid}:${c.typmod}`),
    key,
    identity,
  };
}

function definitionsOf(tables: TableInfo[]): TableDefinitions {
  return Object.fromEntries(
    tables.map((t) => [t.keyName, definitionOf(t.oid, t.columns, t.keyColumns, t.replicaIdentity)]),
  );
}

type RelationMessage = Extract<ReturnType<typeof decodePgOutput>, { tag: "relation" }>;

interface StreamRelation {
  info?: TableInfo;
  /** Column names and types, to notice ALTER TABLE. */
  signature: string;
  selected: boolean;
  columns: string[];
  renderers: ((text: string) => string)[];
  keyIdx: number[];
  /**
   * The replica identity leaves out a key column (USING INDEX): old keys cannot name etcd
   * keys, so its deletes and key changes are left to the dump this forces.
   */
  identityGap?: boolean;
}

/**
 * The tables a `FOR TABLE` publication lists: those with a key. PostgreSQL refuses UPDATE
 * and DELETE on a published table without a replica identity, so keyless ones stay out.
 */
function published(tables: TableInfo[]): string[] {
  return tables.filter((t) => t.keyColumns.length).map(qualified);
}

class PgSession implements SourceSession {
  readonly driver = "pgx";
  identity: SourceIdentity = {};
  #repl?: PgConn;
  #meta?: PgConn;
  #workers: PgConn[] = [];
  #version = 0;
  #protoVersion = 1;
  #types = new Types();
  #confirmed = 0n;
  #streaming = false;
  #keyless: KeylessWarning;
  /**
   * What each replicated table (by OID) looked like when its rows were last read: at the
   * dump's snapshot, or the catalogue when streaming resumed. A Relation message that
   * differs means a rename or ALTER the stream itself does not carry.
   */
  #baseline?: Map<number, { keyName: string; signature: string }>;
  /** The replicated tables as of the newest change handed out (replaced, never mutated). */
  #defs: TableDefinitions = {};
  /** The server's WAL end when this session connected (IDENTIFY_SYSTEM). */
  #walEnd = 0n;

  constructor(readonly opts: SourceOptions, readonly url: PgUrl) {
    this.#keyless = new KeylessWarning(opts.log);
  }

  get #log() {
    return this.opts.log;
  }

  async open(signal: AbortSignal): Promise<void> {
    const abort = () => this.#repl?.abort();
    signal.addEventListener("abort", abort, { once: true });
    try {
      this.#repl = await connectPrimary(this.url, true);
      const sys = await identifySystem(this.#repl);
      this.#walEnd = sys.walEnd;
      this.#version = Number((await this.#repl.query("SHOW server_version_num")).rows[0][0]);
      if (this.#version < 100000) {
        throw new ConfigError(
          `PostgreSQL ${this.#repl.params.get("server_version")} is too old: 10 or later needed`,
        );
      }
      const wal = (await this.#repl.query("SHOW wal_level")).rows[0][0];
      if (wal !== "logical") {
        throw new ConfigError(
          `wal_level is ${wal}: set wal_level = logical in postgresql.conf and restart PostgreSQL`,
        );
      }
      this.#protoVersion = this.#version >= 160000
        ? 4
        : this.#version >= 150000
        ? 3
        : this.#version >= 140000
        ? 2
        : 1;
      if (this.#version < 110000) {
        // pgoutput sends TRUNCATE from PostgreSQL 11 on; nothing else in the stream shows it.
        this.#log.warn(
          "PostgreSQL 10 does not replicate TRUNCATE: a truncated table stays in etcd until the next dump; use DELETE or upgrade",
        );
      }
      this.identity = {
        system: sys.systemId,
        database: this.url.database,
        slot: this.opts.pgx.slot,
        timeline: sys.timeline,
      };
    } finally {
      signal.removeEventListener("abort", abort);
    }
  }

  async #metaConn(): Promise<PgConn> {
    if (!this.#meta || this.#meta.closed) this.#meta = await connectPrimary(this.url, false);
    return this.#meta;
  }

  async #slot(): Promise<{ confirmed: bigint | null; active: boolean; plugin: string } | null> {
    const r = await this.#repl!.query(
      `SELECT confirmed_flush_lsn, active, plugin, database FROM pg_replication_slots
       WHERE slot_name = ${literal(this.opts.pgx.slot)}`,
    );
    if (!r.rows.length) return null;
    const [lsn, active, plugin, database] = r.rows[0];
    if (plugin !== "pgoutput" || database !== this.url.database) {
      throw new ConfigError(
        `replication slot ${this.opts.pgx.slot} exists but is not a pgoutput slot of database ` +
          `${this.url.database}: choose another --slot or drop it`,
      );
    }
    return { confirmed: lsn ? parseLsn(lsn) : null, active: active === "t", plugin: plugin! };
  }

  /** Create the publication when missing; keep its table list in step with the filter. */
  async #ensurePublication(tables: TableInfo[] | null): Promise<boolean> {
    const meta = await this.#metaConn();
    const pub = this.opts.pgx.publication;
    const r = await meta.query(
      `SELECT puballtables FROM pg_publication WHERE pubname = ${literal(pub)}`,
    );
    const all = this.opts.filter.all;
    if (!r.rows.length) {
      if (all) await meta.query(`CREATE PUBLICATION ${ident(pub)} FOR ALL TABLES`);
      else {
        const names = published(tables ?? await this.#tables(meta));
        await meta.query(
          names.length
            ? `CREATE PUBLICATION ${ident(pub)} FOR TABLE ${names.join(", ")}`
            : `CREATE PUBLICATION ${ident(pub)}`,
        );
      }
      this.#log.info("publication created", { publication: pub });
      return true;
    }
    if (all || r.rows[0][0] === "t") return false;
    const list = tables ?? await this.#tables(meta);
    const have = await meta.query(
      `SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = ${literal(pub)}`,
    );
    const want = new Set(published(list));
    const got = new Set(have.rows.map(([s, t]) => qualified({ schema: s!, name: t! })));
    if (want.size === got.size && [...want].every((w) => got.has(w))) return false;
    await meta.query(
      want.size
        ? `ALTER PUBLICATION ${ident(pub)} SET TABLE ${[...want].join(", ")}`
        : `DROP PUBLICATION ${ident(pub)}; CREATE PUBLICATION ${ident(pub)}`,
    );
    this.#log.info("publication tables updated", { publication: pub, tables: want.size });
    return true;
  }

  async plan(state: SavedState | null): Promise<StartPlan> {
    try {
      return await this.#plan(state);
    } catch (e) {
      throw configErrorFor(e, this.url);
    }
  }

  async #plan(state: SavedState | null): Promise<StartPlan> {
    if (!state) return { mode: "dump", reason: "no saved state" };
    if (state.position.resync) {
      return { mode: "dump", reason: `table ${state.position.resync} was altered` };
    }
    if (state.driver !== "pgx") return { mode: "dump", reason: "state is from another driver" };
    if (state.source.system !== this.identity.system) {
      return { mode: "dump", reason: "the server's system identifier changed" };
    }
    if (state.source.slot !== this.opts.pgx.slot) {
      return { mode: "dump", reason: "the slot name changed" };
    }
    const lost = await this.#lostInFailover(state);
    if (lost) return { mode: "dump", reason: lost };
    const at = parseLsn(String(state.position.lsn));
    if (at > this.#walEnd) {
      // Never confirm it: the slot would skip this server's own changes up to there.
      return {
        mode: "dump",
        warn: true,
        reason: `the saved position ${formatLsn(at)} is past this server's WAL end ` +
          `${formatLsn(this.#walEnd)}: etcd holds another history (a restored backup or a ` +
          "clone of the database?)",
      };
    }
    const slot = await this.#slot();
    if (!slot) {
      return { mode: "dump", reason: `slot ${this.opts.pgx.slot} does not exist on this server` };
    }
    if (slot.confirmed !== null && slot.confirmed > at) {
      return {
        mode: "dump",
        reason: `slot confirmed ${formatLsn(slot.confirmed)}, past the saved ${formatLsn(at)}`,
      };
    }
    if (await this.#ensurePublication(null)) {
      return { mode: "dump", reason: "the table selection changed" };
    }
    const meta = await this.#metaConn();
    const tables = await this.#tables(meta);
    this.#checkTables(tables);
    const keyed = tables.filter((t) => t.keyColumns.length);
    const current = definitionsOf(keyed);
    // States written before definitions were recorded: take today's as the starting point.
    if (state.tables) {
      const drift = await definitionDrift(state.tables, current, async (name) => {
        const t = keyed.find((k) => k.keyName === name)!;
        return (await meta.query(`SELECT 1 FROM ${qualified(t)} LIMIT 1`)).rows.length > 0;
      });
      if (drift) return { mode: "dump", warn: true, reason: drift };
    }
    this.#defs = current;
    this.#baseline = baselineOf(keyed);
    return { mode: "resume", position: { lsn: formatLsn(at) } };
  }

  tables(): TableDefinitions {
    return this.#defs;
  }

  /**
   * After a promotion (a new timeline) the saved position may lie past the point where its
   * timeline ended on this server: etcd then holds changes the server never had, and the
   * server's first changes sit below the position. Returns why a dump is needed, if it is.
   */
  async #lostInFailover(state: SavedState): Promise<string | undefined> {
    const saved = Number(state.source.timeline ?? 0); // states from before timelines: unknown
    const now = Number(this.identity.timeline);
    if (!saved || saved === now) return undefined;
    const history = await timelineHistory(this.#repl!, now);
    const end = timelineEnd(historyText(history), saved);
    const at = parseLsn(String(state.position.lsn));
    if (end === null) return `timeline ${saved} is not in the history of timeline ${now}`;
    if (at <= end) return undefined;
    return `timeline ${saved} ended at ${formatLsn(end)} on this server, before the saved ` +
      `${formatLsn(at)} (a failover lost changes etcd has)`;
  }

  /** The tables the filter selects, as `conn` sees them. */
  #tables(conn: PgConn): Promise<TableInfo[]> {
    return listTables(conn, this.#version, this.opts.filter, this.opts.keys);
  }

  /** Warn of tables without a key; refuse a table whose deletes could not be mapped to keys. */
  #checkTables(tables: TableInfo[]) {
    this.#warnNoKey(tables);
    for (const t of tables) {
      const problem = identityProblem(t);
      if (problem) throw new ConfigError(problem);
    }
  }

  #warnNoKey(tables: TableInfo[]) {
    this.#warnNoKeyNames(
      tables.filter((t) => !t.keyColumns.length).map((t) => `${t.schema}.${t.name}`),
    );
  }

  #warnNoKeyNames(missing: string[]) {
    // FOR ALL TABLES includes them, and PostgreSQL then refuses their UPDATEs and DELETEs.
    this.#keyless.warn(
      missing,
      this.opts.filter.all
        ? {
          hint: "the publication (FOR ALL TABLES) makes PostgreSQL refuse their UPDATE and " +
            "DELETE: give each a primary key, or REPLICA IDENTITY FULL and --keys, or " +
            "--exclude them",
        }
        : undefined,
    );
  }

  async dump(out: BatchOutput, signal: AbortSignal): Promise<DumpResult> {
    try {
      return await this.#dump(out, signal);
    } catch (e) {
      throw configErrorFor(e, this.url);
    }
  }

  async #dump(out: BatchOutput, signal: AbortSignal): Promise<DumpResult> {
    const repl = this.#repl!;
    const slotName = this.opts.pgx.slot;
    // Before a slot exists to hold WAL for a dump that cannot succeed.
    this.#checkTables(await this.#tables(await this.#metaConn()));
    await this.#takeOverSlot();
    const existing = await this.#slot();
    if (existing) {
      if (existing.active) {
        throw new Error(`slot ${slotName} is in use by another process; waiting for it`);
      }
      await dropSlot(repl, slotName);
    }
    await this.#ensurePublication(null);
    const { consistentPoint, snapshot } = await createLogicalSlot(repl, slotName);
    this.#log.info("slot created", { slot: slotName, consistent_point: consistentPoint });

    const openWorker = async () => {
      const c = await connectPrimary(this.url, false);
      this.#workers.push(c);
      await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      await c.query(`SET TRANSACTION SNAPSHOT ${literal(snapshot)}`);
      return c;
    };
    const first = await openWorker();
    const tables = await this.#tables(first);
    this.#checkTables(tables);
    const keyed = tables.filter((t) => t.keyColumns.length);
    this.#baseline = baselineOf(keyed);
    this.#defs = definitionsOf(keyed);
    await this.#types.load(first, keyed.flatMap((t) => t.columns.map((c) => c.typeOid)));
    for (const t of keyed) this.opts.onTableEstimate?.(t.keyName, Math.max(0, t.estimate));

    const queue = [...keyed].sort((a, b) => b.estimate - a.estimate);
    const work = async (conn: PgConn) => {
      for (let t = queue.shift(); t && !signal.aborted; t = queue.shift()) {
        await this.#dumpTable(conn, t, out, signal);
      }
    };
    const n = Math.max(1, Math.min(this.opts.pgx.dumpParallel, queue.length));
    const conns = [first];
    for (let i = 1; i < n; i++) conns.push(await openWorker());
    await Promise.all(conns.map(work));
    for (const c of conns) c.close();
    this.#workers = [];
    const owns = (name: string) => {
      const [schema, table] = splitKeyTableName(name, "public");
      return !["pg_catalog", "information_schema"].includes(schema) &&
        this.opts.filter.matches(schema, table);
    };
    return { position: { lsn: consistentPoint }, tables: keyed.map((t) => t.keyName), owns };
  }

  async #dumpTable(conn: PgConn, t: TableInfo, out: BatchOutput, signal: AbortSignal) {
    const columns = t.columns.map((c) => c.name);
    const renderers = t.columns.map((c) => this.#types.renderer(c.typeOid));
    const keyIdx = t.keyColumns.map((k) => columns.indexOf(k));
    const batches = new DumpBatches(out, signal);
    let rows = 0;
    await conn.queryEach(
      `SELECT ${columns.map(ident).join(", ")} FROM ${qualified(t)}`,
      async (row) => {
        const cells = new Array<string>(row.length);
        for (let i = 0; i < row.length; i++) {
          const v = row[i];
          cells[i] = v === null ? JSON_NULL : renderers[i](v);
        }
        rows++;
        const sent = batches.put(
          t.keyName,
          rowKey(keyIdx.map((i) => row[i] ?? "")),
          columns,
          cells,
        );
        if (sent) await sent;
      },
    );
    await batches.flush();
    this.#log.debug("table dumped", { table: t.keyName, rows });
  }

  /** With --ha, end the walsender of a former leader that still holds the slot. */
  async #takeOverSlot(): Promise<void> {
    if (!this.opts.pgx.takeOverSlot) return;
    const meta = await this.#metaConn();
    for (let i = 0; i < 50; i++) {
      const r = await meta.query(
        `SELECT active_pid FROM pg_replication_slots
         WHERE slot_name = ${literal(this.opts.pgx.slot)} AND active_pid IS NOT NULL`,
      );
      if (!r.rows.length) return;
      if (i === 0) {
        this.#log.warn("taking the slot over from a former leader", { pid: r.rows[0][0] });
        await meta.query(`SELECT pg_terminate_backend(${Number(r.rows[0][0])})`);
      }
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  async stream(from: Position, out: BatchOutput, signal: AbortSignal): Promise<void> {
    const repl = this.#repl!;
    await this.#takeOverSlot();
    const start = parseLsn(String(from.lsn));
    if (this.#confirmed < start) this.#confirmed = start;
    await startLogicalReplication(repl, {
      slot: this.opts.pgx.slot,
      from: start,
      protoVersion: this.#protoVersion,
      publication: this.opts.pgx.publication,
    });
    this.#streaming = true;
    this.#log.info("streaming", { from: formatLsn(start), proto_version: this.#protoVersion });
    const sendStatus = () => {
      if (!repl.closed) repl.sendCopyData(standbyStatus(this.#confirmed)).catch(() => {});
    };
    const timer = setInterval(sendStatus, this.opts.pgx.statusIntervalMs);
    const onAbort = () => {
      sendStatus();
      // Let the final status go out, then break the blocked read.
      setTimeout(() => repl.abort(), 50);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    // A stop that came while connecting would otherwise never end the read.
    if (signal.aborted) onAbort();

    const baseline = this.#baseline ??
      baselineOf(
        (await this.#tables(await this.#metaConn()))
          .filter((t) => t.keyColumns.length),
      );
    const relations = new Map<number, StreamRelation>();
    const cs = new ChangeStream(out);
    let resync: string | undefined;
    // End of the last transaction handed to the sink, and of the last idle heartbeat.
    let lastEnd = start;
    let lastBeat = Date.now();
    try {
      for (;;) {
        const m = await repl.readMessage();
        if (m.type === 0x45 /* E */) throw errorFromBody(m.body);
        if (m.type === 0x63 /* c */) throw new PgConnectionError("the server ended replication");
        if (m.type !== 0x64 /* d */) continue;
        const rm = parseReplicationMessage(m.body);
        if (rm.kind === "keepalive") {
          if (rm.replyRequested) sendStatus();
          // Nothing of ours in flight: move the saved position with the server's, so the
          // slot does not hold WAL for changes to tables we do not replicate.
          const idle = !cs.open && this.#confirmed >= lastEnd && rm.walEnd > lastEnd;
          if (idle && Date.now() - lastBeat >= this.opts.pgx.statusIntervalMs) {
            lastEnd = rm.walEnd;
            lastBeat = Date.now();
            await cs.heartbeat({ lsn: formatLsn(rm.walEnd) });
          }
          continue;
        }
        const msg = decodePgOutput(rm.data, false);
        switch (msg.tag) {
          case "begin":
            cs.begin();
            break;
          case "commit":
            lastEnd = msg.endLsn;
            await cs.commit({ lsn: formatLsn(msg.endLsn) }, pgTimeToDate(msg.commitTime), resync);
            break;
          case "relation": {
            const seen = relations.get(msg.relationId);
            const before = seen
              ? (seen.selected ? { keyName: seen.info!.keyName, signature: seen.signature } : null)
              : baseline.get(msg.relationId);
            const rel = await this.#relation(msg);
            // Renamed, or columns added, dropped or retyped: rows not touched since have
            // changed without any change being streamed, so the tables are read again.
            if (rel.identityGap) {
              this.#log.warn("replica identity leaves out the primary key: dumping again", {
                table: rel.info!.keyName,
              });
              resync ??= rel.info!.keyName;
            }
            if (before && before.signature !== rel.signature) {
              resync = before.keyName;
              // Renamed: the old name's keys go in the same transaction, the dump writes
              // the rows under the new one.
              if (rel.info?.keyName !== before.keyName || !rel.selected) {
                cs.truncate(before.keyName);
              }
            }
            relations.set(msg.relationId, rel);
            this.#record(rel, msg);
            break;
          }
          case "insert":
          case "update":
          case "delete":
          case "truncate": {
            this.#changes(msg, relations, cs);
            await cs.settle();
            break;
          }
          default:
            break; // origin, type, message: nothing to replicate
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      throw e;
    } finally {
      clearInterval(timer);
      signal.removeEventListener("abort", onAbort);
      this.#streaming = false;
    }
  }

  /** A table the stream now carries (new, say) goes into the definitions the state records. */
  #record(rel: StreamRelation, msg: RelationMessage) {
    if (!rel.selected || !rel.info) return;
    const def = definitionOf(
      msg.relationId,
      msg.columns,
      rel.info.keyColumns,
      msg.replicaIdentity,
    );
    const old = this.#defs[rel.info.keyName];
    if (old && sameDefinition(old, def)) return;
    this.#defs = { ...this.#defs, [rel.info.keyName]: def };
  }

  async #relation(msg: RelationMessage): Promise<StreamRelation> {
    const columns = msg.columns.map((c) => c.name);
    const signature = relationSignature(msg.schema, msg.name, msg.columns);
    const selected = this.opts.filter.matches(msg.schema, msg.name);
    if (!selected) return { selected, signature, columns, renderers: [], keyIdx: [] };
    const meta = await this.#metaConn();
    const info = await tableByOid(meta, this.#version, msg.relationId, this.opts.keys);
    await this.#types.load(meta, msg.columns.map((c) => c.typeOid));
    const keyCols = info?.keyColumns ?? [];
    const keyIdx = keyCols.map((k) => columns.indexOf(k));
    if (!keyCols.length || keyIdx.includes(-1)) {
      this.#warnNoKeyNames([`${msg.schema}.${msg.name}`]);
      return { selected: false, signature, columns, renderers: [], keyIdx: [] };
    }
    return {
      info,
      signature,
      selected: true,
      columns,
      renderers: msg.columns.map((c) => this.#types.renderer(c.typeOid)),
      keyIdx,
      // NOTHING: the server refuses the table's updates and deletes, so none arrive.
      identityGap: msg.replicaIdentity !== "n" && keyIdx.some((i) => !msg.columns[i].key),
    };
  }

  #changes(
    msg: Extract<
      ReturnType<typeof decodePgOutput>,
      { tag: "insert" | "update" | "delete" | "truncate" }
    >,
    relations: Map<number, StreamRelation>,
    into: ChangeStream,
  ) {
    if (msg.tag === "truncate") {
      for (const id of msg.relationIds) {
        const r = relations.get(id);
        if (r?.selected) into.truncate(r.info!.keyName);
      }
      return;
    }
    const r = relations.get(msg.relationId);
    if (!r) throw new PgConnectionError(`change for unknown relation ${msg.relationId}`);
    if (!r.selected) return;
    const table = r.info!.keyName;
    const keyOf = (row: TupleValue[]): string | null => {
      const parts: string[] = [];
      for (const i of r.keyIdx) {
        const v = row[i];
        if (typeof v !== "string") return null;
        parts.push(v);
      }
      return rowKey(parts);
    };
    if (msg.tag === "delete") {
      const key = keyOf(msg.old);
      if (key !== null) into.delete(table, key);
      else if (!r.identityGap) {
        throw new PgConnectionError(`delete from ${table} without its key columns`);
      }
      return;
    }
    const row = msg.row;
    const cells = new Array<string | typeof UNCHANGED>(row.length);
    for (let i = 0; i < row.length; i++) {
      const v = row[i];
      cells[i] = v === null ? JSON_NULL : v === UNCHANGED ? UNCHANGED : r.renderers[i](v);
    }
    const key = keyOf(row);
    if (key === null) throw new PgConnectionError(`row of ${table} without a key value`);
    const oldKey = msg.tag === "update" && msg.old ? keyOf(msg.old) : null;
    if (oldKey !== null && oldKey !== key) into.move(table, oldKey, key, r.columns, cells);
    else into.put(table, key, r.columns, cells);
  }

  confirm(position: Position): void {
    const lsn = parseLsn(String(position.lsn));
    if (lsn <= this.#confirmed) return;
    this.#confirmed = lsn;
    if (this.#streaming && this.#repl && !this.#repl.closed) {
      this.#repl.sendCopyData(standbyStatus(lsn)).catch(() => {});
    }
  }

  close(): Promise<void> {
    for (const c of this.#workers) c.abort();
    this.#workers = [];
    this.#meta?.close();
    if (this.#repl && !this.#repl.closed) {
      if (this.#streaming) this.#repl.abort();
      else this.#repl.close();
    }
    return Promise.resolve();
  }
}
