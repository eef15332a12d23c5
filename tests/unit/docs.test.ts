/**
 * The documentation stays true to the code and usable: docs/configuration.md's list of
 * settings is generated from the options table (and this file fails when the committed one
 * differs), the README stays a front page, links between the pages resolve, and no inline code
 * span is broken across lines.
 *
 * `UPDATE_DOCS=1 deno test --allow-all tests/unit/docs.test.ts` rewrites the generated part.
 */
import { fmtMarkdown } from "../../testing/markdown.ts";
import { test } from "../../testing/deadline.ts";
import { assert, assertEquals } from "../../testing/assert.ts";
import {
  argText,
  defaultText,
  envName,
  GROUPS,
  OPTIONS,
  type OptionSpec,
  rangeText,
} from "../../src/config/options.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CONFIG = `${ROOT}docs/configuration.md`;
const [START, END] = ["<!-- options:start -->", "<!-- options:end -->"];
const STALE = "is out of date: run UPDATE_DOCS=1 deno test --allow-all tests/unit/docs.test.ts";

function code(s: string): string {
  return "`" + s + "`";
}

function cell(s: string): string {
  return s.replaceAll("|", "\\|");
}

/** What a value may be, in words: `pgx` or `mysql`; duration from 100ms to 10m; ... */
function accepts(spec: OptionSpec): string {
  if (spec.choices) {
    const c = spec.choices.map(code);
    return `${c.slice(0, -1).join(", ")} or ${c[c.length - 1]}`;
  }
  const range = spec.min !== undefined || spec.max !== undefined ? ` ${rangeText(spec)}` : "";
  switch (spec.kind) {
    case "duration":
      return `duration${range}`;
    case "int":
      return `whole number${range}`;
    case "bytes":
      return `size${range}`;
    case "bool":
      return `the flag alone, or ${code(`--${spec.name}=false`)}; ${code("true")} or ${
        code("false")
      } in the environment or file`;
    case "list":
      return `${code(argText(spec))}, comma-separated`;
    default:
      return code(argText(spec));
  }
}

/** The settings, one table per `--help` heading. */
export function renderOptions(): string {
  const out: string[] = [];
  for (const [group, title] of Object.entries(GROUPS)) {
    out.push(`### ${title}`, "");
    out.push("| flag | environment | YAML key | default | value | meaning |");
    out.push("| --- | --- | --- | --- | --- | --- |");
    for (const spec of OPTIONS.filter((o) => o.group === group)) {
      const def = defaultText(spec);
      const meaning = spec.doc ? `${spec.description}. ${spec.doc}` : spec.description;
      const row = [
        code(`--${spec.name}`),
        code(envName(spec.name)),
        code(spec.name),
        def === undefined ? "" : code(def),
        accepts(spec),
        meaning,
      ];
      out.push(`| ${row.map(cell).join(" | ")} |`);
    }
    // Read before the settings, so it is no key of the file itself.
    if (group === "other") {
      out.push(
        "| `--config` | `SYNC_CONFIG` | | | `<file>` | YAML file with the same keys as the flags |",
      );
    }
    out.push("");
  }
  return out.join("\n");
}

test("docs/configuration.md lists every setting as the options table has it", async () => {
  const have = await Deno.readTextFile(CONFIG);
  const [i, j] = [have.indexOf(START), have.indexOf(END)];
  assert(i >= 0 && j > i, `docs/configuration.md has no ${START} ... ${END} block`);
  const want = await fmtMarkdown(
    `${have.slice(0, i + START.length)}\n\n${renderOptions()}\n${have.slice(j)}`,
  );
  if (Deno.env.get("UPDATE_DOCS") === "1") await Deno.writeTextFile(CONFIG, want);
  assert(await Deno.readTextFile(CONFIG) === want, `docs/configuration.md ${STALE}`);
  // Every flag, variable and key is on the page (the table is what the user reads).
  const block = want.slice(want.indexOf(START), want.indexOf(END));
  for (const o of OPTIONS) {
    for (const s of [`\`--${o.name}\``, `\`${envName(o.name)}\``, `\`${o.name}\``]) {
      assert(block.includes(s), `docs/configuration.md lists ${s}`);
    }
  }
});

