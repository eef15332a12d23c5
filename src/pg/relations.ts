/**
 * pgoutput's Relation and row messages turned into ChangeStream calls: what each relation
 * looks like, whether it is replicated, how its rows render, and whether it changed in a
 * way the stream cannot express (then a snapshot of it, or a hold while its replica identity
 * leaves out a key column).
 */
import type { Log } from "../core/log.ts";
import type { ChangeStream } from "../core/stream.ts";
import { sameDefinition, type TableDefinition, type TableDefinitions } from "../core/tables.ts";
import { identityProblem, relationSignature, type TableInfo } from "./catalog.ts";
import { PgConnectionError } from "./conn.ts";
import type { decodePgOutput } from "./pgoutput.ts";
import { decodeRowChange, type RowPlan, rowPlan, rowRelationId } from "./row_change.ts";

type Message = ReturnType<typeof decodePgOutput>;
export type RelationMessage = Extract<Message, { tag: "relation" }>;
export type TruncateMessage = Extract<Message, { tag: "truncate" }>;

/** A selected table as it was when its rows were last read (dump snapshot or resume). */
interface Seen {
  keyName: string;
  signature: string;
  /** The key columns, comma-joined: other ones make every etcd key of the table stale. */
  key: string;
  /** False for a table without a key: its rows were never read. */
  keyed: boolean;
}

/** Every selected table by OID, keyed or not, as of the dump's snapshot or the resume. */
export type Baseline = Map<number, Seen>;

export function baselineOf(tables: TableInfo[]): Baseline {
  return new Map(tables.map((t) => [t.oid, {
    keyName: t.keyName,
    signature: relationSignature(t.schema, t.name, t.columns),
    key: t.keyColumns.join(","),
    keyed: t.keyColumns.length > 0,
  }]));
}

