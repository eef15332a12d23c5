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
  const { render, keyParts } = plan;
  const n = r.columns();
  if (n !== render.length) {
    throw new PgOutputError(
      `pgoutput '${r.tag}' message has ${n} columns where its relation has ${render.length}`,
    );
  }
  const key = rowKeys.begin(plan);
  for (let c = 0; c < n; c++) {
    const kind = r.u8();
    if (kind === 0x74 /* t */) {
      const text = readText(r, plan, c, r.valueLength(), cells);
      if (text !== undefined) key.add(c, text);
    } else if (kind === 0x6e /* n */) {
      if (cells !== null) cells[c] = JSON_NULL;
    } else if (kind === 0x75 /* u */) {
      if (cells !== null) cells[c] = UNCHANGED;
    } else r.badKind(kind);
  }
  return key.found === keyParts ? key.key() : null;
}

/**
 * Column `c`'s text value of `len` bytes at the cursor: its cell into `cells` (when given).
 * Returns its text when it is a key column, else undefined.
 */
function readText(
  r: Reader,
  plan: RowPlan,
  c: number,
  len: number,
  cells: Cell[] | null,
): string | undefined {
  const at = plan.keyAt[c];
  const how = plan.read[c];
  if (cells === null && at < 0) r.i += len;
  else if (how === TEXT) {
    if (cells !== null) cells[c] = r.jsonText(len);
    else r.i += len;
  } else {
    const text = r.text(len);
    if (cells !== null) cells[c] = how === INTEGER ? text : plan.render[c](text);
    if (at >= 0) return text;
  }
  return undefined;
}

/** A row's key, built from its key columns' texts as they are read. */
class KeyParts {
  found = 0;
  #plan: RowPlan | null = null;
  #one = "";
  // One key column (the usual case) needs no array of parts.
  #parts: string[] | null = null;
  begin(plan: RowPlan): this {
    this.#plan = plan;
    this.found = 0;
    this.#parts = plan.keyParts === 1 ? null : new Array<string>(plan.keyParts);
    return this;
  }
  add(c: number, text: string) {
    const plan = this.#plan!;
    this.found++;
    const part = plan.read[c] === INTEGER ? text : encodeKeyPart(text);
    if (this.#parts === null) this.#one = part;
    else this.#parts[plan.keyAt[c]] = part;
  }
  key(): string {
    const key = this.#parts === null ? this.#one : this.#parts.join("/");
    this.#one = "";
    this.#parts = null;
    return key;
  }
}
// One for every row: decoding never awaits, so two rows are never read at once.
const rowKeys = new KeyParts();

/**
 * A DataRow body (one row of a query's text result, columns in `plan`'s order) read as the
 * stream reads a tuple: each cell into `cells`, each key column's text into `texts` (in key
 * order) when given. Returns the key; a NULL key column is an empty key part.
 */
export function decodeDataRow(
  body: Uint8Array,
  plan: RowPlan,
  cells: Cell[],
  texts?: string[],
): string {
  const r = reader.reset(body);
  r.tag = "DataRow";
  r.i = 0;
  const n = r.columns();
  if (n !== plan.render.length) {
    throw new PgOutputError(`DataRow has ${n} columns where the query has ${plan.render.length}`);
  }
  const key = rowKeys.begin(plan);
  for (let c = 0; c < n; c++) {
    const len = r.i32();
    let text: string | undefined = "";
    if (len < 0) cells[c] = JSON_NULL;
    else {
      r.need(len);
      text = readText(r, plan, c, len, cells);
    }
    const at = plan.keyAt[c];
    if (at < 0 || text === undefined) continue;
    key.add(c, text);
    if (texts) texts[at] = text;
  }
  if (r.i !== body.length) {
    throw new PgOutputError(`DataRow has ${body.length - r.i} unexpected bytes at offset ${r.i}`);
  }
  return key.key();
}
