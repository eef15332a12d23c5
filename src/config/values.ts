/**
 * One setting's value: its kind, how it is parsed from a flag, `SYNC_*` variable or config
 * key, and how it is written back (the `--help` defaults, docs/configuration.md).
 */
export type Kind = "string" | "int" | "list" | "bool" | "duration" | "bytes";

export interface OptionSpec {
  name: string;
  kind: Kind;
  description: string;
  default?: string | number | boolean | readonly string[];
  choices?: readonly string[];
  /** Never echoed back in errors. */
  secret?: boolean;
  /** Allowed range (durations in ms, sizes in bytes), checked on every source of the value. */
  min?: number;
  max?: number;
  /** Further checks of a string value: a reason when it is not allowed. */
  invalid?: (v: string) => string | undefined;
  /** Heading it is listed under in `--help` and docs/configuration.md. */
  group: Group;
  /** What `--help` shows for the value (`<url>`); by default from the kind or the choices. */
  arg?: string;
  /** A default that depends on other settings, in words: `<etcd-prefix>-state`. */
  defaultText?: string;
  /** More than `--help` has room for: docs/configuration.md adds it to the description. */
  doc?: string;
}

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;

/** Help and docs headings, in the order shown. */
export const GROUPS = {
  source: "Source",
  tables: "Tables",
  etcd: "etcd",
  ha: "High availability",
  http: "HTTP",
  log: "Logging",
  other: "Other",
} as const;
export type Group = keyof typeof GROUPS;

export type Value = string | number | boolean | string[];
export type Settings = Record<string, Value | undefined>;

/** The value's placeholder in `--help`: `arg`, else the choices (`<pgx|mysql>`), else the kind. */
export function argText(spec: OptionSpec): string {
  if (spec.kind === "bool") return "";
  return `<${spec.arg ?? spec.choices?.join("|") ?? ARG[spec.kind]}>`;
}

const ARG: Record<Kind, string> = {
  string: "value",
  int: "n",
  list: "list",
  bool: "",
  duration: "duration",
  bytes: "size",
};

/** The default as `--help` and the docs show it; undefined when there is none to show. */
export function defaultText(spec: OptionSpec): string | undefined {
  if (spec.defaultText) return spec.defaultText;
  const d = spec.default;
  if (d === undefined || d === false || (Array.isArray(d) && !d.length)) return undefined;
  return formatValue(spec, d);
}

/** Bad configuration: one line for the user, exit status 2. */
export class UsageError extends Error {
  override name = "UsageError";
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
export function formatValue(spec: OptionSpec, v: Value | readonly string[]): string {
  if (spec.kind === "duration" && typeof v === "number") return formatDuration(v);
  if (spec.kind === "bytes" && typeof v === "number") return formatBytes(v);
  return Array.isArray(v) ? v.join(",") : String(v);
}

/** "from 2s to 1h", "of at least 2", "up to 1h": the option's range, in its units. */
export function rangeText(spec: OptionSpec): string {
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

/**
 * PostgreSQL's rule for slot names; anything else fails only when the slot is created, which
 * is too late to say so in one line at start.
 */
export function slotName(v: string): string | undefined {
  return /^[a-z0-9_]{1,63}$/.test(v)
    ? undefined
    : "expected lower-case letters, digits and underscores (at most 63)";
}

/** PostgreSQL truncates longer identifiers (with a notice): two names would become one. */
export function identifier(v: string): string | undefined {
  const n = new TextEncoder().encode(v).length;
  return n > 0 && n <= 63 ? undefined : "expected a name of 1 to 63 bytes";
}
