/** What the server says of sync's replication slot, and taking it from a former leader. */
import type { Log } from "../core/log.ts";
import { ConfigError } from "../core/source.ts";
import { literal, type PgConn } from "./conn.ts";
import { parseLsn } from "./pgoutput.ts";

export interface SlotState {
  /** How far the slot has confirmed (null before its first confirmation). */
  confirmed: bigint | null;
  /** A walsender holds it now. */
  active: boolean;
}

/** The slot, or null when it does not exist; a slot of another kind is a misconfiguration. */
export async function slotState(
  conn: PgConn,
  slot: string,
  database: string,
): Promise<SlotState | null> {
  const r = await conn.query(
    `SELECT confirmed_flush_lsn, active, plugin, database FROM pg_replication_slots
     WHERE slot_name = ${literal(slot)}`,
  );
  if (!r.rows.length) return null;
  const [lsn, active, plugin, db] = r.rows[0];
  if (plugin !== "pgoutput" || db !== database) {
    throw new ConfigError(
      `replication slot ${slot} exists but is not a pgoutput slot of database ${database}: ` +
        "choose another --slot or drop it",
    );
  }
  return { confirmed: lsn ? parseLsn(lsn) : null, active: active === "t" };
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