/** README.md and every page under docs/. */
async function pages(): Promise<Map<string, string>> {
  const out = new Map([["README.md", await Deno.readTextFile(`${ROOT}README.md`)]]);
  for await (const e of Deno.readDir(`${ROOT}docs`)) {
    if (e.name.endsWith(".md")) {
      out.set(`docs/${e.name}`, await Deno.readTextFile(`${ROOT}docs/${e.name}`));
    }
  }
  return out;
}

/** Lines outside fenced code blocks, with their numbers. */
function prose(text: string): [number, string][] {
  let fenced = false;
  const out: [number, string][] = [];
  text.split("\n").forEach((line, i) => {
    if (/^\s*```/.test(line)) fenced = !fenced;
    else if (!fenced) out.push([i + 1, line]);
  });
  return out;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

test("README is a front page of at most 250 lines that points to docs/", async () => {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const lines = readme.trimEnd().split("\n").length;
  assert(lines <= 250, `README.md has ${lines} lines`);
  for (const doc of ["configuration", "postgresql", "mysql", "operations", "reliability"]) {
    assert(readme.includes(`(docs/${doc}.md`), `README links docs/${doc}.md`);
  }
  assert(readme.includes("(docs/consumers.md"), "README links docs/consumers.md");
  assert(readme.includes("scripts/demo") && readme.includes("scripts/test"), "the two commands");
});

test("links between README.md and docs/ resolve, anchors included", async () => {
  const all = await pages();
  const bad: string[] = [];
  for (const [page, text] of all) {
    const dir = page.includes("/") ? page.slice(0, page.lastIndexOf("/") + 1) : "";
    for (const [n, line] of prose(text)) {
      for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1];
        if (/^[a-z]+:/.test(target)) continue;
        const [file, anchor] = target.split("#");
        const path = file ? new URL(file, `file://${ROOT}${dir}`).pathname : `${ROOT}${page}`;
        const rel = path.slice(ROOT.length);
        const exists = await Deno.stat(path).then(() => true, () => false);
        if (!exists) {
          bad.push(`${page}:${n}: ${target} (no such file)`);
          continue;
        }
        if (!anchor) continue;
        const targetText = all.get(rel) ?? await Deno.readTextFile(path);
        const anchors = prose(targetText)
          .map(([, l]) => /^#+\s+(.*)$/.exec(l)?.[1])
          .filter((h): h is string => h !== undefined)
          .map(slug);
        if (!anchors.includes(anchor)) bad.push(`${page}:${n}: ${target} (no such heading)`);
      }
    }
  }
  assertEquals(bad, []);
});

test("no inline code span is broken across lines", async () => {
  const bad: string[] = [];
  for (const [page, text] of await pages()) {
    for (const [n, line] of prose(text)) {
      // A run of backticks opens a span that a run of the same length must close.
      const runs = [...line.matchAll(/`+/g)].map((m) => m[0].length);
      while (runs.length) {
        const open = runs.shift()!;
        const close = runs.indexOf(open);
        if (close < 0) {
          bad.push(`${page}:${n}: ${line.trim()}`);
          break;
        }
        runs.splice(0, close + 1);
      }
    }
  }
  assertEquals(bad, []);
});

test("no example puts a password on the command line", async () => {
  // Every user of the host can read argv (and deno task prints it): the examples (code
  // blocks) use SYNC_* or --config.
  const inArgv = /--db-url[= ]\S*:\/\/[^/@\s]*:[^@\s]*@|--etcd-password[= ]\S/;
  const bad: string[] = [];
  for (const [page, text] of await pages()) {
    const outside = new Set(prose(text).map(([n]) => n));
    text.split("\n").forEach((line, i) => {
      if (!outside.has(i + 1) && inArgv.test(line)) bad.push(`${page}:${i + 1}: ${line.trim()}`);
    });
  }
  assertEquals(bad, []);
});