/** How the state records a table (design: Position and state). */
export function definitionOf(
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

export function definitionsOf(tables: TableInfo[]): TableDefinitions {
  return Object.fromEntries(
    tables.map((t) => [t.keyName, definitionOf(t.oid, t.columns, t.keyColumns, t.replicaIdentity)]),
  );
}

/** What the session lends the translation: catalogue look-ups and the table selection. */
export interface RelationContext {
  log: Log;
  selected(schema: string, name: string): boolean;
  /** The table by OID as the catalogue has it now, with its types loaded. */
  describe(oid: number, typeOids: number[]): Promise<TableInfo | undefined>;
  renderer(typeOid: number): (text: string) => string;
  /** A table without a usable key (warned once). */
  keyless(name: string): void;
  /** A replicated table's definition as the stream now carries it. */
  defined(table: string, def: TableDefinition): void;
  /** The key columns (comma-joined) a snapshot last read the table under, if one did. */
  snapshotKey?(table: string): string | undefined;
  /** A replicated table is no longer (dropped, renamed): the state forgets it. */
  dropped?(table: string): void;
}

/** How often a held table's warning is repeated while its changes arrive. */
const HELD_WARN_MS = 60_000;
export const HELD_WARNING =
  "table held: its changes are not applied until its replica identity carries the key";

interface StreamRelation {
  info?: TableInfo;
  /** Column names and types, to notice ALTER TABLE. */
  signature: string;
  selected: boolean;
  /** Selected by the filter but without a usable key (not replicated). */
  keyless?: boolean;
  columns: string[];
  /** How its row changes are read (selected tables only). */
  plan?: RowPlan;
  /**
   * Why old keys cannot name etcd keys (an identity index leaves out a key column, or a
   * `--keys` table has no identity): the table is held.
   */
  identityGap?: string;
  /** Held: its changes are dropped (see `Relations.held`). */
  held?: boolean;
  /** Gone from the catalogue: the key table name whose keys the poll removes. */
  vanishing?: string;
}

export class Relations {
  readonly #byId = new Map<number, StreamRelation>();
  readonly #baseline: Baseline;
  readonly #ctx: RelationContext;
  readonly #defs: TableDefinitions;
  readonly #again = new Set<string>();
  /** Held tables (key table name) with why, and when their warning was last given. */
  readonly #held = new Map<string, { why: string; warned: number }>();
  #holds: { table: string; why: string }[] = [];
  readonly #gone = new Set<string>();

  /** `held`: tables the state records as held (key table name to why). */
  constructor(
    baseline: Baseline,
    defs: TableDefinitions,
    ctx: RelationContext,
    held: Iterable<[string, string]> = [],
  ) {
    this.#baseline = baseline;
    this.#defs = { ...defs };
    this.#ctx = ctx;
    for (const [table, why] of held) this.#held.set(table, { why, warned: 0 });
  }

  /** Tables to snapshot again since the last call (a rename, ALTER, a new key). */
  takeResnapshot(): string[] {
    const out = [...this.#again];
    this.#again.clear();
    return out;
  }

  /** Tables held since the last call, and tables gone (see ChangeBatch). */
  takeHeldAndGone(): { hold?: { table: string; why: string }[]; gone?: string[] } {
    const hold = this.#holds;
    const gone = [...this.#gone];
    this.#holds = [];
    this.#gone.clear();
    return { ...(hold.length ? { hold } : {}), ...(gone.length ? { gone } : {}) };
  }

  /** Every replicated table the stream knows: OID to key table name. */
  streamed(): Map<number, string> {
    const out = new Map<number, string>();
    for (const id of new Set([...this.#baseline.keys(), ...this.#byId.keys()])) {
      const seen = this.#before(id);
      if (seen?.keyed) out.set(id, seen.keyName);
    }
    return out;
  }

  async relation(msg: RelationMessage, cs: ChangeStream): Promise<void> {
    const before = this.#before(msg.relationId);
    const rel = await this.#describe(msg);
    if (rel.vanishing !== undefined && before?.keyed) {
      // Dropped since (the stream is behind): its changes are not applied, and the catalogue
      // poll removes its keys once the stream has passed the DROP.
      rel.vanishing = before.keyName;
      return void this.#byId.set(msg.relationId, rel);
    }
    const name = rel.info?.keyName;
    if (name && rel.identityGap) rel.held = this.#hold(name, rel.identityGap);
    else if (name && this.#held.delete(name)) {
      // Deletes made while it was held left keys behind: its snapshot's sweep removes them.
      this.#ctx.log.info("replica identity carries the key again: snapshotting the table", {
        table: name,
      });
      this.#again.add(name);
    }
    // Renamed, columns added, dropped or retyped, or other key columns: rows not touched
    // since have changed (or lost their keys) without any change being streamed, so the
    // table is read again (its snapshot's sweep removes the keys of the old layout).
    // Other key columns than the stream last saw, or than a snapshot last read the table
    // under (it starts over under key columns the stream may not have seen yet).
    const key = rel.info?.keyColumns.join(",");
    const read = rel.selected ? this.#ctx.snapshotKey?.(rel.info!.keyName) : undefined;
    const rekeyed = rel.selected && (before?.key !== key || (read ?? key) !== key);
    if (before?.keyed && (before.signature !== rel.signature || rekeyed)) {
      // Renamed: the old name's keys go in the same transaction, the snapshot writes the
      // rows under the new one.
      if (rel.info?.keyName !== before.keyName || !rel.selected) this.#drop(before.keyName, cs);
      if (rel.selected) this.#again.add(rel.info!.keyName);
    } else if (before && !before.keyed && rel.selected) {
      // It gained a key: its rows from before were never read.
      this.#again.add(rel.info!.keyName);
    }
    // A held table is snapshotted once its identity carries the key again, not before.
    if (rel.held) this.#again.delete(name!);
    this.#byId.set(msg.relationId, rel);
    if (!rel.selected || !rel.info) return;
    const def = definitionOf(msg.relationId, msg.columns, rel.info.keyColumns, msg.replicaIdentity);
    const old = this.#defs[rel.info.keyName];
    if (old && sameDefinition(old, def)) return;
    this.#defs[rel.info.keyName] = def;
    this.#ctx.defined(rel.info.keyName, def);
  }

  /** Hold `table` (true); warned at once, and again at most every HELD_WARN_MS. */
  #hold(table: string, why: string): true {
    if (this.#held.has(table)) return true;
    this.#held.set(table, { why, warned: 0 });
    this.#holds.push({ table, why });
    this.#warnHeld(table);
    return true;
  }

  #warnHeld(table: string): void {
    const h = this.#held.get(table)!;
    if (Date.now() - h.warned < HELD_WARN_MS) return;
    h.warned = Date.now();
    this.#ctx.log.warn(HELD_WARNING, { table, why: h.why });
  }

  /** The table's keys go, in stream order, and the state forgets it. */
  #drop(table: string, cs: ChangeStream): void {
    cs.truncate(table);
    this.#gone.add(table);
    this.#held.delete(table);
    delete this.#defs[table];
    this.#ctx.dropped?.(table);
  }

  /**
   * Held tables whose replica identity, as the catalogue has it now, carries the key again
   * (OID to key table name): fixed with no change since, which would bring a Relation message.
   */
  async fixedHeld(): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    if (!this.#held.size) return out;
    for (const [oid, table] of this.streamed()) {
      if (!this.#held.has(table)) continue;
      const info = await this.#ctx.describe(oid, []);
      if (info?.keyName === table && !identityProblem(info)) out.set(oid, table);
    }
    return out;
  }

  /**
   * The catalogue no longer shows table `oid` as `table` as the stream knew it (found by a
   * poll, and the stream has passed the change since): dropped, renamed as its next Relation
   * message would tell, or held with its identity fixed (released, as by that message).
   * Nothing when a Relation message told it already.
   */
  async recheck(oid: number, table: string, cs: ChangeStream): Promise<void> {
    const before = this.#before(oid);
    if (!before?.keyed || before.keyName !== table) return;
    const info = await this.#ctx.describe(oid, []);
    if (info) return await this.relation(relationOf(info), cs);
    this.#drop(table, cs);
    this.#byId.set(oid, { selected: false, signature: "", columns: [] });
  }

  /** What the table looked like before this Relation message, if it was selected. */
  #before(id: number): Seen | undefined {
    const seen = this.#byId.get(id);
    if (!seen) return this.#baseline.get(id);
    if (seen.selected) {
      const key = seen.info!.keyColumns.join(",");
      return { keyName: seen.info!.keyName, signature: seen.signature, key, keyed: true };
    }
    if (seen.keyless) return { keyName: "", signature: seen.signature, key: "", keyed: false };
    if (seen.vanishing) return { keyName: seen.vanishing, signature: "", key: "", keyed: true };
    return undefined;
  }

  async #describe(msg: RelationMessage): Promise<StreamRelation> {
    const columns = msg.columns.map((c) => c.name);
    const signature = relationSignature(msg.schema, msg.name, msg.columns);
    const none = { selected: false, signature, columns };
    if (!this.#ctx.selected(msg.schema, msg.name)) return none;
    const info = await this.#ctx.describe(msg.relationId, msg.columns.map((c) => c.typeOid));
    if (!info) return { ...none, vanishing: "" };
    const keyCols = info.keyColumns;
    const keyIdx = keyCols.map((k) => columns.indexOf(k));
    if (!keyCols.length || keyIdx.includes(-1)) {
      this.#ctx.keyless(`${msg.schema}.${msg.name}`);
      return { ...none, keyless: true };
    }
    return {
      info,
      signature,
      selected: true,
      columns,
      plan: rowPlan(msg.columns.map((c) => this.#ctx.renderer(c.typeOid)), keyIdx),
      identityGap: identityGap(msg, keyIdx, info!),
    };
  }

  truncate(msg: TruncateMessage, cs: ChangeStream): void {
    for (const id of msg.relationIds) {
      const r = this.#byId.get(id);
      if (r?.selected && !r.held) cs.truncate(r.info!.keyName);
    }
  }

  /** An insert, update or delete, read from its bytes by its relation's row plan. */
  row(data: Uint8Array, cs: ChangeStream): void {
    const id = rowRelationId(data, false);
    const r = this.#byId.get(id);
    if (!r) throw new PgConnectionError(`change for unknown relation ${id}`);
    if (!r.selected) return;
    const table = r.info!.keyName;
    if (r.held) return this.#warnHeld(table);
    const c = decodeRowChange(data, false, r.plan!);
    if (c.tag === "delete") {
      if (c.oldKey === null) {
        throw new PgConnectionError(`delete from ${table} without its key columns`);
      }
      return cs.delete(table, c.oldKey);
    }
    if (c.key === null) throw new PgConnectionError(`row of ${table} without a key value`);
    const oldKey = c.tag === "update" ? c.oldKey ?? null : null;
    if (oldKey !== null && oldKey !== c.key) cs.move(table, oldKey, c.key, r.columns, c.cells);
    else cs.put(table, c.key, r.columns, c.cells);
  }
}

/**
 * Why the table's old keys cannot name its etcd keys (undefined: they can). NOTHING on a
 * table with a primary key is no gap: the server refuses its updates and deletes.
 */
function identityGap(msg: RelationMessage, keyIdx: number[], info: TableInfo) {
  const gap = msg.replicaIdentity === "n"
    ? info.keyConfigured
    : keyIdx.some((i) => !msg.columns[i].key);
  if (!gap) return undefined;
  return identityProblem(info) ?? `table ${info.keyName}: its replica identity leaves out the key`;
}

/** A Relation message as the catalogue describes the table now. */
function relationOf(info: TableInfo): RelationMessage {
  const ri = info.replicaIdentity;
  const identity = new Set(
    ri === "f"
      ? info.columns.map((c) => c.name)
      : ri === "i"
      ? info.identityIndex?.columns ?? []
      : ri === "d" && !info.keyConfigured
      ? info.keyColumns
      : [],
  );
  return {
    tag: "relation",
    relationId: info.oid,
    schema: info.schema,
    name: info.name,
    replicaIdentity: ri,
    columns: info.columns.map((c) => ({ ...c, key: identity.has(c.name) })),
  };
}
