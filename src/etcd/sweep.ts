/** The keys a dump's sweep removes: under its tables, not written since the dump began. */
import { tableOfKey, tablePrefix } from "../core/keys.ts";
import { type EtcdClient, prefixEnd } from "./client.ts";
import { EtcdError } from "./errors.ts";
import type { KeyValue } from "./types.ts";

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
    for await (const kv of scanCovered(client, prefix, range, covered)) {
      if (kv.modRevision <= startRevision) stale.push(kv.key);
    }
  }
  return stale;
}

/**
 * The keys under `range` of the tables `covered` accepts. The range of a table it refuses
 * (one a dump already swept) is stepped over at its first key rather than read through.
 */
async function* scanCovered(
  client: EtcdClient,
  prefix: string,
  range: string,
  covered: (table: string | undefined) => boolean,
): AsyncGenerator<KeyValue> {
  const end = prefixEnd(range);
  let from = range;
  let revision: number | undefined;
  for (;;) {
    const r = await client.range(from, {
      rangeEnd: end,
      keysOnly: true,
      limit: 10_000,
      revision,
    });
    // Every page at the first page's revision: one consistent view.
    revision ??= r.revision;
    let next: string | undefined;
    for (const kv of r.kvs) {
      const table = tableOfKey(prefix, kv.key);
      if (covered(table)) yield kv;
      else if (table !== undefined) {
        next = prefixEnd(tablePrefix(prefix, table));
        break;
      }
    }
    if (next === undefined) {
      if (!r.more || r.kvs.length === 0) return;
      next = r.kvs[r.kvs.length - 1].key + "\0";
    }
    from = next;
  }
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
