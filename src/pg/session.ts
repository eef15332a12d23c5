/**
 * One connected attempt at a PostgreSQL source (design: Shape, Snapshots): the plan
 * (resume, or dump and why), the dump inside the slot's exported snapshot on
 * `--dump-parallel` connections, and the stream that follows the slot.
 */
import type { PgSourceOptions } from "./options.ts";
import type { Position } from "../core/change.ts";
import { splitKeyTableName } from "../core/keys.ts";
import { KeylessWarning } from "../core/stream.ts";
import { driftedTables, type TableDefinitions } from "../core/tables.ts";
import {
  type BatchOutput,
  ConfigError,
  type DumpProgress,
  type DumpResult,
  type SavedState,
  type SourceIdentity,
  type SourceSession,
  type StartPlan,
} from "../core/source.ts";
import { literal, type PgConn } from "./conn.ts";
import type { PgUrl } from "./url.ts";
import { connectPrimary, pgConfigErrors } from "./connect.ts";
import { withConfigErrors } from "../core/errors.ts";
import { catalogNow, heldAtResume, identityProblem, KEYLESS_ALL, listTables } from "./catalog.ts";
import { qualified, tableByOid, type TableInfo, Types, withFixed } from "./catalog.ts";
import { formatLsn, parseLsn } from "./pgoutput.ts";
import { standbyStatus } from "./replication.ts";
import { ensurePublication } from "./publication.ts";
import { failoverLoss, historyText } from "./timeline.ts";
import { type Baseline, baselineOf, definitionsOf, HELD_WARNING, Relations } from "./relations.ts";
import type { RelationContext } from "./relations.ts";
import { createLogicalSlot, dropSlot, identifySystem, timelineHistory } from "./commands.ts";
import { followSlot } from "./stream.ts";
import { dropIfLost, slotDistrust, slotState, takeOverSlot } from "./slots.ts";
import { dumpTables } from "./dump.ts";
import { PgChunks } from "./chunks.ts";
import { RecentXids } from "./visibility.ts";
import type { ChunkSource } from "../core/snapshot_types.ts";

export class PgSession implements SourceSession {
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
  /** Each replicated table (by OID) when its rows were last read: the dump, or the resume. */
  #baseline?: Baseline;
  /** The replicated tables as of the newest change handed out (replaced, never mutated). */
  #defs: TableDefinitions = {};
  /** Transactions the stream saw commit: snapshot reads wait until they see them. */
  #xids = new RecentXids();
  /** The server's WAL end when this session connected (IDENTIFY_SYSTEM). */
  #walEnd = 0n;
  /** Each table's key columns as its snapshot last read them (see Relations). */
  #snapshotKeys = new Map<string, string>();
  /** Tables the state records as held that still are, with why (see Relations). */
  #held = new Map<string, string>();
  #metaTail: Promise<unknown> = Promise.resolve();

  constructor(readonly opts: PgSourceOptions, readonly url: PgUrl) {
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
      const v = this.#version;
      this.#protoVersion = v >= 160000 ? 4 : v >= 150000 ? 3 : v >= 140000 ? 2 : 1;
      if (this.#version < 110000) {
        // pgoutput sends TRUNCATE from PostgreSQL 11 on; nothing else in the stream shows it.
        this.#log.warn(
          "PostgreSQL 10 does not replicate TRUNCATE: a truncated table stays in etcd until the next dump; use DELETE or upgrade",
        );
      }
      this.identity = {
        system: sys.systemId,
        database: this.url.database,
        slot: this.opts.driver.slot,
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

  /** While streaming, its look-ups and the catalogue poll take turns on the connection. */
  #onMeta<T>(fn: (c: PgConn) => Promise<T>): Promise<T> {
    const run = this.#metaTail.then(async () => fn(await this.#metaConn()));
    this.#metaTail = run.catch(() => {});
    return run;
  }

