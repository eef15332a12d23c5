/**
 * Connecting to PostgreSQL for the driver and for `sync check`, `status` and `drop`: the
 * first primary of a multi-host URL, and errors no retry can fix said as what to change.
 */
import { asConfigError, ConfigError, type ConfigErrorRules, setting } from "../core/errors.ts";
import { PgConn, PgConnectionError } from "./conn.ts";
import { PgError } from "./protocol.ts";
import type { PgUrl } from "./url.ts";

/**
 * What fixes a missing privilege (SQLSTATE 42501), by what was refused. Creating the
 * publication is not covered by REPLICATION: FOR ALL TABLES needs a superuser, FOR TABLE the
 * CREATE privilege on the database and ownership of the tables.
 */
export function privilegeFix(message: string, user: string, detail = ""): string {
  if (/CONNECT privilege/i.test(detail)) {
    return `grant CONNECT on the database to "${user}"`;
  }
  if (/replication role|start walsender/i.test(message)) {
    return `grant the REPLICATION attribute and SELECT on the tables: ALTER ROLE "${user}" ` +
      "REPLICATION";
  }
  if (
    /publication|permission denied for database|must be owner of (table|relation)/i.test(message)
  ) {
    return PUBLICATION_FIX;
  }
  if (/permission denied for (table|relation|schema|sequence)/i.test(message)) {
    return `grant SELECT on the replicated tables (and USAGE on their schemas) to "${user}"`;
  }
  return `grant "${user}" what the message names`;
}

/** The ways to a publication a role with only REPLICATION cannot create itself. */
export const PUBLICATION_FIX = "sync creates the publication when it is missing, which " +
  "REPLICATION does not allow: create it once as a superuser (CREATE PUBLICATION name FOR " +
  `ALL TABLES, named by ${setting("publication")}), or run sync as a superuser; with ` +
  `${setting("tables")}, CREATE on the database and owning those tables is enough`;

/** Server errors a retry cannot fix, by SQLSTATE: say what to change instead of retrying. */
export function pgConfigErrors(url: PgUrl): ConfigErrorRules {
  return (e) => {
    if (!(e instanceof PgError)) return undefined;
    const where = `${url.hosts.map((h) => `${h.host}:${h.port}`).join(",")}`;
    switch (e.code) {
      case "28P01":
      case "28000":
        return new ConfigError(
          `PostgreSQL at ${where} refused user "${url.user}": ${e.message} ` +
            `(check the user and password in ${setting("dbUrl")}, and pg_hba.conf)`,
          { code: "auth" },
        );
      case "3D000":
        return new ConfigError(
          `PostgreSQL at ${where}: ${e.message} (fix the database in ${setting("dbUrl")})`,
        );
      case "42501":
        return new ConfigError(
          `PostgreSQL: ${e.message} (${privilegeFix(e.message, url.user, e.detail)})`,
          { code: "permission" },
        );
      case "42602": // invalid name (a slot name PostgreSQL refuses)
        return new ConfigError(
          `PostgreSQL: ${e.message} (fix ${setting("slot")} or ${setting("publication")})`,
        );
      case "55000":
        return new ConfigError(
          `PostgreSQL: ${e.message}${e.hint ? ` (${e.hint})` : ""} ` +
            "(set max_replication_slots > 0 and wal_level = logical, then restart PostgreSQL)",
        );
    }
    // Anything else is retried, e.g. 53400 (all replication slots in use: may free up).
    return undefined;
  };
}

async function readCaCerts(url: PgUrl): Promise<string[] | undefined> {
  if (!url.sslRootCert) return undefined;
  try {
    return [await Deno.readTextFile(url.sslRootCert)];
  } catch (e) {
    throw new ConfigError(`cannot read sslrootcert ${url.sslRootCert}: ${(e as Error).message}`);
  }
}

/**
 * Connect to the first host that is a primary (unless target_session_attrs=any), so a
 * multi-host URL follows a failover.
 */
export async function connectPrimary(url: PgUrl, replication: boolean): Promise<PgConn> {
  const caCerts = await readCaCerts(url);
  const reasons: string[] = [];
  for (const h of url.hosts) {
    let conn: PgConn | undefined;
    try {
      conn = await PgConn.connect({
        host: h.host,
        port: h.port,
        user: url.user,
        password: url.password,
        database: url.database,
        sslMode: url.sslMode,
        caCerts,
        replication,
        applicationName: url.applicationName,
        connectTimeoutMs: url.connectTimeoutMs,
      });
      if (url.targetSessionAttrs !== "any") {
        const r = await conn.query("SELECT pg_is_in_recovery()");
        if (r.rows[0][0] === "t") {
          conn.close();
          reasons.push(`${h.host}:${h.port} is in recovery (a standby)`);
          continue;
        }
      }
      return conn;
    } catch (e) {
      conn?.close();
      const err = asConfigError(e, pgConfigErrors(url));
      if (err instanceof ConfigError) throw err;
      if (url.hosts.length === 1) throw err;
      reasons.push(`${h.host}:${h.port}: ${(err as Error).message}`);
    }
  }
  throw new PgConnectionError(`no primary reachable: ${reasons.join("; ")}`);
}
