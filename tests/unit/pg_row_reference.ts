/**
 * The row change as it was made before row plans (src/pg/row_change.ts), kept as the
 * reference the plans are checked against by pg_pgoutput and text_fast_paths.
 */
import { UNCHANGED } from "../../src/core/change.ts";
import { rowKey } from "../../src/core/keys.ts";
import type { PgOutputMessage, TupleValue } from "../../src/pg/pgoutput.ts";
import type { RowChange } from "../../src/pg/row_change.ts";

/**
 * What a row change was before row plans: decodePgOutput's row, each value through its
 * column's renderer, the key by rowKey from the key columns' text (null when one has none).
 */
export function referenceRowChange(
  msg: PgOutputMessage,
  render: ((t: string) => string)[],
  keyIdx: number[],
): RowChange {
  const keyOf = (row: TupleValue[]) => {
    const parts = keyIdx.map((i) => row[i]);
    return parts.every((p) => typeof p === "string") ? rowKey(parts as string[]) : null;
  };
  const cellsOf = (row: TupleValue[]) =>
    row.map((v, i) => (v === null ? "null" : v === UNCHANGED ? UNCHANGED : render[i](v)));
  if (msg.tag === "insert") {
    return {
      tag: "insert",
      relationId: msg.relationId,
      key: keyOf(msg.row),
      cells: cellsOf(msg.row),
    };
  }
  if (msg.tag === "update") {
    return {
      tag: "update",
      relationId: msg.relationId,
      oldKey: msg.old ? keyOf(msg.old) : undefined,
      key: keyOf(msg.row),
      cells: cellsOf(msg.row),
    };
  }
  if (msg.tag === "delete") {
    return { tag: "delete", relationId: msg.relationId, oldKey: keyOf(msg.old) };
  }
  throw new Error(`not a row change: ${msg.tag}`);
}
