/** What the server says of sync's replication slot, and taking it from a former leader. */
import type { Log } from "../core/log.ts";
import { ConfigError, setting } from "../core/errors.ts";
import { literal, type PgConn } from "./conn.ts";
import { parseLsn } from "./pgoutput.ts";
import { PgError } from "./protocol.ts";

export interface SlotState {
  /** How far the slot has confirmed (null before its first confirmation). */
  confirmed: bigint | null;
  /** A walsender holds it now. */
  active: boolean;
  /** PostgreSQL 17+: standbys keep it in step (`failover`); undefined before 17. */
  failover?: boolean;
  /** PostgreSQL 17+: a standby's synchronized copy (true stays after a promotion). */
  synced?: boolean;
  /** Why the server can no longer decode it (invalidated), or null. */
  invalid: string | null;
}

/** The slot, or null when it does not exist; a slot of another kind is a misconfiguration. */
export async function slotState(
  conn: PgConn,
  slot: string,
  database: string,
): Promise<SlotState | null> {
  // As JSON: the view's columns differ by version (failover, synced, invalidation_reason: 17).
  const r = await conn.query(
    `SELECT to_jsonb(s) FROM pg_replication_slots s WHERE slot_name = ${literal(slot)}`,
  );
  if (!r.rows.length) return null;
  const j = JSON.parse(r.rows[0][0]!) as Record<string, unknown>;
  if (j.plugin !== "pgoutput" || j.database !== database) {
    throw new ConfigError(
      `replication slot ${slot} exists but is not a pgoutput slot of database ${database}: ` +
        `choose another ${setting("slot")} or drop it`,
    );
  }
  const lsn = j.confirmed_flush_lsn;
  return {
    confirmed: typeof lsn === "string" ? parseLsn(lsn) : null,
    active: j.active === true,
    failover: typeof j.failover === "boolean" ? j.failover : undefined,
    synced: typeof j.synced === "boolean" ? j.synced : undefined,
    invalid: invalidation(j),
  };
}

/** The reason a slot was invalidated: 17's invalidation_reason, 16's conflicting, 13's lost. */
function invalidation(j: Record<string, unknown>): string | null {
  if (typeof j.invalidation_reason === "string") return j.invalidation_reason;
  if (j.conflicting === true) return "conflicting";
  if (j.wal_status === "lost") return "wal_removed";
  return null;
}

/**
 * Why the slot cannot carry on from etcd's position (undefined when it can). `promoted`:
 * the server changed timeline since that position was saved. With `failover` (sync makes
 * failover slots), a slot on a promoted server is trusted only as PostgreSQL's synchronized
 * copy (`synced`): any other (made by hand, or not yet synchronized) may not hold the
 * former primary's position. Without it, copies other tools keep (Patroni) are trusted.
 */
export function slotDistrust(
  name: string,
  s: SlotState,
  o: { promoted: boolean; failover: boolean },
): string | undefined {
  if (s.invalid) {
    return `slot ${name} was invalidated (${s.invalid}): the changes it held are gone`;
  }
  if (o.promoted && o.failover && s.synced === false) {
    return `slot ${name} on this promoted server is not a synchronized copy of the former ` +
      "primary's (synced = false)";
  }
  return undefined;
}

/**
 * With --ha: end the walsender of a former leader that still holds the slot (this process
 * is the fenced leader; the holder is paused or dead), and wait up to 5 s for it to go.
 */
export async function takeOverSlot(meta: PgConn, slot: string, log: Log): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const r = await meta.query(
      `SELECT active_pid FROM pg_replication_slots
       WHERE slot_name = ${literal(slot)} AND active_pid IS NOT NULL`,
    );
    if (!r.rows.length) return;
    if (i === 0) {
      log.warn("taking the slot over from a former leader", { pid: r.rows[0][0] });
      await meta.query(`SELECT pg_terminate_backend(${Number(r.rows[0][0])})`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
}

/**
 * The server lost WAL the slot needs to decode (a removed segment, possibly of an earlier
 * timeline after a failover, which `wal_status` does not show): no retry can read it.
 */
export function slotWalGone(e: unknown): e is PgError {
  return e instanceof PgError && e.code === "58P01" && /has already been removed/.test(e.message);
}

/**
 * A stream's failure handler: a slot that can never decode again (`slotWalGone`) is dropped,
 * so that the next attempt finds no slot and dumps every table (design: the position it
 * needs is gone) instead of retrying it forever; the error goes on to the retry loop. A slot
 * a walsender holds is left alone.
 */
export function dropIfLost(meta: () => Promise<PgConn>, slot: string, log: Log) {
  return async (e: unknown): Promise<never> => {
    if (slotWalGone(e)) {
      log.warn("the slot cannot decode: WAL it needs is gone; dropping it to dump again", {
        slot,
        reason: e.message,
      });
      await (await meta()).query(
        `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
         WHERE slot_name = ${literal(slot)} AND NOT active`,
      );
    }
    throw e;
  };
}
