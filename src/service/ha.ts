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

/** What the election needs of etcd (an `EtcdClient`). */
export type ElectionClient = Pick<
  EtcdClient,
  "leaseGrant" | "leaseKeepAlive" | "leaseRevoke" | "campaign" | "resign"
>;

export interface ElectionOptions {
  client: ElectionClient;
  /** Election name (a key prefix). */
  name: string;
  /** This process's identity, stored as the leader value. */
  id: string;
  ttlSeconds: number;
  log: Log;
  signal: AbortSignal;
}

/** A failed keep-alive is tried again this soon while the lease may still be alive. */
const RETRY_MS = 250;

/**
 * Keep `lease` alive at a third of its TTL until `stopped()`; resolves with why it was lost
 * (undefined when stopped). A keep-alive that fails (a member frozen or restarting, a leader
 * election) is tried again, on whichever member answers, until the lease may have expired:
 * `expiresAt` counts from the moment each successful keep-alive was sent, so it never runs
 * past etcd's own deadline. Giving up early would hand leadership over for a blip; giving up
 * late is harmless, since every write is fenced by the leader key.
 */
export async function keepLease(
  client: Pick<ElectionClient, "leaseKeepAlive">,
  lease: string,
  ttlMs: number,
  grantedAt: number,
  stopped: () => boolean,
  log: Log,
): Promise<string | undefined> {
  let expiresAt = grantedAt + ttlMs;
  let nextAt = grantedAt + ttlMs / 3;
  let failures = 0;
  while (!stopped()) {
    await new Promise((r) => setTimeout(r, Math.max(0, nextAt - Date.now())));
    if (stopped()) return undefined;
    const sentAt = Date.now();
    const left = expiresAt - sentAt;
    if (left <= 0) return `no keep-alive answered within the ${ttlMs / 1000} s lease`;
    try {
      const ttl = await client.leaseKeepAlive(lease, Math.max(RETRY_MS, left));
      if (ttl <= 0) return "lease expired";
      expiresAt = sentAt + ttl * 1000;
      nextAt = sentAt + ttlMs / 3;
      failures = 0;
    } catch (e) {
      if (stopped()) return undefined;
      const reason = (e as Error).message.split("\n")[0];
      if (Date.now() >= expiresAt) return reason;
      if (failures++ === 0) log.warn("lease keep-alive failed; retrying", { reason });
      nextAt = Date.now() + RETRY_MS;
    }
  }
  return undefined;
}

/** Block until this process is the leader (or `signal` aborts, which throws). */
export async function campaign(o: ElectionOptions): Promise<Leadership> {
  const grantedAt = Date.now();
  const lease = await o.client.leaseGrant(o.ttlSeconds);
  const lost = new AbortController();
  let stopped = false;
  const keepAlive = keepLease(
    o.client,
    lease,
    o.ttlSeconds * 1000,
    grantedAt,
    () => stopped,
    o.log,
  ).then((why) => {
    if (why === undefined || stopped) return;
    o.log.warn("leadership lost", { reason: why });
    lost.abort();
  });
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
