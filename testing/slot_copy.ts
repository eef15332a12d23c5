/**
 * Patroni copies a permanent logical slot's position from the primary to each replica
 * once per loop. A failover test must not guess how long that takes (a loaded machine takes
 * longer): it waits until the replica's copy has reached the primary's slot.
 */
import type postgres from "postgres";
import { waitFor } from "./process.ts";

type Sql = ReturnType<typeof postgres>;

/** Wait until `replica`'s copy of `slot` has confirmed at least what `primary`'s has. */
export async function slotCopied(
  primary: Sql,
  replica: Sql,
  slot = "sync",
  timeoutMs = 60_000,
): Promise<void> {
  let seen = "";
  await waitFor(
    `the replica's copy of slot ${slot} to reach the primary's`,
    async () => {
      const [p] = await primary`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots
        WHERE slot_name = ${slot}`;
      if (!p?.lsn) return false;
      const [r] = await replica`SELECT confirmed_flush_lsn::text AS lsn,
        confirmed_flush_lsn >= ${p.lsn}::pg_lsn AS ok
        FROM pg_replication_slots WHERE slot_name = ${slot}`;
      seen = `primary ${p.lsn}, replica ${r?.lsn ?? "no slot"}`;
      return r?.ok === true;
    },
    timeoutMs,
    () => seen,
  );
}
