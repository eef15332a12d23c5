/** The keys a dump's sweep removes: under its tables, not written since the dump began. */
import { tableOfKey, tablePrefix } from "../core/keys.ts";
import { type EtcdClient, prefixEnd } from "./client.ts";
import { EtcdError } from "./errors.ts";

/**
 * Keys under the dumped `tables`, and under any other table `owns` claims (one that no
 * longer exists), whose mod revision is not after `startRevision`.
 */
export async function staleKeys(
  client: EtcdClient,
  prefix: string,
  tables: readonly string[],
  startRevision: number,
  owns?: (table: string) => boolean,
): Promise<string[]> {
  const dumped = new Set(tables);
  const covered = (table: string | undefined) =>
    table !== undefined && (dumped.has(table) || (owns?.(table) ?? false));
  // Collect first, then delete: deleting while paging would shift the pages. Filter by
  // revision here: etcd applies max_mod_revision after reading the whole range, which
  // would make every page cost a full scan.
  const stale: string[] = [];
  const ranges = owns ? [`${prefix}/`] : tables.map((t) => tablePrefix(prefix, t));
  // etcd (3.4/3.5) counts the whole rest of the range on every page, so a scan costs
  // O(keys² / page): minutes for 1M keys at 1,000 a page. Only keys that existed at the
  // dump's start can be stale, so one count there settles a first dump; pages are large.
  if (await emptyAt(client, ranges, startRevision)) return stale;
  for (const range of ranges) {
    for await (const kv of client.scan(range, { keysOnly: true, pageSize: 10_000 })) {
      if (kv.modRevision <= startRevision && covered(tableOfKey(prefix, kv.key))) {
        stale.push(kv.key);
      }
    }
  }
  return stale;
}

/** True when no key was under any of `ranges` at `revision` (false when compacted). */
async function emptyAt(
  client: EtcdClient,
  ranges: readonly string[],
  revision: number,
): Promise<boolean> {
  try {
    for (const range of ranges) {
      const r = await client.range(range, {
        rangeEnd: prefixEnd(range),
        countOnly: true,
        revision,
      });
      if (r.count > 0) return false;
    }
    return true;
  } catch (e) {
    // Compacted past the dump's start (OUT_OF_RANGE): no shortcut, scan.
    if (e instanceof EtcdError && (e.grpcCode === 11 || /compacted/.test(e.message))) {
      return false;
    }
    throw e;
  }
}
