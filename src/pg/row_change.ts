/**
 * Inserts, updates and deletes read straight into what the change stream takes: each value
 * rendered to its JSON cell by its column's renderer as it is read, and the key built from
 * the key columns' text, with no row of TupleValues, no message object around it and no
 * array of key parts for a one-column key. The plan is built once per Relation message.
 * What it gives equals decodePgOutput's rows rendered cell by cell and keyed by rowKey
 * (tests/unit/text_fast_paths.test.ts compares them on random rows). Pure.
 */
import { type Cell, UNCHANGED } from "../core/change.ts";
import { JSON_NULL, jsonString } from "../core/json.ts";
import { encodeKeyPart } from "../core/keys.ts";
import { PgOutputError, Reader } from "./pgoutput_reader.ts";
import { integerText } from "./values.ts";

type Render = (text: string) => string;

/** How one relation's rows are read: built once, when its Relation message arrives. */
export interface RowPlan {
  /** Per column, in table order: its value's JSON renderer. */
  readonly render: readonly Render[];
  /** Per column: its place in the key, or -1. */
  readonly keyAt: readonly number[];
  readonly keyParts: number;
  /** Per column: how its value is read (the fast paths of the common renderers). */
  readonly read: readonly Read[];
}

/**
 * GENERAL: the value's text, its renderer, encodeKeyPart for a key column. INTEGER
 * (integerText): the text is the cell and the key part. TEXT (jsonString, not in the key):
 * quoted as is when its bytes need no escaping.
 */
const GENERAL = 0, INTEGER = 1, TEXT = 2;
type Read = typeof GENERAL | typeof INTEGER | typeof TEXT;

/** A row change as the change stream takes it; a key is null when a key column has no value. */
export type RowChange =
  | { tag: "insert"; relationId: number; key: string | null; cells: Cell[] }
  | {
    tag: "update";
    relationId: number;
    /** The old row's key; undefined when the message carries no old row. */
    oldKey?: string | null;
    key: string | null;
    cells: Cell[];
  }
  | { tag: "delete"; relationId: number; oldKey: string | null };

/** `render` per column in table order; `keyIdx` the key's columns in key order. */
export function rowPlan(render: readonly Render[], keyIdx: readonly number[]): RowPlan {
  const keyAt = render.map(() => -1);
  keyIdx.forEach((c, k) => (keyAt[c] = k));
  const read = render.map((f, c): Read =>
    f === integerText ? INTEGER : f === jsonString && keyAt[c] < 0 ? TEXT : GENERAL
  );
  return { render, keyAt, keyParts: keyIdx.length, read };
}

/** Whether a message is an insert, update or delete (what `decodeRowChange` reads). */
export function isRowChange(data: Uint8Array): boolean {
  const t = data[0];
  return t === 0x49 /* I */ || t === 0x55 /* U */ || t === 0x44 /* D */;
}

/** The relation a row message is for, read before the rest (`inStream`: see decodePgOutput). */
export function rowRelationId(data: Uint8Array, inStream: boolean): number {
  const at = inStream ? 5 : 1;
  if (data.length < at + 4) {
    const r = new Reader(data, String.fromCharCode(data[0]));
    r.i = at;
    return r.u32(); // throws: truncated
  }
  return ((data[at] << 24) | (data[at + 1] << 16) | (data[at + 2] << 8) | data[at + 3]) >>> 0;
}

/** Tuple kinds: (K)ey or (O)ld before a change, (N)ew after. */
const TUPLE_K = 0x4b, TUPLE_O = 0x4f, TUPLE_N = 0x4e;

const reader = new Reader(new Uint8Array(1), "");

/** Read an insert, update or delete message of the relation `plan` was built for. */
export function decodeRowChange(data: Uint8Array, inStream: boolean, plan: RowPlan): RowChange {
  if (!isRowChange(data)) {
    throw new PgOutputError(
      data.length
        ? `not a row change: pgoutput '${String.fromCharCode(data[0])}' message`
        : "empty pgoutput message",
    );
  }
  const r = reader.reset(data);
  if (inStream) r.u32();
  const relationId = r.u32();
  let kind = r.u8();
  let out: RowChange;
  if (r.tag === "D") {
    if (kind !== TUPLE_K && kind !== TUPLE_O) {
      throw new PgOutputError("pgoutput 'D' message without an old tuple");
    }
    out = { tag: "delete", relationId, oldKey: readTuple(r, plan, null) };
  } else {
    let oldKey: string | null | undefined;
    if (r.tag === "U" && (kind === TUPLE_K || kind === TUPLE_O)) {
      oldKey = readTuple(r, plan, null);
      kind = r.u8();
    }
    if (kind !== TUPLE_N) {
      throw new PgOutputError(`pgoutput '${r.tag}' message without a new tuple`);
    }
    const cells = new Array<Cell>(plan.render.length);
    const key = readTuple(r, plan, cells);
    out = r.tag === "I"
      ? { tag: "insert", relationId, key, cells }
      : { tag: "update", relationId, oldKey, key, cells };
  }
  if (r.i !== data.length) {
    throw new PgOutputError(
      `pgoutput '${r.tag}' message has ${data.length - r.i} unexpected bytes at offset ${r.i}`,
    );
  }
  return out;
}

/**
 * The tuple at the cursor: each value's cell into `cells` (with null, only the key columns
 * are read: an old row serves for its key). Returns the key, null when a key column is
 * NULL or unchanged.
 */
function readTuple(r: Reader, plan: RowPlan, cells: Cell[] | null): string | null {
  const { render, keyAt, keyParts, read } = plan;
  const n = r.columns();
  if (n !== render.length) {
    throw new PgOutputError(
      `pgoutput '${r.tag}' message has ${n} columns where its relation has ${render.length}`,
    );
  }
  // One key column (the usual case) needs no array of parts.
  const parts = keyParts === 1 ? null : new Array<string>(keyParts);
  let key = "";
  let found = 0;
  for (let c = 0; c < n; c++) {
    const kind = r.u8();
    const at = keyAt[c];
    if (kind === 0x74 /* t */) {
      const len = r.valueLength();
      if (cells === null && at < 0) {
        r.i += len;
        continue;
      }
      const how = read[c];
      if (how === TEXT) {
        if (cells !== null) cells[c] = r.jsonText(len);
        else r.i += len;
        continue;
      }
      const text = r.text(len);
      if (cells !== null) cells[c] = how === INTEGER ? text : render[c](text);
      if (at < 0) continue;
      found++;
      const part = how === INTEGER ? text : encodeKeyPart(text);
      if (parts === null) key = part;
      else parts[at] = part;
    } else if (kind === 0x6e /* n */) {
      if (cells !== null) cells[c] = JSON_NULL;
    } else if (kind === 0x75 /* u */) {
      if (cells !== null) cells[c] = UNCHANGED;
    } else r.badKind(kind);
  }
  if (found !== keyParts) return null;
  return parts === null ? key : parts.join("/");
}
