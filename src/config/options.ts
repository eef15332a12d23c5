/**
 * Every setting of `sync run`, with its default, and how flags, `SYNC_*` environment
 * variables and the YAML config file combine: flag > env > file > default. The table also
 * drives `--help` (grouped) and docs/configuration.md (generated, tests/unit/docs.test.ts).
 */
import YAML from "yaml";
import {
  HOUR,
  identifier,
  MINUTE,
  type OptionSpec,
  parseValue,
  SECOND,
  type Settings,
  slotName,
} from "./values.ts";
import { UsageError } from "./values.ts";

// Importers keep one module to read settings from.
export * from "./values.ts";

/** The table itself, its literal types kept for `RunSettings` (typed.ts). */
export const SPECS = [
  {
    name: "driver",
    kind: "string",
    group: "source",
    choices: ["pgx", "mysql"],
    description: "source driver",
    doc: "`pgx` for PostgreSQL 10+, `mysql` for MySQL 5.7/8 and MariaDB 10.5+.",
  },
  {
    name: "db-url",
    kind: "string",
    group: "source",
    arg: "url",
    secret: true,
    description: "database URL; keep a password out of argv: SYNC_DB_URL or --config",
    doc: "`postgres://user:pass@h1:5432,h2:5432/db?sslmode=require&target_session_attrs=" +
      "read-write` or `mysql://user:pass@host:3306/db?ssl-mode=REQUIRED`. Write `/`, `?`, `#`, " +
      "`@` and `%` in the user name and password percent-encoded.",
  },
  {
    name: "etcd-endpoints",
    kind: "list",
    group: "etcd",
    arg: "urls",
    default: ["http://127.0.0.1:2379"],
    description: "etcd endpoints, comma-separated, tried in order",
    doc: "The next one is tried on connection errors. No `user:password@` in them: use " +
      "`--etcd-username`.",
  },
  {
    name: "etcd-prefix",
    kind: "string",
    group: "etcd",
    arg: "prefix",
    default: "/sync",
    description: "key prefix for rows",
  },
  {
    name: "etcd-state-prefix",
    kind: "string",
    group: "etcd",
    arg: "prefix",
    defaultText: "<etcd-prefix>-state",
    description: "prefix of the state key, outside --etcd-prefix",
  },
  {
    name: "source-id",
    kind: "string",
    group: "etcd",
    arg: "name",
    defaultText: "<driver>-<database>",
    invalid: (v) => (v ? undefined : "expected a name"),
    description: "name of this source's state key",
  },
  { name: "etcd-username", kind: "string", group: "etcd", arg: "user", description: "etcd user" },
  {
    name: "etcd-password",
    kind: "string",
    group: "etcd",
    arg: "password",
    secret: true,
    description: "etcd password; keep it out of argv: SYNC_ETCD_PASSWORD or --config",
    doc: "The auth token is refreshed when it expires.",
  },
  {
    name: "etcd-transport",
    kind: "string",
    group: "etcd",
    default: "grpc",
    choices: ["grpc", "gateway"],
    description: "etcd's native gRPC API (HTTP/2) or its JSON gateway (HTTP/1.1)",
    doc: "`gateway` is for proxies that only pass HTTP/1.1.",
  },
  {
    name: "etcd-ca",
    kind: "string",
    group: "etcd",
    arg: "file",
    description: "CA certificate file (PEM) for etcd TLS",
  },
  {
    name: "etcd-cert",
    kind: "string",
    group: "etcd",
    arg: "file",
    description: "client certificate file (PEM) for etcd",
  },
  {
    name: "etcd-key",
    kind: "string",
    group: "etcd",
    arg: "file",
    description: "client key file (PEM) for etcd",
  },
  {
    name: "etcd-max-txn-ops",
    kind: "int",
    group: "etcd",
    default: 128,
    // The state key goes with every transaction: one op is no room for anything else.
    min: 2,
    description: "operations per etcd transaction, as etcd's --max-txn-ops",
  },
  {
    name: "etcd-max-txn-bytes",
    kind: "bytes",
    group: "etcd",
    default: 1536 * 1024 - 32 * 1024,
    min: 4096,
    description: "request bytes per etcd transaction, under etcd's --max-request-bytes",
    doc: "The default is etcd's 1.5 MiB default less 32 KiB.",
  },
  {
    name: "etcd-timeout",
    kind: "duration",
    group: "etcd",
    default: 30 * SECOND,
    min: 100,
    max: 10 * MINUTE,
    description: "timeout of one etcd request",
  },
  {
    name: "tables",
    kind: "list",
    group: "tables",
    arg: "globs",
    default: [],
    defaultText: "all",
    description: "tables to sync: globs on schema.table, comma-separated",
    doc: "Patterns take `*` and `?`; for MySQL the schema is the database.",
  },
  {
    name: "exclude",
    kind: "list",
    group: "tables",
    arg: "globs",
    default: [],
    description: "tables to leave out: globs on schema.table",
  },
  {
    name: "keys",
    kind: "list",
    group: "tables",
    arg: "table=cols",
    default: [],
    description: "key columns for tables without a primary key: schema.table=col[+col...]",
    doc: "E.g. `public.events=source+seq`. A primary key always wins over a configured one. " +
      "Snapshots page such a table by these columns only when a unique index on NOT NULL " +
      "columns among them covers them; otherwise they read it whole, in memory, with a warning.",
  },
  {
    name: "slot",
    kind: "string",
    group: "source",
    arg: "name",
    default: "sync",
    invalid: slotName,
    description: "pgx: replication slot",
    doc: "Lower-case letters, digits and `_`, at most 63.",
  },
  {
    name: "publication",
    kind: "string",
    group: "source",
    arg: "name",
    default: "sync",
    invalid: identifier,
    description: "pgx: publication",
    doc: "At most 63 bytes.",
  },
  {
    name: "dump-parallel",
    kind: "int",
    group: "source",
    default: 2,
    min: 1,
    max: 64,
    description: "pgx: tables dumped at once",
    doc: "Connections sharing the dump's snapshot.",
  },
  {
    name: "slot-failover",
    kind: "bool",
    group: "source",
    default: true,
    description: "pgx: create the slot as a failover slot (PostgreSQL 17+)",
    doc: "With `sync_replication_slots = on` a standby keeps the slot in step, so sync " +
      "resumes after a promotion without a dump. Ignored before PostgreSQL 17.",
  },
  {
    name: "snapshot-chunk-rows",
    kind: "int",
    group: "tables",
    default: 1000,
    min: 1,
    max: 100_000,
    description: "rows read per snapshot chunk",
    doc: "Online snapshots read each table in key order, this many rows at a time; the " +
      "cursor is saved after each chunk.",
  },
  {
    name: "snapshot-parallel",
    kind: "int",
    group: "tables",
    default: 1,
    min: 1,
    max: 16,
    description: "tables snapshotted at once while streaming",
  },
  {
    name: "status-interval",
    kind: "duration",
    group: "source",
    default: 10 * SECOND,
    min: 100,
    max: HOUR,
    description: "pgx: standby status update interval",
  },
  {
    name: "server-id",
    kind: "int",
    group: "source",
    default: 4201,
    // A 32-bit field of the replication protocol; 0 is no id.
    min: 1,
    max: 2 ** 32 - 1,
    description: "mysql: replica server id sync registers with, not the server's own",
  },
  {
    name: "oversize",
    kind: "string",
    group: "etcd",
    default: "fail",
    choices: ["fail", "skip"],
    description: "a row too large for etcd: stop, or log and skip it",
    doc: "`fail` stops naming the table and key; `skip` logs and counts it " +
      "(`sync_oversize_rows_skipped_total`).",
  },
  {
    name: "ha",
    kind: "bool",
    group: "ha",
    default: false,
    description: "run as one of several; one leads",
  },
  {
    name: "ha-ttl",
    kind: "duration",
    group: "ha",
    default: 10 * SECOND,
    min: 2 * SECOND,
    max: HOUR,
    description: "--ha lease TTL: a standby takes over within it",
    doc: "Whole seconds.",
  },
  {
    name: "ha-id",
    kind: "string",
    group: "ha",
    arg: "name",
    defaultText: "<hostname>-<pid>",
    invalid: (v) => (v ? undefined : "expected a name"),
    description: "--ha identity",
  },
  {
    name: "http-addr",
    kind: "string",
    group: "http",
    arg: "host:port",
    defaultText: "off",
    description: "serve health, metrics and the status page on HOST:PORT",
    doc: "`/healthz`, `/readyz`, `/metrics`, `/` and `/status.json`.",
  },
  {
    name: "ready-max-lag",
    kind: "duration",
    group: "http",
    default: 30 * SECOND,
    min: 100,
    max: HOUR,
    description: "/readyz fails above this lag",
  },
  {
    name: "shutdown-timeout",
    kind: "duration",
    group: "other",
    default: 10 * SECOND,
    min: 0,
    max: HOUR,
    description: "time allowed for a clean stop",
    doc: "On SIGTERM/SIGINT: time to finish the in-flight etcd transaction.",
  },
  {
    name: "log-level",
    kind: "string",
    group: "log",
    default: "info",
    choices: ["debug", "info", "warn", "error"],
    arg: "level",
    description: "log level: debug, info, warn or error",
  },
  {
    name: "log-format",
    kind: "string",
    group: "log",
    default: "text",
    choices: ["text", "json"],
    description: "log format: key=value text or JSON lines",
    doc: "Logs go to stderr.",
  },
] as const satisfies readonly OptionSpec[];

