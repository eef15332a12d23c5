/**
 * Structured logs through LogTape: `key=value` text or JSON lines, on stderr.
 */
import {
  configure,
  getLogger,
  type Logger,
  type LogLevel,
  type LogRecord,
  reset,
} from "@logtape/logtape";
import type { Log, LogFields } from "../core/log.ts";
import { nameSettings } from "../core/errors.ts";
import { settingName } from "../config/typed.ts";

const LEVELS: Record<string, LogLevel> = {
  debug: "debug",
  info: "info",
  warn: "warning",
  error: "error",
};
const SHORT: Record<LogLevel, string> = {
  trace: "trace",
  debug: "debug",
  info: "info",
  warning: "warn",
  error: "error",
  fatal: "fatal",
};

function textValue(v: unknown): string {
  const s = v instanceof Date
    ? v.toISOString()
    : typeof v === "string"
    ? named(v)
    : v instanceof Error
    ? named(v.message)
    : named(JSON.stringify(v) ?? String(v));
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

/** Settings named in low layers' messages, as the user gave them (`--db-url`). */
const named = (s: string) => nameSettings(s, settingName);

export function formatText(r: LogRecord): string {
  let line = `time=${new Date(r.timestamp).toISOString()} level=${SHORT[r.level]} msg=${
    textValue(r.rawMessage)
  }`;
  for (const [k, v] of Object.entries(r.properties)) line += ` ${k}=${textValue(v)}`;
  return line + "\n";
}

export function formatJson(r: LogRecord): string {
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r.properties)) {
    props[k] = v instanceof Error ? v.message : v;
  }
  // A setting's mark and its name need no escaping in JSON: the line is named whole.
  return named(JSON.stringify({
    time: new Date(r.timestamp).toISOString(),
    level: SHORT[r.level],
    msg: r.rawMessage,
    ...props,
  })) + "\n";
}

/** Messages are constant, brace-free strings; details always go in fields. */
class LogTapeLog implements Log {
  constructor(readonly logger: Logger) {}
  debug(m: string, f?: LogFields) {
    this.logger.debug(m, f);
  }
  info(m: string, f?: LogFields) {
    this.logger.info(m, f);
  }
  warn(m: string, f?: LogFields) {
    this.logger.warn(m, f);
  }
  error(m: string, f?: LogFields) {
    this.logger.error(m, f);
  }
  with(f: LogFields): Log {
    return new LogTapeLog(this.logger.with(f));
  }
}

/** Set up logging for this process and return the root logger. */
export async function setupLogging(level: string, format: string): Promise<Log> {
  const stderr = Deno.stderr;
  const encoder = new TextEncoder();
  const fmt = format === "json" ? formatJson : formatText;
  await reset();
  await configure({
    reset: true,
    sinks: {
      stderr: (r: LogRecord) => {
        stderr.writeSync(encoder.encode(fmt(r)));
      },
    },
    loggers: [
      { category: ["sync"], sinks: ["stderr"], lowestLevel: LEVELS[level] ?? "info" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "error" },
    ],
  });
  return new LogTapeLog(getLogger(["sync"]));
}
