/**
 * The `sync` command line. Same entry for `deno task sync`, the bundle and the compiled
 * binary.
 */
import { Command, CommanderError, Option } from "commander";
import { OPTIONS, type Origin, resolveSettings, UsageError } from "../config/options.ts";
import { nameAsGiven, settingName, typedSettings } from "../config/typed.ts";
import { nameSettings } from "../core/errors.ts";
import { parseConfigFile } from "../config/options.ts";
import { parseValue } from "../config/values.ts";
import { addSettingFlags as addOptions, showRunFlags } from "./help.ts";
import { ConfigError } from "../core/source.ts";
import { EtcdError, EtcdUnavailableError } from "../etcd/client.ts";
import { startRun } from "./run.ts";
import { runCheck, runDrop, runStatus } from "./admin.ts";
import { runSnapshot } from "./snapshot.ts";
import { VERSION } from "../version.ts";

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function fail(message: string, code = 2): never {
  console.error(`sync: ${nameSettings(message, settingName)}`);
  Deno.exit(code);
}

async function loadSettings(opts: Record<string, unknown>) {
  const flags: Record<string, unknown> = {};
  for (const spec of OPTIONS) {
    const v = opts[camel(spec.name)];
    if (v !== undefined) flags[spec.name] = v;
  }
  const env = Deno.env.toObject();
  const path = (opts.config as string | undefined) ?? env.SYNC_CONFIG;
  let file = {};
  if (path) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      throw new UsageError(`cannot read config file ${path}: ${(e as Error).message}`);
    }
    file = parseConfigFile(text, path);
  }
  const origins = new Map<string, Origin>();
  const settings = typedSettings(resolveSettings(flags, env, file, origins));
  nameAsGiven(origins, path);
  return settings;
}

/**
 * A switch given a value (`--slot-failover=false`, as the environment and the config file
 * take it): commander knows `--flag` and `--no-flag` only.
 */
export function switchValues(args: string[]): string[] {
  const switches = new Map(OPTIONS.filter((o) => o.kind === "bool").map((o) => [o.name, o]));
  const end = args.indexOf("--");
  return args.map((a, i) => {
    const m = /^--([a-z-]+)=(.*)$/s.exec(a);
    const spec = m && switches.get(m[1]);
    if (!spec || (end >= 0 && i > end)) return a;
    return parseValue(spec, m[2], `--${spec.name}`) ? `--${spec.name}` : `--no-${spec.name}`;
  });
}

export async function main(args: string[]): Promise<number> {
  const program = new Command("sync")
    .description(
      "Keep etcd an exact, live copy of a PostgreSQL or MySQL database.\n" +
        "Every flag can also be set as SYNC_<FLAG> (e.g. SYNC_DB_URL) or in --config.\n" +
        "Durations take a unit (500ms, 10s, 2m; a number alone is seconds).",
    )
    .version(VERSION, "-V, --version")
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => write(`sync: ${str.replace(/^error: /, "").trim()}\n`),
    });
  let result = 0;
  const run = addOptions(
    program.command("run", { isDefault: true }).description("dump, then stream changes (default)"),
  ).allowExcessArguments(false).action(async (opts: Record<string, unknown>) => {
    const settings = await loadSettings(opts);
    result = await startRun(settings);
  });
  showRunFlags(program, run);
  addOptions(program.command("check").description("preflight checks of the database and etcd"))
    .action(async (opts: Record<string, unknown>) => {
      result = await runCheck(await loadSettings(opts));
    });
  addOptions(program.command("status").description("state key and source position"))
    .addOption(new Option("--json", "machine-readable output").helpGroup("Status:"))
    .action(async (opts: Record<string, unknown>) => {
      result = await runStatus(await loadSettings(opts), Boolean(opts.json));
    });
  addOptions(
    program.command("snapshot").description("read tables again online, while sync streams"),
  )
    .argument("<tables...>", "tables as named in keys (schema.table outside the default)")
    .action(async (tables: string[], opts: Record<string, unknown>) => {
      result = await runSnapshot(await loadSettings(opts), tables);
    });
  addOptions(
    program.command("drop").description("remove the slot/publication and the state key"),
  )
    .addOption(new Option("--yes", "do not ask").helpGroup("Drop:"))
    .addOption(
      new Option("--purge-data", "also delete every replicated key under the prefix")
        .helpGroup("Drop:"),
    )
    .action(async (opts: Record<string, unknown>) => {
      result = await runDrop(await loadSettings(opts), Boolean(opts.yes), Boolean(opts.purgeData));
    });
  try {
    await program.parseAsync(switchValues(args), { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here too, with code 0.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError || e instanceof ConfigError) fail(e.message);
    // check/status/drop talk to etcd once: an outage there is their answer, not a crash.
    if (e instanceof EtcdUnavailableError || e instanceof EtcdError) fail(e.message, 1);
    throw e;
  }
  return result;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    fail(`internal error: ${(e as Error)?.stack ?? e}`, 1);
  }
}