export const OPTIONS: readonly OptionSpec[] = SPECS;

const byName = new Map(OPTIONS.map((o) => [o.name, o]));

export function envName(option: string): string {
  return "SYNC_" + option.toUpperCase().replaceAll("-", "_");
}

/** Read and check the YAML config file: keys are the flag names. */
export function parseConfigFile(text: string, path: string): Settings {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new UsageError(`${path}: not valid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new UsageError(`${path}: expected a mapping of option names to values`);
  }
  const out: Settings = {};
  for (const [k, raw] of Object.entries(doc as Record<string, unknown>)) {
    const spec = byName.get(k);
    if (!spec) throw new UsageError(`${path}: unknown key "${k}" (keys are the flag names)`);
    // YAML reads `key:` with nothing after it as null, which became the string "null".
    if (raw === null) {
      throw new UsageError(`${path}: ${k} has no value (give one or remove the key)`);
    }
    out[k] = parseValue(spec, raw, path);
  }
  return out;
}

/** Where a setting's value came from (messages name it the way it was given). */
export type Origin = "flag" | "env" | "file" | "default";

/** Combine flag > env > file > default into the settings of one run; `origins` says which. */
export function resolveSettings(
  flags: Record<string, unknown>,
  env: Record<string, string | undefined>,
  file: Settings,
  origins?: Map<string, Origin>,
): Settings {
  const out: Settings = {};
  for (const spec of OPTIONS) {
    const flag = flags[spec.name];
    const ev = env[envName(spec.name)];
    let from: Origin = "default";
    if (flag !== undefined) {
      out[spec.name] = parseValue(spec, flag, `--${spec.name}`);
      from = "flag";
    } else if (ev !== undefined && ev !== "") {
      out[spec.name] = parseValue(spec, ev, envName(spec.name));
      from = "env";
    } else if (file[spec.name] !== undefined) {
      out[spec.name] = file[spec.name];
      from = "file";
    } else out[spec.name] = spec.default as Settings[string];
    origins?.set(spec.name, from);
  }
  return out;
}
