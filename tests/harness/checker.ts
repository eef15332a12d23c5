/**
 * The independent checker: reads etcd with a different client (`etcd3` over gRPC, not our
 * gateway client) and compares it with what the database holds, rendered by the test's
 * own rules. Reports the first difference.
 */
import { Etcd3 } from "etcd3";

/** Every key-value under `prefix`, read over gRPC in pages (one revision for all pages). */
export async function readEtcd(endpoint: string, prefix: string): Promise<Map<string, string>> {
  const c = new Etcd3({ hosts: endpoint });
  try {
    const out = new Map<string, string>();
    const end = prefixEnd(prefix);
    let start = prefix;
    let revision: string | undefined;
    for (;;) {
      const q = c.getAll().inRange({ start, end }).sort("Key", "Ascend").limit(2000);
      if (revision) q.revision(revision);
      const r = await q.exec();
      revision ??= r.header.revision;
      for (const kv of r.kvs) out.set(kv.key.toString(), kv.value.toString());
      if (!r.more || !r.kvs.length) break;
      start = r.kvs[r.kvs.length - 1].key.toString() + "\0";
    }
    return out;
  } finally {
    c.close();
  }
}

function prefixEnd(prefix: string): string {
  const b = new TextEncoder().encode(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      const e = b.slice(0, i + 1);
      e[i]++;
      return new TextDecoder().decode(e);
    }
  }
  return "\0";
}

const clip = (s: string | undefined) =>
  s === undefined || s.length <= 400 ? s : `${s.slice(0, 400)}... (${s.length} chars)`;

/** The first difference between two key→value maps, or null when they are equal. */
export function firstDifference(
  expected: Map<string, string>,
  actual: Map<string, string>,
): string | null {
  const keys = [...new Set([...expected.keys(), ...actual.keys()])].sort();
  for (const k of keys) {
    const e = expected.get(k);
    const a = actual.get(k);
    if (e === a) continue;
    if (a === undefined) return `missing in etcd: ${k} (expected ${clip(e)})`;
    if (e === undefined) return `unexpected key in etcd: ${k} = ${clip(a)}`;
    let at = 0;
    while (e[at] === a[at]) at++;
    return `value differs at ${k} (from character ${at}):\n  expected ${
      clip(e.slice(Math.max(0, at - 100)))
    }\n  actual   ${clip(a.slice(Math.max(0, at - 100)))}`;
  }
  return null;
}

/** Poll until etcd under `prefix` equals `expected()`; throws with the first difference. */
export async function assertConverges(
  endpoint: string,
  prefix: string,
  expected: () => Promise<Map<string, string>>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let diff: string | null = "not checked";
  while (Date.now() < deadline) {
    diff = firstDifference(await expected(), await readEtcd(endpoint, prefix));
    if (diff === null) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`etcd did not converge to the database: ${diff}`);
}
