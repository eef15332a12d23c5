/**
 * The logging interface drivers and the sink use; the CLI backs it with LogTape.
 * Messages are short and constant; details go in `fields` (rendered key=value or JSON).
 */
export type LogFields = Record<string, unknown>;

export interface Log {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger whose lines all carry `fields`. */
  with(fields: LogFields): Log;
}

/** A logger that drops everything (tests, library use). */
export const silentLog: Log = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  with() {
    return silentLog;
  },
};
