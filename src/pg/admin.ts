/**
 * `sync check`, `sync status` and `sync drop` for PostgreSQL. `check` runs every test that
 * would make `sync run` fail at start (design: Failure rules), each with what fixes it.
 */
import type { PgSourceOptions } from "./options.ts";
import type { CheckResult, Inspection, SavedState } from "../core/source.ts";
import { asConfigError, ConfigError, setting } from "../core/errors.ts";
import { ident, literal, type PgConn } from "./conn.ts";
import { connectPrimary, pgConfigErrors } from "./connect.ts";
import { parsePgUrl, type PgUrl } from "./url.ts";
import { parseLsn } from "./pgoutput.ts";
import { identityProblem, listTables, qualified, type TableInfo } from "./catalog.ts";
import { failoverChecks, failoverStatus } from "./failover.ts";

/** The first few names of a list, for one line. */
function some(names: string[]): string {
  return `${names.slice(0, 5).join(", ")}${names.length > 5 ? ", ..." : ""}`;
}

/** Connect like `run` does; a role without REPLICATION still gets the other checks. */
async function reach(url: PgUrl, out: CheckResult[]): Promise<PgConn | undefined> {
  const where = `${url.hosts.map((h) => `${h.host}:${h.port}`).join(",")}/${url.database}`;
  try {
    const conn = await connectPrimary(url, true);
    out.push({ name: "database reachable", ok: true, detail: where });
    return conn;
  } catch (e) {
    let err = asConfigError(e, pgConfigErrors(url)) as Error;
    // A role without REPLICATION cannot open a replication connection: connect plainly so
    // the other checks still run (the privilege check below fails, with its fix).
    if (/must be superuser or replication role/.test(err.message)) {
      const plain = await connectPrimary(url, false).catch((e2) => {
        err = asConfigError(e2, pgConfigErrors(url)) as Error;
        return undefined;
      });
      if (plain) {
        out.push({ name: "database reachable", ok: true, detail: where });
        return plain;
      }
    }
    out.push({
      name: "database reachable",
      ok: false,
      detail: err.message.split("\n")[0],
      fix: "check host, port, user, password and pg_hba.conf (replication connections too)",
      code: err instanceof ConfigError ? err.code : undefined,
    });
    return undefined;
  }
}

export async function check(opts: PgSourceOptions): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const url = parsePgUrl(opts.url);
  const conn = await reach(url, out);
  if (!conn) return out;
  try {
    const one = async (sql: string) => (await conn.query(sql)).rows[0]?.[0] ?? "";
    const version = Number(await one("SHOW server_version_num"));
    out.push({
      name: "server version",
      ok: version >= 100000,
      detail: String(await one("SHOW server_version")),
      fix: "PostgreSQL 10 or later is needed",
    });
    const wal = await one("SHOW wal_level");
    out.push({
      name: "wal_level",
      ok: wal === "logical",
      detail: wal,
      fix: "set wal_level = logical in postgresql.conf and restart",
    });
    const role = await conn.query(
      "SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user",
    );
    const [repl, sup] = role.rows[0] ?? [];
    out.push({
      name: "replication privilege",
      ok: repl === "t" || sup === "t",
      detail: `replication=${repl} superuser=${sup}`,
      fix: `ALTER ROLE "${url.user}" REPLICATION`,
    });
    out.push(...await slotChecks(conn, opts, url));
    out.push(...await failoverChecks(conn, opts, url, version));
    const tables = await listTables(conn, version, opts.filter, opts.keys);
    out.push(...tableChecks(tables));
    out.push(await readCheck(conn, tables, url));
    out.push(await publicationCheck(conn, opts, url, tables, sup === "t"));
  } finally {
    conn.close();
  }
  return out;
}

