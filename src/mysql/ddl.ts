/** What a DDL statement in the binlog does to replicated tables (pure). */

const NAME = "(?:`(?:[^`]|``)+`|[\\w$]+)(?:\\.(?:`(?:[^`]|``)+`|[\\w$]+))?";

function splitName(name: string, schema: string): [string, string] {
  const parts = name.match(/`(?:[^`]|``)+`|[\w$]+/g)!.map((p) =>
    p.startsWith("`") ? p.slice(1, -1).replaceAll("``", "`") : p
  );
  return parts.length === 2 ? [parts[0], parts[1]] : [schema, parts[0]];
}

/**
 * Tables a DDL statement empties (TRUNCATE, DROP) or reshapes (ALTER, RENAME), as
 * [schema, table] pairs; `schema` is the statement's default database.
 */
export function ddlTargets(
  sql: string,
  schema: string,
): { emptied: [string, string][]; reshaped: [string, string][] } {
  const q = sql.replace(/\/\*.*?\*\//gs, " ").trim();
  const emptied: [string, string][] = [];
  const reshaped: [string, string][] = [];
  let m = new RegExp(`^TRUNCATE\\s+(?:TABLE\\s+)?(${NAME})`, "i").exec(q);
  if (m) emptied.push(splitName(m[1], schema));
  m = new RegExp(`^DROP\\s+(?:TEMPORARY\\s+)?TABLE\\s+(?:IF\\s+EXISTS\\s+)?(.*)$`, "is").exec(q);
  if (m) {
    for (const n of m[1].match(new RegExp(NAME, "g")) ?? []) emptied.push(splitName(n, schema));
  }
  m = new RegExp(`^ALTER\\s+(?:ONLINE\\s+|IGNORE\\s+)*TABLE\\s+(?:IF\\s+EXISTS\\s+)?(${NAME})`, "i")
    .exec(q);
  if (m) reshaped.push(splitName(m[1], schema));
  m = /^RENAME\s+TABLES?\s+(.*)$/is.exec(q);
  if (m) {
    for (const n of m[1].match(new RegExp(NAME, "g")) ?? []) {
      if (!/^to$/i.test(n)) reshaped.push(splitName(n, schema));
    }
  }
  return { emptied, reshaped };
}
