/** A put's unchanged (TOAST) columns filled from the row's current value in etcd. */
import { UNCHANGED } from "../core/change.ts";
import { renderRow, splitRow } from "../core/json.ts";
import type { Log } from "../core/log.ts";
import type { EtcdClient } from "./client.ts";
import type { Pending } from "./pending.ts";

/**
 * Render a put whose unchanged (TOAST) columns come from the row's current value: under
 * the first of `keys` that holds one. After a key change that is the old key, unless the
 * transaction is being applied again after a crash: its first pass already moved the row,
 * and the new key holds the value.
 */
export async function fillUnchanged(
  client: EtcdClient,
  log: Log,
  p: Pending,
  keys: readonly string[],
  columns: readonly string[],
  cells: readonly (string | typeof UNCHANGED)[],
  table: string,
): Promise<string> {
  let current: string | null | undefined;
  for (const k of keys) {
    const pending = p.ops.get(k);
    current = pending !== undefined ? pending.value : await client.get(k);
    if (current) break;
  }
  const key = keys[0];
  const old = current ? splitRow(current) : new Map<string, string>();
  const filled = cells.map((cell, i) => {
    if (cell !== UNCHANGED) return cell;
    const v = old.get(columns[i]);
    if (v !== undefined) return v;
    // The row was never written here (it predates a filter change, say): say so.
    log.warn("unchanged value missing from etcd; writing null", {
      table,
      column: columns[i],
      key,
    });
    return "null";
  });
  return renderRow(columns, filled);
}