/** Room for a slot and a WAL sender, and a slot of ours that `run` can use. */
async function slotChecks(
  conn: PgConn,
  opts: PgSourceOptions,
  url: PgUrl,
): Promise<CheckResult[]> {
  const slot = opts.driver.slot;
  const slots = await conn.query(
    `SELECT current_setting('max_replication_slots')::int, count(*),
            bool_or(slot_name = ${literal(slot)})
     FROM pg_replication_slots`,
  );
  const [max, used, ours] = slots.rows[0];
  const senders = await conn.query(
    `SELECT current_setting('max_wal_senders')::int,
            (SELECT count(*) FROM pg_stat_replication)`,
  );
  const [maxS, usedS] = senders.rows[0];
  // `run` refuses a slot of that name made for something else (another plugin or database).
  const mine = await conn.query(
    `SELECT coalesce(plugin, 'physical'), coalesce(database, '') FROM pg_replication_slots
     WHERE slot_name = ${literal(slot)}`,
  );
  const [plugin, database] = mine.rows[0] ?? [];
  const usable = !mine.rows.length || (plugin === "pgoutput" && database === url.database);
  return [
    {
      name: "free replication slots",
      ok: ours === "t" || Number(max) > Number(used),
      detail: `${used} of ${max} used${ours === "t" ? `, ${slot} exists` : ""}`,
      fix: "raise max_replication_slots or drop unused slots",
    },
    {
      name: "replication slot",
      ok: usable,
      detail: !mine.rows.length
        ? `${slot} will be created at first start`
        : usable
        ? `${slot} exists (pgoutput, database ${database})`
        : `${slot} is a ${plugin} slot${database ? ` of database ${database}` : ""}`,
      fix: `choose another ${setting("slot")}, or drop that one: SELECT pg_drop_replication_slot(` +
        `${literal(slot)})`,
    },
    {
      name: "free WAL senders",
      ok: Number(maxS) > Number(usedS),
      detail: `${usedS} of ${maxS} used`,
      fix: "raise max_wal_senders",
    },
  ];
}

function tableChecks(tables: TableInfo[]): CheckResult[] {
  const noKey = tables.filter((t) => !t.keyColumns.length).map((t) => `${t.schema}.${t.name}`);
  const identity = tables.map(identityProblem).filter((p) => p !== undefined);
  return [
    {
      name: "tables have primary keys",
      ok: noKey.length === 0,
      detail: noKey.length ? `not replicated: ${some(noKey)}` : `${tables.length} tables selected`,
      fix: `add a primary key to each table, give it key columns with ${setting("keys")} ` +
        `(and REPLICA IDENTITY FULL), or leave it out with ${setting("exclude")}`,
    },
    {
      name: "replica identity carries the key",
      ok: identity.length === 0,
      detail: identity.length ? identity[0]! : "deletes name their keys",
      fix: "run the ALTER TABLE ... REPLICA IDENTITY the detail names",
    },
  ];
}

/** The dump reads every replicated table: SELECT on it and USAGE on its schema. */
async function readCheck(conn: PgConn, tables: TableInfo[], url: PgUrl): Promise<CheckResult> {
  const keyed = tables.filter((t) => t.keyColumns.length);
  const denied = keyed.length
    ? (await conn.query(
      `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.oid IN (${keyed.map((t) => t.oid).join(",")})
         AND NOT (has_schema_privilege(c.relnamespace, 'USAGE')
                  AND has_table_privilege(c.oid, 'SELECT'))
       ORDER BY 1, 2`,
    )).rows.map(([s, t]) => qualified({ schema: s!, name: t! }))
    : [];
  return {
    name: "read privilege",
    ok: denied.length === 0,
    detail: denied.length ? `cannot read ${some(denied)}` : `SELECT on ${keyed.length} tables`,
    fix: `GRANT SELECT ON ${some(denied)} TO ${ident(url.user)} (and USAGE on their schemas)`,
  };
}

/**
 * `run` creates the publication when it is missing, and keeps a FOR TABLE one in step with
 * --tables. REPLICATION allows neither: FOR ALL TABLES takes a superuser; FOR TABLE takes
 * CREATE on the database and owning the tables; changing one takes owning it.
 */
