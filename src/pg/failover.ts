/**
 * `sync check` on failover slots (PostgreSQL 17+): is the slot one the standbys keep in step,
 * does the primary hold changes back until they have the WAL, and does each standby the URL
 * names keep a usable synchronized copy. Each missing setting is named with its value.
 * `sync status` shows the same state, without judging it.
 */
import type { PgSourceOptions } from "./options.ts";
import type { CheckResult, InspectionValue } from "../core/source.ts";
import { literal, type PgConn } from "./conn.ts";
import { connectPrimary } from "./connect.ts";
import type { PgUrl } from "./url.ts";
import { setting as named } from "../core/errors.ts";

const NAME = "failover slot";

/** The slot's row as JSON (the view's columns differ by version), or null. */
async function slotRow(conn: PgConn, slot: string): Promise<Record<string, unknown> | null> {
  const r = await conn.query(
    `SELECT to_jsonb(s) FROM pg_replication_slots s WHERE slot_name = ${literal(slot)}`,
  );
  return r.rows.length ? JSON.parse(r.rows[0][0]!) : null;
}

/** A setting's value; "" when unset or hidden from this role (primary_conninfo). */
async function setting(conn: PgConn, name: string): Promise<string> {
  try {
    const r = await conn.query(`SELECT current_setting(${literal(name)}, true)`);
    return r.rows[0]?.[0] ?? "";
  } catch {
    return "";
  }
}

export async function failoverChecks(
  primary: PgConn,
  opts: PgSourceOptions,
  url: PgUrl,
  version: number,
): Promise<CheckResult[]> {
  if (version < 170000) {
    return [{
      name: NAME,
      ok: true,
      detail: "needs PostgreSQL 17: after a failover sync resumes only from a slot another " +
        "tool keeps on the standby (Patroni permanent slots), else it dumps again",
    }];
  }
  if (opts.driver.failover === false) {
    return [{ name: NAME, ok: true, detail: `off (${named("slotFailover", false)})` }];
  }
  const slot = opts.driver.slot;
  const row = await slotRow(primary, slot);
  const waitFor = (await setting(primary, "synchronized_standby_slots")).trim();
  const out: CheckResult[] = [primaryCheck(slot, row, waitFor, url)];
  for (const h of url.hosts.slice(1)) {
    out.push(
      await standbyCheck({ ...url, hosts: [h], targetSessionAttrs: "any" }, slot, {
        onPrimary: row !== null,
        waitFor: waitFor.split(",").map((s) => s.trim().replace(/^"|"$/g, "")).filter(Boolean),
      }),
    );
  }
  return out;
}

function primaryCheck(
  slot: string,
  row: Record<string, unknown> | null,
  waitFor: string,
  url: PgUrl,
): CheckResult {
  // One host: nothing to fail over to that the check can see, so no failure.
  const flag = row === null || row.failover === true || url.hosts.length === 1;
  const held = waitFor !== "" || url.hosts.length === 1;
  const problems = [
    ...(flag ? [] : [`slot ${slot} was made without failover`]),
    ...(held ? [] : ["synchronized_standby_slots is empty"]),
  ];
  const slotText = row === null
    ? `${slot} will be created with failover`
    : `${slot} failover=${row.failover}`;
  return {
    name: `${NAME}: primary`,
    ok: problems.length === 0,
    detail: problems.length
      ? problems.join("; ")
      : `${slotText}, synchronized_standby_slots = '${waitFor}'${
        url.hosts.length === 1
          ? ` (no standby in ${named("dbUrl")}: a failover needs both hosts)`
          : ""
      }`,
    fix: [
      ...(flag ? [] : [
        `on a replication connection (psql "dbname=${url.database} replication=database") ` +
        `run ALTER_REPLICATION_SLOT ${slot} ( FAILOVER true ) while sync is stopped`,
      ]),
      ...(held ? [] : [
        "set synchronized_standby_slots = '<each standby's primary_slot_name>' on the " +
        "primary, so sync never gets a change a standby lacks",
      ]),
    ].join("; "),
  };
}

