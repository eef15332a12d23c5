/**
 * GTID positions, pure: MariaDB GTID lists (`domain-server-seq`, one per domain) and MySQL
 * GTID sets (`uuid:1-5:7,uuid2:1-3`), the text kept in the state key, and the binary form
 * of a MySQL set that COM_BINLOG_DUMP_GTID carries.
 */

export interface MariaGtid {
  domain: number;
  server: number;
  seq: bigint;
}

/** Every `domain-server-seq` in a MariaDB list or GTID state (other text is ignored). */
export function parseMariaGtids(list: string): MariaGtid[] {
  return list.split(",").map((p) => /^\s*(\d+)-(\d+)-(\d+)\s*$/.exec(p)).filter((m) => m)
    .map((m) => ({ domain: Number(m![1]), server: Number(m![2]), seq: BigInt(m![3]) }));
}

/** The highest sequence number per domain (a domain's numbers grow across servers). */
export function newestPerDomain(gtids: readonly MariaGtid[]): Map<number, MariaGtid> {
  const out = new Map<number, MariaGtid>();
  for (const g of gtids) {
    const had = out.get(g.domain);
    if (!had || g.seq > had.seq) out.set(g.domain, g);
  }
  return out;
}

const MARIA_GTID = /^(\d+)-\d+-\d+$/;
const MYSQL_GTID = /^([0-9a-fA-F-]{36}):(\d+)$/;

/** Add the GTID of a committed transaction to a position's GTID text (either flavour). */
export function addGtid(list: string | undefined, gtid: string): string {
  const maria = MARIA_GTID.exec(gtid);
  if (maria) {
    const parts = (list ?? "").split(",").filter((p) => p && !p.startsWith(`${maria[1]}-`));
    parts.push(gtid);
    return parts.sort().join(",");
  }
  const mysql = MYSQL_GTID.exec(gtid);
  if (!mysql) return list ?? gtid;
  const set = parseGtidSet(list ?? "");
  const gno = BigInt(mysql[2]);
  addRange(set, mysql[1].toLowerCase(), gno, gno);
  return formatGtidSet(set);
}

/** Inclusive `[first, last]` ranges of transaction numbers per source UUID. */
export type GtidSet = Map<string, [bigint, bigint][]>;

/** True for MySQL GTID set text without tags (MySQL 8.3+ tagged GTIDs are not encoded). */
export function isMysqlGtidSet(text: string): boolean {
  return /^\s*[0-9a-fA-F-]{36}(:\d+(-\d+)?)+(\s*,\s*[0-9a-fA-F-]{36}(:\d+(-\d+)?)+)*\s*$/
    .test(text);
}

export function parseGtidSet(text: string): GtidSet {
  const set: GtidSet = new Map();
  for (const part of text.split(",")) {
    const p = part.trim();
    if (!p) continue;
    const [uuid, ...ranges] = p.split(":");
    if (!/^[0-9a-fA-F-]{36}$/.test(uuid) || !ranges.length) {
      throw new Error(`not a MySQL GTID set: ${text}`);
    }
    for (const r of ranges) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(r);
      if (!m) throw new Error(`not a MySQL GTID set (tagged GTIDs are not supported): ${text}`);
      const first = BigInt(m[1]);
      const last = m[2] === undefined ? first : BigInt(m[2]);
      if (last < first) throw new Error(`not a MySQL GTID set: ${text}`);
      addRange(set, uuid.toLowerCase(), first, last);
    }
  }
  return set;
}

function addRange(set: GtidSet, uuid: string, first: bigint, last: bigint) {
  const ranges = set.get(uuid) ?? [];
  ranges.push([first, last]);
  ranges.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  // Merge overlapping and adjacent ranges.
  const merged: [bigint, bigint][] = [];
  for (const r of ranges) {
    const prev = merged[merged.length - 1];
    if (prev && r[0] <= prev[1] + 1n) {
      if (r[1] > prev[1]) prev[1] = r[1];
    } else merged.push([r[0], r[1]]);
  }
  set.set(uuid, merged);
}

/** Canonical text: UUIDs sorted, ranges merged, `uuid:1-5:7`. */
export function formatGtidSet(set: GtidSet): string {
  return [...set.keys()].sort().map((uuid) =>
    uuid + set.get(uuid)!.map(([a, b]) => (a === b ? `:${a}` : `:${a}-${b}`)).join("")
  ).join(",");
}

/**
 * The binary GTID set of COM_BINLOG_DUMP_GTID (MySQL's Gtid_set::encode): n_sids (8),
 * then per UUID its 16 bytes, n_intervals (8) and each interval as start (8) and end (8),
 * the end exclusive; little-endian.
 */
export function encodeGtidSet(set: GtidSet): Uint8Array {
  const uuids = [...set.keys()].sort();
  let size = 8;
  for (const u of uuids) size += 16 + 8 + 16 * set.get(u)!.length;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(uuids.length), true);
  let o = 8;
  for (const u of uuids) {
    const hex = u.replaceAll("-", "");
    for (let i = 0; i < 16; i++) out[o + i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    o += 16;
    const ranges = set.get(u)!;
    v.setBigUint64(o, BigInt(ranges.length), true);
    o += 8;
    for (const [a, b] of ranges) {
      v.setBigUint64(o, a, true);
      v.setBigUint64(o + 8, b + 1n, true);
      o += 16;
    }
  }
  return out;
}
