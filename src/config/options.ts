/**
 * Every setting of `sync run`, with its default, and how flags, `SYNC_*` environment
 * variables and the YAML config file combine: flag > env > file > default.
 */
import YAML from "yaml";

export type Kind = "string" | "int" | "list" | "bool" | "duration" | "bytes";

export interface OptionSpec {
  name: string;
  kind: Kind;
  description: string;
  default?: string | number | boolean | string[];
  choices?: readonly string[];
  /** Never echoed back in errors. */
  secret?: boolean;
  /** Allowed range (durations in ms, sizes in bytes), checked on every source of the value. */
  min?: number;
  max?: number;
  /** Further checks of a string value: a reason when it is not allowed. */
  invalid?: (v: string) => string | undefined;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/**
 * PostgreSQL's rule for slot names; anything else fails only when the slot is created, which
 * is too late to say so in one line at start.
 */
function slotName(v: string): string | undefined {
  return /^[a-z0-9_]{1,63}$/.test(v)
    ? undefined
    : "expected lower-case letters, digits and underscores (at most 63)";
}

/** PostgreSQL truncates longer identifiers (with a notice): two names would become one. */
function identifier(v: string): string | undefined {
  const n = new TextEncoder().encode(v).length;
  return n > 0 && n <= 63 ? undefined : "expected a name of 1 to 63 bytes";
}

export const OPTIONS: readonly OptionSpec[] = [
  { name: "driver", kind: "string", choices: ["pgx", "mysql"], description: "source driver" },
  {
    name: "db-url",
    kind: "string",
    secret: true,
    description: "database URL (any user can read argv: pass a password as SYNC_DB_URL or in " +
      "--config)",
  },
  {
    name: "etcd-endpoints",
    kind: "list",
    default: ["http://127.0.0.1:2379"],
    description: "etcd endpoints, comma-separated, tried in order",
  },
  { name: "etcd-prefix", kind: "string", default: "/sync", description: "key prefix for rows" },
  {
    name: "etcd-state-prefix",
    kind: "string",
    description: "prefix of the state key (default: <etcd-prefix>-state)",
  },
  {
    name: "source-id",
    kind: "string",
    invalid: (v) => (v ? undefined : "expected a name"),
    description: "name of this source's state key (default: <driver>-<database>)",
  },
  { name: "etcd-username", kind: "string", description: "etcd user" },
  {
    name: "etcd-password",
    kind: "string",
    secret: true,
    description: "etcd password (any user can read argv: prefer SYNC_ETCD_PASSWORD or --config)",
  },
  {
    name: "etcd-transport",
    kind: "string",
    default: "grpc",
    choices: ["grpc", "gateway"],
    description: "how to talk to etcd: native gRPC (HTTP/2) or the JSON gateway (HTTP/1.1)",
  },
  { name: "etcd-ca", kind: "string", description: "CA certificate file (PEM) for etcd TLS" },
  { name: "etcd-cert", kind: "string", description: "client certificate file (PEM) for etcd" },
  { name: "etcd-key", kind: "string", description: "client key file (PEM) for etcd" },
  {
    name: "etcd-max-txn-ops",
    kind: "int",
    default: 128,
    // The state key goes with every transaction: one op is no room for anything else.
    min: 2,
    description: "operations per etcd transaction (etcd's --max-txn-ops)",
  },
  {
    name: "etcd-max-txn-bytes",
    kind: "bytes",
    default: 1536 * 1024 - 32 * 1024,
    min: 4096,
    description: "request bytes per etcd transaction (under etcd's --max-request-bytes)",
  },
  {
    name: "etcd-timeout",
    kind: "duration",
    default: 30 * SECOND,
    min: 100,
    max: 10 * MINUTE,
    description: "timeout of one etcd request",
  },
  {
    name: "tables",
    kind: "list",
    default: [],
    description: "tables to sync (globs on schema.table)",
  },
  { name: "exclude", kind: "list", default: [], description: "tables to skip (globs)" },
  {
    name: "keys",
    kind: "list",
    default: [],
    description: "key columns for tables without a primary key: schema.table=col[+col...]",
  },
  {
    name: "slot",
    kind: "string",
    default: "sync",
    invalid: slotName,
    description: "replication slot (pgx)",
  },
  {
    name: "publication",
    kind: "string",
    default: "sync",
    invalid: identifier,
    description: "publication (pgx)",
  },
  {
    name: "dump-parallel",
    kind: "int",
    default: 2,
    min: 1,
    max: 64,
    description: "tables dumped at once (pgx)",
  },
  {
    name: "status-interval",
    kind: "duration",
    default: 10 * SECOND,
    min: 100,
    max: HOUR,
    description: "standby status update interval (pgx)",
  },
  {
    name: "server-id",
    kind: "int",
    default: 4201,
    // A 32-bit field of the replication protocol; 0 is no id.
    min: 1,
    max: 2 ** 32 - 1,
    description: "replica server id (mysql), not the server's own",
  },
  {
    name: "oversize",
    kind: "string",
    default: "fail",
    choices: ["fail", "skip"],
    description: "a row too large for etcd: stop, or log and skip it",
  },
  { name: "ha", kind: "bool", default: false, description: "run as one of several; one leads" },
  {
    name: "ha-ttl",
    kind: "duration",
    default: 10 * SECOND,
    min: 2 * SECOND,
    max: HOUR,
    description: "--ha lease TTL: a standby takes over within it",
  },
  {
    name: "ha-id",
    kind: "string",
    invalid: (v) => (v ? undefined : "expected a name"),
    description: "--ha identity (default: host name and PID)",
  },
  { name: "http-addr", kind: "string", description: "serve health and metrics on HOST:PORT" },
  {
    name: "ready-max-lag",
    kind: "duration",
    default: 30 * SECOND,
    min: 100,
    max: HOUR,
    description: "/readyz fails above this lag",
  },
  {
    name: "shutdown-timeout",
    kind: "duration",
    default: 10 * SECOND,
    min: 0,
    max: HOUR,
    description: "time allowed for a clean stop",
  },
  {
    name: "log-level",
    kind: "string",
    default: "info",
    choices: ["debug", "info", "warn", "error"],
    description: "log level",
  },
  {
    name: "log-format",
    kind: "string",
    default: "text",
    choices: ["text", "json"],
    description: "log format: key=value text or JSON lines",
  },
];

export type Value = string | number | boolean | string[];
export type Settings = Record<string, Value | undefined>;

/** Bad configuration: one line for the user, exit status 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

const byName = new Map(OPTIONS.map((o) => [o.name, o]));

export function envName(option: string): string {
  return "SYNC_" + option.toUpperCase().replaceAll("-", "_");
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const BYTES = /^(\d+)(b|kib|kb|mib|mb|gib|gb)?$/i;
const BUNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  kib: 1024,
  mb: 1e6,
  mib: 1024 ** 2,
  gb: 1e9,
  gib: 1024 ** 3,
};

/** A duration in the largest unit that shows it whole: `10s`, `500ms`, `2m`. */
export function formatDuration(ms: number): string {
  for (const [unit, n] of [["h", HOUR], ["m", MINUTE], ["s", SECOND]] as const) {
    if (ms >= n && ms % n === 0) return `${ms / n}${unit}`;
  }
  return `${ms}ms`;
}

/** A size in the largest binary unit that shows it whole: `4KiB`, `1504KiB`. */
export function formatBytes(n: number): string {
  for (const [unit, k] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (n >= k && n % k === 0) return `${n / k}${unit}`;
  }
  return String(n);
}

/** A value as a user writes it (the `--help` defaults): durations and sizes with units. */
export function formatValue(spec: OptionSpec, v: Value): string {
  if (spec.kind === "duration" && typeof v === "number") return formatDuration(v);
  if (spec.kind === "bytes" && typeof v === "number") return formatBytes(v);
  return Array.isArray(v) ? v.join(",") : String(v);
}

/** "from 2s to 1h", "of at least 2", "up to 1h": the option's range, in its units. */
function rangeText(spec: OptionSpec): string {
  const f = (n: number) => formatValue(spec, n);
  const lo = spec.min !== undefined && spec.min > 0 ? spec.min : undefined;
  if (lo !== undefined && spec.max !== undefined) return `from ${f(lo)} to ${f(spec.max)}`;
  if (lo !== undefined) return `of at least ${f(lo)}`;
  return `up to ${f(spec.max!)}`;
}

function outOfRange(spec: OptionSpec, n: number): boolean {
  return (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max);
}

/** Parse one raw value (flag, env or file) into the option's kind. */
export function parseValue(spec: OptionSpec, raw: unknown, from: string): Value {
  const bad = (why: string) => {
    const shown = spec.secret ? "" : ` ${JSON.stringify(raw)}`;
    const where = from === `--${spec.name}` ? "" : ` (from ${from})`;
    return new UsageError(`invalid value${shown} for --${spec.name}${where}: ${why}`);
  };
  let v: Value;
  switch (spec.kind) {
    case "list":
      if (Array.isArray(raw)) v = raw.map(String);
      else v = String(raw).split(",").map((s) => s.trim()).filter(Boolean);
      break;
    case "int": {
      const text = String(raw).trim();
      const n = typeof raw === "number" ? raw : /^\d+$/.test(text) ? Number(text) : NaN;
      const range = spec.min !== undefined || spec.max !== undefined ? ` ${rangeText(spec)}` : "";
      if (!Number.isSafeInteger(n) || n < 0 || outOfRange(spec, n)) {
        throw bad(`expected a whole number${range}`);
      }
      v = n;
      break;
    }
    case "bool":
      if (typeof raw === "boolean") v = raw;
      else if (/^(1|true|yes|on)$/i.test(String(raw))) v = true;
      else if (/^(0|false|no|off)$/i.test(String(raw))) v = false;
      else throw bad("expected true or false");
      break;
    case "duration": {
      // A number without a unit is seconds: say so when it is out of range, since a default
      // shown in milliseconds once made `--ha-ttl 10000` a lease of 2.8 hours.
      const m = typeof raw === "number" ? [, String(raw)] : DURATION.exec(String(raw).trim());
      if (!m) throw bad("expected a duration such as 500ms, 10s or 1m");
      v = Math.round(Number(m[1]) * UNITS[m[2] ?? "s"]);
      if (!Number.isFinite(v) || outOfRange(spec, v)) {
        throw bad(
          `expected a duration ${rangeText(spec)}${
            m[2] ? "" : " (a number without a unit is seconds)"
          }`,
        );
      }
      break;
    }
    case "bytes": {
      if (typeof raw === "number") v = raw;
      else {
        const m = BYTES.exec(String(raw).trim());
        if (!m) throw bad("expected a size such as 1048576 or 1MiB");
        v = Number(m[1]) * BUNITS[(m[2] ?? "b").toLowerCase()];
      }
      if (!Number.isSafeInteger(v) || outOfRange(spec, v)) {
        throw bad(`expected a size ${rangeText(spec)}`);
      }
      break;
    }
    default:
      if (typeof raw === "object" && raw !== null) throw bad("expected a string");
      v = String(raw);
      if (spec.invalid?.(v)) throw bad(spec.invalid(v)!);
  }
  if (spec.choices && !spec.choices.includes(String(v))) {
    throw bad(`expected one of ${spec.choices.join(", ")}`);
  }
  return v;
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

/** Combine flag > env > file > default into the settings of one run. */
export function resolveSettings(
  flags: Record<string, unknown>,
  env: Record<string, string | undefined>,
  file: Settings,
): Settings {
  const out: Settings = {};
  for (const spec of OPTIONS) {
    const flag = flags[spec.name];
    const ev = env[envName(spec.name)];
    if (flag !== undefined) out[spec.name] = parseValue(spec, flag, `--${spec.name}`);
    else if (ev !== undefined && ev !== "") {
      out[spec.name] = parseValue(spec, ev, envName(spec.name));
    } else if (file[spec.name] !== undefined) out[spec.name] = file[spec.name];
    else out[spec.name] = spec.default;
  }
  return out;
}
