/**
 * The proof that exactly one `--ha` leader wrote at a time, read from etcd's own history (a
 * watch from revision 1, `etcdHistory`), without sync's code: the election's keys give each
 * leadership term (the candidate key with the lowest create revision leads, etcd's election
 * recipe); every state the sink wrote names the leader key its transaction was fenced by,
 * and must name the leader of the term its revision falls in; every data write must fall in
 * a term; the saved position never goes back.
 */
import type { HistoryEvent } from "./etcd_cluster.ts";
import { lsn } from "./position_sampler.ts";

export interface HistoryVerdict {
  /** One line per change of leader, and the states each leader wrote. */
  terms: string[];
  /** Every violation; empty when one leader wrote at a time. */
  problems: string[];
}

interface Candidate {
  created: number;
  id: string;
}

/** `prefix`: the data prefix (`/h`); `stateKey`: the source's state key. */
export function judgeHistory(
  events: HistoryEvent[],
  prefix: string,
  stateKey: string,
): HistoryVerdict {
  const election = `${stateKey}/leader/`;
  const candidates = new Map<string, Candidate>();
  const leaderNow = () => {
    let best: [string, Candidate] | undefined;
    for (const c of candidates) if (!best || c[1].created < best[1].created) best = c;
    return best;
  };
  const terms: string[] = [];
  const problems: string[] = [];
  const writes = new Map<string, number>();
  let lastLsn = -1n;
  let i = 0;
  while (i < events.length) {
    // One transaction's events share a revision: judged against the term before it.
    const rev = events[i].modRevision;
    const leader = leaderNow();
    const txn: HistoryEvent[] = [];
    while (i < events.length && events[i].modRevision === rev) txn.push(events[i++]);
    for (const e of txn) {
      if (e.key.startsWith(election)) continue;
      if (e.key === stateKey && e.type === "PUT") {
        const state = JSON.parse(e.value) as { leader?: string; position?: { lsn?: string } };
        if (state.leader !== leader?.[0]) {
          problems.push(`rev ${rev}: a state fenced by ${state.leader} while ${leader?.[0]} led`);
        }
        const at = state.position?.lsn ? lsn(state.position.lsn) : -1n;
        if (at < lastLsn) problems.push(`rev ${rev}: the saved position went back`);
        lastLsn = at > lastLsn ? at : lastLsn;
        if (leader) writes.set(leader[1].id, (writes.get(leader[1].id) ?? 0) + 1);
      } else if (e.key.startsWith(`${prefix}/`) && !leader) {
        problems.push(`rev ${rev}: ${e.type} ${e.key} while no process led`);
      }
    }
    for (const e of txn) {
      if (!e.key.startsWith(election)) continue;
      const before = leaderNow()?.[0];
      if (e.type === "PUT" && !candidates.has(e.key)) {
        candidates.set(e.key, { created: e.createRevision, id: e.value });
      } else if (e.type === "DELETE") candidates.delete(e.key);
      const after = leaderNow();
      const who = candidates.get(e.key)?.id ?? e.key.slice(election.length);
      const now = after ? `${after[1].id} leads` : "no leader";
      if (after?.[0] !== before) terms.push(`rev ${rev}: ${e.type} ${who}: ${now}`);
    }
  }
  terms.push(`states written per leader: ${JSON.stringify(Object.fromEntries(writes))}`);
  return { terms, problems };
}