/** One standby of the URL: its slot-sync settings and its copy of the slot. */
async function standbyCheck(
  url: PgUrl,
  slot: string,
  o: { onPrimary: boolean; waitFor: string[] },
): Promise<CheckResult> {
  const where = `${url.hosts[0].host}:${url.hosts[0].port}`;
  const name = `${NAME}: ${where}`;
  let conn: PgConn;
  try {
    conn = await connectPrimary(url, false);
  } catch (e) {
    return {
      name,
      ok: false,
      detail: `unreachable: ${(e as Error).message.split("\n")[0]}`,
      fix: `start it, or take it out of ${named("dbUrl")}`,
    };
  }
  try {
    const standby = (await conn.query("SELECT pg_is_in_recovery()")).rows[0][0] === "t";
    if (!standby) return { name, ok: true, detail: "a primary, not a standby" };
    const missing = await missingSettings(conn, o.waitFor);
    const row = await slotRow(conn, slot);
    const copy = row === null
      ? o.onPrimary ? "no copy of the slot yet" : "slot not created yet"
      : `synced=${row.synced}, temporary=${row.temporary}, invalidation_reason=${
        row.invalidation_reason ?? "none"
      }`;
    const usable = row === null
      ? !o.onPrimary
      : row.synced === true && row.temporary === false && !row.invalidation_reason;
    return {
      name,
      ok: missing.length === 0 && usable,
      detail: missing.length ? `${copy}; missing: ${missing.join(", ")}` : copy,
      fix: missing.length
        ? `set ${missing.join(", ")} (the standby's settings in its postgresql.conf)`
        : row?.synced === false
        ? `drop the standby's own slot ${slot} (made there, not synchronized) so the ` +
          "primary's can be synchronized"
        : "wait for the slot sync worker (see the standby's log), or fix what it reports",
    };
  } finally {
    conn.close();
  }
}

/**
 * `sync status` on PostgreSQL 17+: the slot's failover flag (`failover_slot`), and for each
 * standby the URL names, its copy (`failover_standby <host:port>`: synced,
 * invalidation_reason), or why there is none to read. Empty before 17 or without the slot.
 */
export async function failoverStatus(
  primary: PgConn,
  slot: string,
  url: PgUrl,
): Promise<Record<string, InspectionValue>> {
  if (Number(await setting(primary, "server_version_num")) < 170000) return {};
  const row = await slotRow(primary, slot);
  if (row === null) return {};
  const out: Record<string, InspectionValue> = { failover_slot: row.failover === true };
  for (const h of url.hosts.slice(1)) {
    const where = `${h.host}:${h.port}`;
    const seen = copies.get(`${slot} ${where}`);
    if (seen && Date.now() - seen.at < STANDBY_EVERY_MS) {
      out[`failover_standby ${where}`] = seen.text;
      continue;
    }
    const one = { ...url, hosts: [h], targetSessionAttrs: "any" as const };
    const text = await standbyCopy(one, slot);
    copies.set(`${slot} ${where}`, { at: Date.now(), text });
    out[`failover_standby ${where}`] = text;
  }
  return out;
}

/**
 * A running sync's lag poll inspects every few seconds: each standby is asked at most once
 * a minute (`sync status`, a process of its own, always asks).
 */
const STANDBY_EVERY_MS = 60_000;
const copies = new Map<string, { at: number; text: string }>();

/** One standby's copy of the slot, as `sync status` prints it. */
async function standbyCopy(url: PgUrl, slot: string): Promise<string> {
  let conn: PgConn;
  try {
    conn = await connectPrimary(url, false);
  } catch (e) {
    return `unreachable: ${(e as Error).message.split("\n")[0]}`;
  }
  try {
    const standby = (await conn.query("SELECT pg_is_in_recovery()")).rows[0][0] === "t";
    if (!standby) return "a primary, not a standby";
    const row = await slotRow(conn, slot);
    if (row === null) return "no copy of the slot";
    return `synced=${row.synced}, invalidation_reason=${row.invalidation_reason ?? "none"}`;
  } finally {
    conn.close();
  }
}

/** The settings a standby needs to keep failover slots in step, as `name = value` to set. */
async function missingSettings(conn: PgConn, waitFor: string[]): Promise<string[]> {
  const missing: string[] = [];
  if ((await setting(conn, "sync_replication_slots")) !== "on") {
    missing.push("sync_replication_slots = on");
  }
  if ((await setting(conn, "hot_standby_feedback")) !== "on") {
    missing.push("hot_standby_feedback = on");
  }
  const physical = await setting(conn, "primary_slot_name");
  if (!physical) missing.push("primary_slot_name = '<its physical slot on the primary>'");
  else if (!waitFor.includes(physical)) {
    missing.push(`synchronized_standby_slots listing '${physical}' on the primary`);
  }
  const conninfo = await setting(conn, "primary_conninfo");
  // Hidden from roles without pg_read_all_settings: then it cannot be judged here.
  if (conninfo && !/(^|\s)dbname\s*=/.test(conninfo)) {
    missing.push("dbname=... in primary_conninfo");
  }
  if ((await setting(conn, "wal_level")) !== "logical") missing.push("wal_level = logical");
  return missing;
}
