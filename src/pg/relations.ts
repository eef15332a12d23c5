/**
 * pgoutput's Relation and row messages turned into ChangeStream calls: what each relation
 * looks like, whether it is replicated, how its rows render, and whether it changed in a
 * way the stream cannot express (then a resync).
 */
import type { Log } from "../core/log.ts";
import type { ChangeStream } from "../core/stream.ts";
import { sameDefinition, type TableDefinition, type TableDefinitions } from "../core/tables.ts";
import { relationSignature, type TableInfo } from "./catalog.ts";
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
}

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
   * The replica identity leaves out a key column (USING INDEX): old keys cannot name etcd
   * keys, so its deletes and key changes are left to the dump this forces.
   */
  identityGap?: boolean;
}

export class Relations {
  readonly #byId = new Map<number, StreamRelation>();
  readonly #baseline: Baseline;
  readonly #ctx: RelationContext;
  readonly #defs: TableDefinitions;
  #resync?: string;
  readonly #again = new Set<string>();

  constructor(baseline: Baseline, defs: TableDefinitions, ctx: RelationContext) {
    this.#baseline = baseline;
    this.#defs = { ...defs };
    this.#ctx = ctx;
  }

  /** The table whose change the stream cannot express, once one was seen. */
  get resync(): string | undefined {
    return this.#resync;
  }

  /** Tables to snapshot again since the last call (a rename, ALTER, a new key). */
  takeResnapshot(): string[] {
    const out = [...this.#again];
    this.#again.clear();
    return out;
  }

  async relation(msg: RelationMessage, cs: ChangeStream): Promise<void> {
    const before = this.#before(msg.relationId);
    const rel = await this.#describe(msg);
    if (rel.identityGap) {
      this.#ctx.log.warn("replica identity leaves out the primary key: dumping again", {
        table: rel.info!.keyName,
      });
      this.#resync ??= rel.info!.keyName;
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
      if (rel.info?.keyName !== before.keyName || !rel.selected) cs.truncate(before.keyName);
      if (rel.selected) this.#again.add(rel.info!.keyName);
    } else if (before && !before.keyed && rel.selected) {
      // It gained a key: its rows from before were never read.
      this.#again.add(rel.info!.keyName);
    }
    this.#byId.set(msg.relationId, rel);
    if (!rel.selected || !rel.info) return;
    const def = definitionOf(msg.relationId, msg.columns, rel.info.keyColumns, msg.replicaIdentity);
    const old = this.#defs[rel.info.keyName];
    if (old && sameDefinition(old, def)) return;
    this.#defs[rel.info.keyName] = def;
    this.#ctx.defined(rel.info.keyName, def);
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
    return undefined;
  }

  async #describe(msg: RelationMessage): Promise<StreamRelation> {
    const columns = msg.columns.map((c) => c.name);
    const signature = relationSignature(msg.schema, msg.name, msg.columns);
    const none = { selected: false, signature, columns };
    if (!this.#ctx.selected(msg.schema, msg.name)) return none;
    const info = await this.#ctx.describe(msg.relationId, msg.columns.map((c) => c.typeOid));
    const keyCols = info?.keyColumns ?? [];
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
      // NOTHING: the server refuses the table's updates and deletes, so none arrive.
      identityGap: msg.replicaIdentity !== "n" && keyIdx.some((i) => !msg.columns[i].key),
    };
  }

  truncate(msg: TruncateMessage, cs: ChangeStream): void {
    for (const id of msg.relationIds) {
      const r = this.#byId.get(id);
      if (r?.selected) cs.truncate(r.info!.keyName);
    }
  }

  /** An insert, update or delete, read from its bytes by its relation's row plan. */
  row(data: Uint8Array, cs: ChangeStream): void {
    const id = rowRelationId(data, false);
    const r = this.#byId.get(id);
    if (!r) throw new PgConnectionError(`change for unknown relation ${id}`);
    if (!r.selected) return;
    const table = r.info!.keyName;
    const c = decodeRowChange(data, false, r.plan!);
    if (c.tag === "delete") {
      if (c.oldKey !== null) cs.delete(table, c.oldKey);
      else if (!r.identityGap) {
        throw new PgConnectionError(`delete from ${table} without its key columns`);
      }
      return;
    }
    if (c.key === null) throw new PgConnectionError(`row of ${table} without a key value`);
    const oldKey = c.tag === "update" ? c.oldKey ?? null : null;
    if (oldKey !== null && oldKey !== c.key) cs.move(table, oldKey, c.key, r.columns, c.cells);
    else cs.put(table, c.key, r.columns, c.cells);
  }
}
