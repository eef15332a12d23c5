/**
 * The independent checker: reads etcd with a different client (`etcd3` over gRPC, not our
 * gateway client) and compares it with what the database holds, rendered by the test's
 * own rules. Reports the first difference.
 */
import { Etcd3 } from "etcd3";

/** Every key-value under `prefix`, read over gRPC. */
export async function readEtcd(endpoint: string, prefix: string): Promise<Map<string, string>> {
  const c = new Etcd3({ hosts: endpoint });
  try {
    const all = await c.getAll().prefix(prefix).strings();
    return new Map(Object.entries(all).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  } finally {
    c.close();
  }
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
