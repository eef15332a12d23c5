/**
 * Errors no retry can fix, and how low layers name the settings that fix them: by a stable
 * id, never by a flag's spelling, which only the CLI knows (it renders `setting("dbUrl")`
 * as `--db-url`, or as the environment variable or config key the value came from).
 */

/** The settings a message may name: `RunSettings` keys (config/typed.ts checks each is). */
export const SETTING_IDS = [
  "dbUrl",
  "keys",
  "tables",
  "exclude",
  "slot",
  "slotFailover",
  "publication",
  "serverId",
  "etcdEndpoints",
  "etcdUsername",
  "etcdPassword",
  "etcdPrefix",
  "etcdCa",
  "etcdCert",
  "etcdKey",
  "etcdMaxTxnOps",
  "etcdMaxTxnBytes",
  "oversize",
] as const;
export type SettingId = typeof SETTING_IDS[number];

/** How a message names a setting until it is rendered (see `nameSettings`). */
const MARK = /\{setting:([A-Za-z]+)(?:=([^{}\n]*))?\}/g;

/**
 * A setting named inside a message, with the value that would fix things when there is one
 * (`setting("oversize", "skip")`): a mark that `nameSettings` turns into the setting's name.
 */
export function setting(id: SettingId, value?: string | number | boolean): string {
  return `{setting:${id}${value === undefined ? "" : `=${value}`}}`;
}

/** How the CLI spells a setting (and its value): `--oversize skip`, `SYNC_OVERSIZE=skip`. */
export type SettingNamer = (id: SettingId, value?: string) => string;

/** `text` with every setting `setting()` marked spelled by `name`. */
export function nameSettings(text: string, name: SettingNamer): string {
  if (!text.includes("{setting:")) return text;
  return text.replace(
    MARK,
    (mark, id: string, value: string | undefined) =>
      (SETTING_IDS as readonly string[]).includes(id) ? name(id as SettingId, value) : mark,
  );
}

/** What a ConfigError is about, for callers that act on it (`sync check` lines). */
export type ConfigErrorCode =
  /** The server refused the login: the user name or password (or its auth rules). */
  | "auth"
  /** The login worked but lacks a privilege or permission. */
  | "permission";

/** Errors no retry can fix (bad configuration): the service exits with status 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly code?: ConfigErrorCode;
  constructor(message: string, options?: ErrorOptions & { code?: ConfigErrorCode }) {
    super(message, options);
    this.code = options?.code;
  }
}

/**
 * A driver's table of server errors no retry can fix: the ConfigError saying what to change,
 * or undefined for anything else (which is retried as it is).
 */
export type ConfigErrorRules = (e: unknown) => ConfigError | undefined;

/** `e` as `rules` see it: the ConfigError they make of it, else `e` itself. */
export function asConfigError(e: unknown, rules: ConfigErrorRules): unknown {
  return rules(e) ?? e;
}

/** `f()`, with whatever it throws passed through `rules` (see `asConfigError`). */
export async function withConfigErrors<T>(
  rules: ConfigErrorRules,
  f: () => Promise<T>,
): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw asConfigError(e, rules);
  }
}

/**
 * A driver's session, opened: one that fails to open is closed, and its error passed
 * through `rules`, so every retry of the service starts from nothing left open.
 */
export async function openSession<S extends { close(): Promise<void> }>(
  session: S,
  open: () => Promise<void>,
  rules: ConfigErrorRules,
): Promise<S> {
  try {
    await open();
    return session;
  } catch (e) {
    await session.close();
    throw asConfigError(e, rules);
  }
}
