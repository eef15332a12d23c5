/**
 * The settings of a run as one typed object, derived from the options table: each option
 * under its camel-cased name (`etcd-max-txn-ops` → `etcdMaxTxnOps`), typed by its kind and
 * choices, possibly undefined only when it has no default. The one place the untyped
 * `Settings` record is read.
 */
import { envName, type Origin, SPECS } from "./options.ts";
import type { Settings } from "./values.ts";
import { SETTING_IDS, type SettingId } from "../core/errors.ts";

interface KindValue {
  string: string;
  int: number;
  bytes: number;
  duration: number;
  bool: boolean;
  list: string[];
}

type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}`
  : S;

type Spec = typeof SPECS[number];

type ValueOf<O extends Spec> = O extends { choices: readonly (infer C)[] } ? C
  : KindValue[O["kind"]];

export type RunSettings = {
  readonly [O in Spec as Camel<O["name"]>]: O extends { default: unknown } ? ValueOf<O>
    : ValueOf<O> | undefined;
};

const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** `s` (already parsed and validated by `loadSettings`) as a typed object. */
export function typedSettings(s: Settings): RunSettings {
  const out: Record<string, unknown> = {};
  for (const o of SPECS) {
    const v = s[o.name];
    // An empty string is no value (a `SYNC_X=` left empty, say).
    out[camel(o.name)] = v === "" ? undefined : v;
  }
  return out as RunSettings;
}

// Low layers name settings by these ids: each must be a setting (a compile error otherwise).
const NAMED: readonly (keyof RunSettings)[] = SETTING_IDS;

const flagOf = new Map(
  SPECS.filter((o) => NAMED.includes(camel(o.name) as keyof RunSettings)).map((o) => [
    camel(o.name) as SettingId,
    o,
  ]),
);

/** A setting a low layer named, as its flag: `--db-url`, `--oversize skip`. */
export function settingFlag(id: SettingId, value?: string): string {
  const o = flagOf.get(id)!;
  if (value === undefined) return `--${o.name}`;
  return o.kind === "bool" ? `--${o.name}=${value}` : `--${o.name} ${value}`;
}

/** How this run got its settings (see `nameAsGiven`); until told, every one is a flag. */
let given: { origins: ReadonlyMap<string, Origin>; path?: string } = { origins: new Map() };

/** From now on, `settingName` names each setting the way this run was given it. */
export function nameAsGiven(origins: ReadonlyMap<string, Origin>, path?: string): void {
  given = { origins, path };
}

/**
 * A setting a low layer named, the way the user gave it: `--db-url`, `SYNC_DB_URL` or
 * `db-url in sync.yaml`; with the value that fixes things: `--oversize skip`,
 * `SYNC_OVERSIZE=skip`, `oversize: skip in sync.yaml`. One not given at all: its flag.
 */
export function settingName(id: SettingId, value?: string): string {
  const name = flagOf.get(id)!.name;
  const from = given.origins.get(name);
  if (from === "env") return envName(name) + (value === undefined ? "" : `=${value}`);
  if (from === "file" && given.path) {
    return `${name}${value === undefined ? "" : `: ${value}`} in ${given.path}`;
  }
  return settingFlag(id, value);
}
