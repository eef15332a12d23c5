/**
 * `--ha`: one active sync per source. Leadership comes from etcd's election API on a lease
 * kept alive in the background; every data transaction is fenced with a compare on the
 * leader key's create revision, so a paused old leader can never write after a new one took
 * over.
 */
import type { Log } from "../core/log.ts";
import type { EtcdClient, LeaderKey, TxnCompare } from "../etcd/client.ts";

export interface Leadership {
  /** The compare every data transaction must pass. */
  fence(): TxnCompare[];
  /** Aborts when the lease is lost. */
  readonly lost: AbortSignal;
  /** Give up leadership (clean shutdown). */
  resign(): Promise<void>;
}

export interface ElectionOptions {
  client: EtcdClient;
  /** Election name (a key prefix). */
  name: string;
  /** This process's identity, stored as the leader value. */
  id: string;
  ttlSeconds: number;
  log: Log;
  signal: AbortSignal;
}

/** Block until this process is the leader (or `signal` aborts, which throws). */
export async function campaign(o: ElectionOptions): Promise<Leadership> {
  const lease = await o.client.leaseGrant(o.ttlSeconds);
  const lost = new AbortController();
  let stopped = false;
  // Keep the lease alive at a third of its TTL; a failed or expired keep-alive ends
  // leadership.
  const keepAlive = (async () => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, (o.ttlSeconds * 1000) / 3));
      if (stopped) return;
      try {
        if (await o.client.leaseKeepAlive(lease) <= 0) throw new Error("lease expired");
      } catch (e) {
        if (stopped) return;
        o.log.warn("leadership lost", { reason: (e as Error).message });
        lost.abort();
        return;
      }
    }
  })();
  const onAbort = () => {
    stopped = true;
    lost.abort();
  };
  o.signal.addEventListener("abort", onAbort, { once: true });
  let leader: LeaderKey;
  try {
    o.log.info("campaigning for leadership", { election: o.name, id: o.id });
    // Campaign blocks until this process leads: no request timeout, only the signal.
    leader = await o.client.campaign(o.name, lease, o.id, 2 ** 31 - 1);
  } catch (e) {
    stopped = true;
    await o.client.leaseRevoke(lease).catch(() => {});
    throw e;
  }
  if (lost.signal.aborted) throw new Error("leadership lost while campaigning");
  o.log.info("leader", { election: o.name, id: o.id });
  return {
    fence: () => [
      { key: leader.key, target: "CREATE", result: "EQUAL", createRevision: leader.rev },
    ],
    lost: lost.signal,
    async resign() {
      stopped = true;
      o.signal.removeEventListener("abort", onAbort);
      await o.client.resign(leader).catch(() => {});
      await o.client.leaseRevoke(lease).catch(() => {});
      await keepAlive;
    },
  };
}