async function publicationCheck(
  conn: PgConn,
  opts: PgSourceOptions,
  url: PgUrl,
  tables: TableInfo[],
  superuser: boolean,
): Promise<CheckResult> {
  const pub = opts.driver.publication;
  const name = "publication";
  const r = await conn.query(
    `SELECT puballtables, pg_has_role(pubowner, 'USAGE') FROM pg_publication
     WHERE pubname = ${literal(pub)}`,
  );
  const want = tables.filter((t) => t.keyColumns.length);
  const forTable = `CREATE PUBLICATION ${ident(pub)} FOR TABLE ${some(want.map(qualified))}`;
  if (r.rows.length) {
    const [all, owner] = r.rows[0];
    const detail = `${pub} exists${all === "t" ? " (all tables)" : ""}`;
    if (opts.filter.all || all === "t" || superuser || owner === "t") {
      return { name, ok: true, detail };
    }
    const have = await conn.query(
      `SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = ${literal(pub)}`,
    );
    const got = new Set(have.rows.map(([s, t]) => qualified({ schema: s!, name: t! })));
    const same = got.size === want.length && want.every((t) => got.has(qualified(t)));
    return {
      name,
      ok: same,
      detail: same
        ? detail
        : `${detail}; following ${setting("tables")} means changing it, which takes its owner`,
      fix: `ALTER PUBLICATION ${ident(pub)} OWNER TO ${ident(url.user)}, or drop it so sync ` +
        "creates it",
    };
  }
  const created = `${pub} will be created at first start`;
  if (superuser) return { name, ok: true, detail: created };
  if (opts.filter.all) {
    return {
      name,
      ok: false,
      detail: `${pub} is missing, and creating it FOR ALL TABLES takes a superuser`,
      fix: `create it once as a superuser: CREATE PUBLICATION ${ident(pub)} FOR ALL TABLES; ` +
        `or run sync as a superuser; or name the tables with ${setting("tables")} (a FOR TABLE ` +
        "publication takes CREATE on the database and owning the tables)",
    };
  }
  const may = await conn.query(
    `SELECT has_database_privilege(current_database(), 'CREATE'), coalesce(array_to_string(
       array(SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid IN (${want.map((t) => t.oid).join(",") || "0"})
               AND NOT pg_has_role(c.relowner, 'USAGE') ORDER BY 1), ', '), '')`,
  );
  const [create, notOwned] = may.rows[0];
  const lacks = [
    ...(create === "t" ? [] : [`CREATE on database ${url.database}`]),
    ...(notOwned ? [`owning ${notOwned}`] : []),
  ];
  return {
    name,
    ok: lacks.length === 0,
    detail: lacks.length
      ? `${pub} is missing, and creating it takes ${lacks.join(" and ")}`
      : created,
    fix: `create it once as a superuser: ${forTable}; or GRANT CREATE ON DATABASE ` +
      `${ident(url.database)} TO ${ident(url.user)} and make ${ident(url.user)} own the tables`,
  };
}

export async function inspect(
  opts: PgSourceOptions,
  state: SavedState | null,
): Promise<Inspection> {
  const url = parsePgUrl(opts.url);
  const conn = await connectPrimary(url, false);
  try {
    const r = await conn.query(
      `SELECT s.active, s.confirmed_flush_lsn, pg_current_wal_lsn(),
              pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint,
              pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint
       FROM pg_replication_slots s WHERE s.slot_name = ${literal(opts.driver.slot)}`,
    );
    const current = (await conn.query("SELECT pg_current_wal_lsn()")).rows[0][0]!;
    // A saved position this server never reached: etcd holds another history (a restore).
    const saved = state?.position.lsn;
    const ahead = typeof saved === "string" && parseLsn(saved) > parseLsn(current)
      ? `the saved ${saved} is past this server's WAL end`
      : undefined;
    const aheadLine: Inspection["details"] = ahead
      ? { saved_ahead: `${ahead}: the next start dumps` }
      : {};
    if (!r.rows.length) {
      return {
        streaming: { active: false },
        dumps: ahead ?? "slot missing",
        details: { slot: `${opts.driver.slot} (missing)`, server_lsn: current, ...aheadLine },
      };
    }
    const [active, confirmed, , retained, lag] = r.rows[0];
    return {
      lagBytes: Number(lag),
      streaming: active === "t"
        ? { active: true, evidence: "the slot is in use" }
        : { active: false },
      dumps: ahead,
      details: {
        slot: opts.driver.slot,
        slot_active: active === "t",
        confirmed_lsn: confirmed,
        server_lsn: current,
        retained_wal_bytes: Number(retained),
        lag_bytes: Number(lag),
        saved_lsn: saved ?? null,
        ...aheadLine,
        ...await failoverStatus(conn, opts.driver.slot, url),
      },
    };
  } finally {
    conn.close();
  }
}

export async function drop(opts: PgSourceOptions): Promise<string[]> {
  const url = parsePgUrl(opts.url);
  const conn = await connectPrimary(url, false);
  const removed: string[] = [];
  try {
    const s = await conn.query(
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
       WHERE slot_name = ${literal(opts.driver.slot)}`,
    );
    if (s.rows.length) removed.push(`replication slot ${opts.driver.slot}`);
    const p = await conn.query(
      `SELECT 1 FROM pg_publication WHERE pubname = ${literal(opts.driver.publication)}`,
    );
    if (p.rows.length) {
      await conn.query(`DROP PUBLICATION ${ident(opts.driver.publication)}`);
      removed.push(`publication ${opts.driver.publication}`);
    }
  } finally {
    conn.close();
  }
  return removed;
}
