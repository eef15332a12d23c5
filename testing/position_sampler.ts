/**
 * "No source position confirmed that etcd does not hold", checked all along a test: every
 * 150 ms the slot's confirmed LSN is read from PostgreSQL, THEN the state key's LSN from etcd
 * (a linearizable read: it sees every write that committed before it began). etcd's state
 * only moves forward, so whatever PostgreSQL was told before the read must be at or below
 * what etcd holds at the read. A state key or an LSN missing is a violation too (a position
 * was confirmed that etcd holds nowhere). A sample etcd cannot answer (no quorum, every
 * member down) is counted as skipped, not passed.
 */
import type postgres from "postgres";
import { step } from "./steps.ts";

type Sql = ReturnType<typeof postgres>;

export interface PositionSampler {
  /** One strict sample now: fails when etcd does not answer or does not hold the position. */
  check(): Promise<void>;
  /** Stop sampling; throws listing every violation seen, else returns the counts. */
  stop(): Promise<{ samples: number; skipped: number }>;
}

export interface SamplerOptions {
  sql: Sql;
  stateKey: string;
  /** The client URLs of the members that are running and not frozen, asked in turn. */
  endpoints: () => string[];
  slot?: string;
  everyMs?: number;
}

export const lsn = (text: string): bigint => {
  const [hi, lo] = text.split("/");
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const utf8 = new TextDecoder();

/** The state key read linearizably from the first member that answers within 1 s. */
async function readState(o: SamplerOptions): Promise<{ raw?: string } | undefined> {
  for (const endpoint of o.endpoints()) {
    try {
      const r = await fetch(`${endpoint}/v3/kv/range`, {
        method: "POST",
        body: JSON.stringify({ key: btoa(o.stateKey) }),
        signal: AbortSignal.timeout(1_000),
      });
      const json = await r.json() as { kvs?: { value: string }[] };
      if (!r.ok) continue; // no leader, timed out: another member, or skipped
      const v = json.kvs?.[0]?.value;
      return { raw: v ? utf8.decode(Uint8Array.from(atob(v), (c) => c.charCodeAt(0))) : undefined };
    } catch {
      // no answer within the second: the next member
    }
  }
  return undefined;
}

/** One sample: a violation, "skipped" when etcd did not answer, or undefined when held. */
async function sample(o: SamplerOptions): Promise<string | "skipped" | undefined> {
  const [slot] = await o.sql`SELECT confirmed_flush_lsn::text AS lsn
    FROM pg_replication_slots WHERE slot_name = ${o.slot ?? "sync"}`;
  const state = await readState(o);
  if (state === undefined) return "skipped";
  const at = new Date().toISOString();
  if (!slot?.lsn) return `${at}: no slot ${o.slot ?? "sync"} with a confirmed LSN`;
  if (state.raw === undefined) return `${at}: slot confirmed ${slot.lsn}, no state key in etcd`;
  const held = (JSON.parse(state.raw) as { position?: { lsn?: string } }).position?.lsn;
  if (!held) return `${at}: slot confirmed ${slot.lsn}, the state has no LSN: ${state.raw}`;
  if (lsn(slot.lsn) > lsn(held)) {
    return `${at}: PostgreSQL was confirmed ${slot.lsn} but etcd's state holds ${held}`;
  }
  return undefined;
}

/** Start sampling in the background until `stop()`. */
export function samplePositions(o: SamplerOptions): PositionSampler {
  const violations: string[] = [];
  let samples = 0;
  let skipped = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const r = await sample(o).catch((e) => `sample failed: ${(e as Error).message}`);
      samples++;
      if (r === "skipped") skipped++;
      else if (r !== undefined) violations.push(r);
      await sleep(o.everyMs ?? 150);
    }
  })();
  step(`sampling the confirmed position against etcd's state every ${o.everyMs ?? 150} ms`);
  return {
    async check() {
      const r = await sample(o);
      if (r === "skipped") throw new Error("no etcd member answered a read of the state key");
      if (r !== undefined) throw new Error(r);
    },
    async stop() {
      stopped = true;
      await loop;
      step(`position samples: ${samples}, ${skipped} skipped (etcd not answering)`);
      if (violations.length) {
        throw new Error(
          `${violations.length} of ${samples} samples found a position confirmed that etcd ` +
            `does not hold:\n${violations.slice(0, 10).join("\n")}`,
        );
      }
      return { samples, skipped };
    },
  };
}
