/**
 * How `--help` shows the settings: grouped under headings (source, tables, etcd, ...), with
 * the choices as the value (`--driver <pgx|mysql>`), and ranges and defaults in their units.
 */
import { type Command, Help, Option } from "commander";
import {
  argText,
  defaultText,
  GROUPS,
  OPTIONS,
  type OptionSpec,
  rangeText,
} from "../config/options.ts";

export function heading(group: keyof typeof GROUPS): string {
  return `${GROUPS[group]}:`;
}

/** The description `--help` shows: `timeout of one etcd request (100ms to 10m; default: 30s)`. */
export function helpDescription(spec: OptionSpec): string {
  const notes: string[] = [];
  // "from 2s to 1h" reads as "2s to 1h" in parentheses.
  if (spec.min !== undefined || spec.max !== undefined) {
    notes.push(rangeText(spec).replace(/^(from|of) /, ""));
  }
  const def = defaultText(spec);
  if (def !== undefined) notes.push(`default: ${def}`);
  return spec.description + (notes.length ? ` (${notes.join("; ")})` : "");
}

/** Every setting as a flag of `cmd`, in the order of the headings. */
export function addSettingFlags(cmd: Command): Command {
  const order = Object.keys(GROUPS);
  const specs = [...OPTIONS].sort((a, b) => order.indexOf(a.group) - order.indexOf(b.group));
  for (const spec of specs) {
    const arg = argText(spec);
    const flag = `--${spec.name}${arg ? ` ${arg}` : ""}`;
    cmd.addOption(new Option(flag, helpDescription(spec)).helpGroup(heading(spec.group)));
    // `--flag=false` arrives as this (see switchValues in main.ts).
    if (spec.kind === "bool") cmd.addOption(new Option(`--no-${spec.name}`).hideHelp());
  }
  const other = heading("other");
  cmd.addOption(
    new Option("--config <file>", "YAML file with the same keys as the flags").helpGroup(other),
  );
  cmd.addHelpOption(new Option("-h, --help", "display help for command").helpGroup(other));
  return cmd;
}

/** `sync --help` lists the commands, then the flags of `run` (the default command) too. */
export function showRunFlags(program: Command, run: Command): void {
  program.configureHelp({
    formatHelp: (cmd, helper) => {
      const own = Help.prototype.formatHelp.call(helper, cmd, helper);
      if (cmd !== program) return own;
      const flags = run.helpInformation();
      return `${own.trimEnd()}\n\nFlags of run (check, status and drop take them too):\n\n` +
        flags.slice(flags.indexOf(`\n${heading("source")}\n`) + 1);
    },
  });
}
