/**
 * What a workload is: a seeded generator of operations (statements run one by one, alone
 * or in a transaction that commits or rolls back). The sequence depends only on the seed;
 * whether a statement succeeds may depend on timing (faults), which the checker does not
 * care about: it compares etcd with whatever the database ended up holding.
 */
import type { Rng } from "./prng.ts";

export interface Op {
  /** For the log and the op mix. */
  kind: string;
  stmts: string[];
  /** `auto`: one statement in autocommit. */
  end: "auto" | "commit" | "rollback";
}

export interface Workload {
  /** DDL and initial rows, run before sync starts. */
  readonly schema: string;
  next(): Op;
}

/** One column of a type-rich table: its SQL type and a pool of literals. */
export type Column = [name: string, type: string, literals: string[]];

/** A row of literals for `cols` (NULL sometimes). */
export function rowOf(r: Rng, cols: Column[], nullP = 0.1): string[] {
  return cols.map(([, , lits]) => (r.chance(nullP) ? "NULL" : r.pick(lits)));
}

/**
 * Group single-statement ops into transactions now and then: `single()` makes one op's
 * statements; some are wrapped with others in BEGIN … COMMIT/ROLLBACK.
 */
export function withTransactions(r: Rng, single: () => Op): Op {
  const roll = r.next();
  if (roll < 0.22) {
    const n = r.int(2, 7);
    const stmts: string[] = [];
    const kinds: string[] = [];
    for (let i = 0; i < n; i++) {
      const op = single();
      stmts.push(...op.stmts);
      kinds.push(op.kind);
    }
    const end = r.chance(0.25) ? "rollback" : "commit";
    return { kind: `txn(${kinds.join(",")})`, stmts, end };
  }
  return single();
}