  /** Create the publication when missing; true when it or its table list changed. */
  async #ensurePublication(): Promise<boolean> {
    const meta = await this.#metaConn();
    return await ensurePublication(meta, {
      name: this.opts.driver.publication,
      all: this.opts.filter.all,
      log: this.#log,
      tables: () => this.#tables(meta),
    });
  }

  plan(state: SavedState | null): Promise<StartPlan> {
    return withConfigErrors(pgConfigErrors(this.url), () => this.#plan(state));
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
    if (state.source.slot !== this.opts.driver.slot) {
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
      return {
        mode: "dump",
        reason: `slot ${this.opts.driver.slot} does not exist on this server`,
      };
    }
    const saved = state.source.timeline;
    const distrust = slotDistrust(this.opts.driver.slot, slot, {
      promoted: saved !== undefined && Number(saved) !== Number(this.identity.timeline),
      failover: this.opts.driver.failover !== false,
    });
    if (distrust) return { mode: "dump", reason: distrust };
    if (slot.confirmed !== null && slot.confirmed > at) {
      return {
        mode: "dump",
        reason: `slot confirmed ${formatLsn(slot.confirmed)}, past the saved ${formatLsn(at)}`,
      };
    }
    if (await this.#ensurePublication() && !state.tables) {
      return { mode: "dump", reason: "the table selection changed" };
    }
    const meta = await this.#metaConn();
    const tables = await this.#tables(meta);
    // A table held at the last stop stays held (refused only at a first start or a dump).
    const { held, fixed } = heldAtResume(state.snapshots, tables);
    this.#checkTables(tables.filter((t) => !held.has(t.keyName)));
    this.#held = held;
    for (const [table, why] of held) this.#log.warn(HELD_WARNING, { table, why });
    const keyed = tables.filter((t) => t.keyColumns.length);
    const current = definitionsOf(keyed);
    // States written before definitions were recorded: take today's as the starting point.
    const drift = state.tables &&
      await driftedTables(state.tables, current, async (name) => {
        const t = keyed.find((k) => k.keyName === name)!;
        return (await meta.query(`SELECT 1 FROM ${qualified(t)} LIMIT 1`)).rows.length > 0;
      });
    this.#defs = current;
    this.#baseline = baselineOf(tables);
    const again = withFixed(drift || undefined, fixed, held);
    return { mode: "resume", position: { lsn: formatLsn(at) }, resnapshot: again };
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
    const history = historyText(await timelineHistory(this.#repl!, now));
    return failoverLoss(history, saved, now, parseLsn(String(state.position.lsn)));
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
    this.#keyless.warn(missing, this.opts.filter.all ? KEYLESS_ALL : undefined);
  }

  dump(out: BatchOutput, signal: AbortSignal, progress?: DumpProgress): Promise<DumpResult> {
    return withConfigErrors(pgConfigErrors(this.url), () => this.#dump(out, signal, progress));
  }

  async #dump(
    out: BatchOutput,
    signal: AbortSignal,
    progress?: DumpProgress,
  ): Promise<DumpResult> {
    const repl = this.#repl!;
    const slotName = this.opts.driver.slot;
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
    await this.#ensurePublication();
    const failover = this.opts.driver.failover !== false && this.#version >= 170000;
    const { consistentPoint, snapshot } = await createLogicalSlot(repl, slotName, { failover });
    this.#log.info("slot created", { slot: slotName, consistent_point: consistentPoint, failover });
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
    this.#baseline = baselineOf(tables);
    this.#defs = definitionsOf(keyed);
    await this.#types.load(first, keyed.flatMap((t) => t.columns.map((c) => c.typeOid)));
    for (const t of keyed) this.opts.onTableEstimate?.(t.keyName, Math.max(0, t.estimate));
    await progress?.started({ lsn: consistentPoint }, keyed.map((t) => t.keyName));

    const n = Math.max(1, Math.min(this.opts.driver.dumpParallel, keyed.length));
    const conns = [first];
    for (let i = 1; i < n; i++) conns.push(await openWorker());
    const render = (oid: number) => this.#types.renderer(oid);
    await dumpTables(conns, keyed, render, out, signal, async (t, rows) => {
      this.#log.debug("table dumped", { table: t, rows });
      await progress?.finished(t, rows);
    });
    for (const c of conns) c.close();
    this.#workers = [];
    const owns = (name: string) => {
      const [schema, table] = splitKeyTableName(name, "public");
      return !["pg_catalog", "information_schema"].includes(schema) &&
        this.opts.filter.matches(schema, table);
    };
    return { position: { lsn: consistentPoint }, tables: keyed.map((t) => t.keyName), owns };
  }

  /** With --ha, end the walsender of a former leader that still holds the slot. */
  async #takeOverSlot(): Promise<void> {
    if (this.opts.driver.takeOverSlot) {
      await takeOverSlot(await this.#metaConn(), this.opts.driver.slot, this.#log);
    }
  }

  #slot() {
    return slotState(this.#repl!, this.opts.driver.slot, this.url.database);
  }

  async stream(from: Position, out: BatchOutput, signal: AbortSignal): Promise<void> {
    await this.#takeOverSlot();
    const [start, slot] = [parseLsn(String(from.lsn)), this.opts.driver.slot];
    if (this.#confirmed < start) this.#confirmed = start;
    const baseline = this.#baseline ?? baselineOf(await this.#tables(await this.#metaConn()));
    await followSlot(
      {
        repl: this.#repl!,
        log: this.#log,
        slot,
        publication: this.opts.driver.publication,
        protoVersion: this.#protoVersion,
        statusIntervalMs: this.opts.driver.statusIntervalMs,
        relations: new Relations(baseline, this.#defs, this.#relationContext(), this.#held),
        catalog: (oids) => this.#onMeta((c) => catalogNow(c, oids)),
        catalogPollMs: Math.min(5000, this.opts.driver.statusIntervalMs),
        confirmed: () => this.#confirmed,
        copying: (on) => (this.#streaming = on),
        committed: this.#xids,
      },
      start,
      out,
      signal,
    ).catch(dropIfLost(() => this.#metaConn(), slot, this.#log));
  }

  /** What the stream's relation translation needs of this session. */
  #relationContext(): RelationContext {
    return {
      log: this.#log,
      selected: (schema, name) => this.opts.filter.matches(schema, name),
      describe: (oid, typeOids) =>
        this.#onMeta(async (meta) => {
          const info = await tableByOid(meta, this.#version, oid, this.opts.keys);
          await this.#types.load(meta, typeOids);
          return info;
        }),
      renderer: (oid) => this.#types.renderer(oid),
      keyless: (name) => this.#warnNoKeyNames([name]),
      defined: (table, def) => (this.#defs = { ...this.#defs, [table]: def }),
      dropped: (table) => {
        const { [table]: _, ...rest } = this.#defs;
        this.#defs = rest;
      },
      snapshotKey: (table) => this.#snapshotKeys.get(table),
    };
  }

  /** Online snapshot reads, on a connection of their own. */
  chunks(): ChunkSource {
    return new PgChunks({
      connect: () => connectPrimary(this.url, false),
      version: this.#version,
      opts: this.opts,
      types: this.#types,
      committed: this.#xids,
      keyRead: (table, key) => this.#snapshotKeys.set(table, key.join(",")),
    });
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
