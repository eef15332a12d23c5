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
  if (m) {
    const table = splitName(m[1], schema);
    reshaped.push(table);
    // ALTER TABLE a RENAME TO b: a's keys go, b is dumped.
    const to = new RegExp(`\\bRENAME\\s+(?:TO\\s+|AS\\s+)?(${NAME})\\s*$`, "i").exec(q);
    if (to && !/^(column|index|key)$/i.test(to[1])) {
      emptied.push(table);
      reshaped.push(splitName(to[1], schema));
    }
  }
  m = /^RENAME\s+TABLES?\s+(.*)$/is.exec(q);
  if (m) {
    const names = (m[1].match(new RegExp(NAME, "g")) ?? []).filter((n) => !/^to$/i.test(n));
    names.forEach((n, i) => {
      reshaped.push(splitName(n, schema));
      // RENAME TABLE a TO b: a's keys go with it.
      if (i % 2 === 0) emptied.push(splitName(n, schema));
    });
  }
  return { emptied, reshaped };
}
