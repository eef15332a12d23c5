/**
 * The layers of src/ (no servers): core/ imports no other layer; the drivers (pg/, mysql/)
 * and etcd/ import only core/ and never each other; nothing imports upward; npm packages
 * only where the guide allows them (none of the test clients in src/: etcd3 cannot even
 * be bundled). Reads every import of every file, so a new breach fails here.
 */
import { assertEquals } from "../../testing/assert.ts";

const SRC = new URL("../../src/", import.meta.url);

/** What each layer may import besides itself (root files such as version.ts: anyone). */
const ALLOWED: Record<string, string[]> = {
  core: [],
  pg: ["core"],
  mysql: ["core"],
  etcd: ["core"],
  config: ["core"],
  service: ["core", "pg", "mysql", "etcd", "config"],
  cli: ["core", "pg", "mysql", "etcd", "config", "service"],
};
/** Layers that may use npm packages (bare specifiers), and which. */
const NPM: Record<string, string[]> = {
  config: ["yaml"],
  cli: ["commander", "@logtape/logtape"],
};

async function* files(dir: URL, rel = ""): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) yield* files(new URL(`${e.name}/`, dir), `${rel}${e.name}/`);
    else if (e.name.endsWith(".ts")) yield `${rel}${e.name}`;
  }
}

/** Every module specifier a file imports or re-exports, static or dynamic. */
export function specifiers(source: string): string[] {
  const out: string[] = [];
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  for (const m of code.matchAll(/\b(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']/g)) {
    out.push(m[1]);
  }
  for (const m of code.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g)) out.push(m[1]);
  for (const m of code.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) out.push(m[1]);
  return out;
}

/** The breaches in one file: `file → specifier (why)`. */
function breaches(file: string, source: string): string[] {
  const layer = file.includes("/") ? file.slice(0, file.indexOf("/")) : "";
  const out: string[] = [];
  for (const spec of specifiers(source)) {
    if (spec.startsWith("node:")) continue;
    if (!spec.startsWith(".")) {
      if (!(NPM[layer] ?? []).includes(spec)) out.push(`${file} → ${spec} (npm package)`);
      continue;
    }
    const target = new URL(spec, new URL(file, SRC)).pathname;
    if (!target.startsWith(SRC.pathname)) {
      out.push(`${file} → ${spec} (outside src/)`);
      continue;
    }
    const rel = target.slice(SRC.pathname.length);
    const to = rel.includes("/") ? rel.slice(0, rel.indexOf("/")) : "";
    if (!layer || !to || to === layer) continue;
    if (!(layer in ALLOWED)) out.push(`${file} (layer ${layer} has no rule)`);
    else if (!ALLOWED[layer].includes(to)) out.push(`${file} → ${spec} (${layer} imports ${to})`);
  }
  return out;
}

Deno.test("layers: every import of src/ keeps to its layer", async () => {
  const found: string[] = [];
  let n = 0;
  for await (const f of files(SRC)) {
    n++;
    found.push(...breaches(f, await Deno.readTextFile(new URL(f, SRC))));
  }
  assertEquals(found, []);
  if (n < 40) throw new Error(`read only ${n} files under src/`);
});

Deno.test("layers: the checker sees each kind of breach", () => {
  const cases: [string, string][] = [
    ["core/x.ts", 'import { a } from "../pg/conn.ts";'],
    ["pg/x.ts", 'import type { B } from "../mysql/conn.ts";'],
    ["mysql/x.ts", 'export { c } from "../etcd/client.ts";'],
    ["etcd/x.ts", 'const m = await import("../service/run.ts");'],
    ["pg/x.ts", 'import postgres from "postgres";'],
    ["service/x.ts", 'import {\n  run,\n} from "../cli/main.ts";'],
    ["core/x.ts", 'import "../cli/main.ts";'],
  ];
  for (const [file, source] of cases) assertEquals(breaches(file, source).length, 1, source);
  assertEquals(breaches("pg/x.ts", 'import { a } from "../core/a.ts"; // from "../etcd/b.ts"'), []);
  assertEquals(breaches("cli/x.ts", 'import { Command } from "commander";'), []);
});

/** Files under `dir` that import anything under tests/: the harness and scripts stand alone. */
async function intoTests(dir: string): Promise<string[]> {
  const root = new URL(`../../${dir}/`, import.meta.url);
  const tests = new URL("../../tests/", import.meta.url).pathname;
  const out: string[] = [];
  for await (const f of files(root)) {
    const file = new URL(f, root);
    for (const spec of specifiers(await Deno.readTextFile(file))) {
      if (spec.startsWith(".") && new URL(spec, file).pathname.startsWith(tests)) {
        out.push(`${dir}/${f} → ${spec}`);
      }
    }
  }
  return out;
}

Deno.test("layers: testing/ and scripts/ import nothing from tests/", async () => {
  assertEquals([...await intoTests("testing"), ...await intoTests("scripts")], []);
});

/**
 * The string literals of a TypeScript source (template literals by their text parts), its
 * comments left out. A small scanner: a `/` after an operator or a keyword starts a regular
 * expression, read whole so a quote inside it starts nothing. Throws when a literal does not
 * end, so a scanner that lost its way fails loudly rather than seeing nothing.
 */
export function stringLiterals(src: string): string[] {
  const out: string[] = [];
  const braces: number[] = []; // for each open `${`, the brace depth it closes at
  let depth = 0;
  let i = 0;
  let last = ""; // the last significant character or word of code, for regex detection
  const template = () => {
    // From after a backtick or a `}` closing `${`: text up to the next backtick or `${`.
    let text = "";
    while (i < src.length) {
      const c = src[i];
      if (c === "\\") {
        text += src.slice(i, i + 2);
        i += 2;
      } else if (c === "`") {
        i++;
        out.push(text);
        last = "`";
        return;
      } else if (c === "$" && src[i + 1] === "{") {
        i += 2;
        out.push(text);
        braces.push(depth++);
        last = "{";
        return;
      } else text += src[i++];
    }
    throw new Error("unterminated template literal");
  };
  while (i < src.length) {
    const c = src[i];
    if (c === "/" && src[i + 1] === "/") {
      i = src.indexOf("\n", i) < 0 ? src.length : src.indexOf("\n", i);
    } else if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      if (end < 0) throw new Error("unterminated comment");
      i = end + 2;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) {
        if (src[j] === "\n") throw new Error(`unterminated string at ${i}`);
        j += src[j] === "\\" ? 2 : 1;
      }
      out.push(src.slice(i + 1, j));
      i = j + 1;
      last = c;
    } else if (c === "`") {
      i++;
      template();
    } else if (
      c === "/" &&
      (/[(,=:[!&|?{};+\-*%<>~^]/.test(last) || /^(return|typeof|case|in|of)$/.test(last) ||
        last === "")
    ) {
      let j = i + 1;
      let cls = false;
      while (j < src.length && (cls || src[j] !== "/")) {
        if (src[j] === "\n") throw new Error(`unterminated regular expression at ${i}`);
        if (src[j] === "[") cls = true;
        else if (src[j] === "]") cls = false;
        j += src[j] === "\\" ? 2 : 1;
      }
      i = j + 1;
      last = "/regex";
    } else if (c === "{") {
      depth++;
      i++;
      last = c;
    } else if (c === "}") {
      depth--;
      i++;
      if (braces.length && braces[braces.length - 1] === depth) {
        braces.pop();
        template();
      } else last = c;
    } else if (/\s/.test(c)) i++;
    else if (/[A-Za-z_$0-9]/.test(c)) {
      const m = /^[A-Za-z_$0-9]+/.exec(src.slice(i, i + 64))!;
      last = m[0];
      i += m[0].length;
    } else {
      last = c;
      i++;
    }
  }
  if (braces.length) throw new Error("unterminated template substitution");
  return out;
}

/** The flags of ours (from the options table) that `literals` spell out. */
function flagsNamed(literals: string[], names: readonly string[]): string[] {
  const out: string[] = [];
  for (const s of literals) {
    for (const name of names) {
      if (new RegExp(`(^|[^-\\w])--${name}(?![\\w-])`).test(s)) out.push(`--${name}`);
    }
  }
  return out;
}

Deno.test("layers: low layers name settings by id, never by a flag's spelling", async () => {
  const { OPTIONS } = await import("../../src/config/options.ts");
  const names = OPTIONS.map((o) => o.name);
  const found: string[] = [];
  let n = 0;
  let strings = 0;
  for (const layer of ["core", "pg", "mysql", "etcd"]) {
    const dir = new URL(`${layer}/`, SRC);
    for await (const f of files(dir)) {
      n++;
      const literals = stringLiterals(await Deno.readTextFile(new URL(f, dir)));
      strings += literals.length;
      for (const flag of flagsNamed(literals, names)) found.push(`${layer}/${f}: ${flag}`);
    }
  }
  // `setting("dbUrl")` instead: the CLI renders it as `--db-url` (issue 13).
  assertEquals(found, []);
  if (n < 40 || strings < 1000) throw new Error(`read only ${n} files, ${strings} strings`);
});

Deno.test("layers: the literal scanner sees strings, not comments or regexes", () => {
  const src = [
    '// "--db-url" in a comment',
    '/* `--keys` */ const a = "--db-url is bad";',
    "const r = /[\"'`]--slot/.test(x) ? 'x' : `at ${b ? \"--keys\" : `--tables ${c}`} end`;",
    "const d = x / 2 / y; const e = 'it\\'s --keys'.length;",
    'if (!/^a\\/\'/.test(s)) throw new Error("--etcd-endpoints");',
  ].join("\n");
  const lits = stringLiterals(src);
  assertEquals(flagsNamed(lits, ["db-url", "keys", "slot", "tables", "etcd-endpoints"]), [
    "--db-url",
    "--keys",
    "--tables",
    "--keys",
    "--etcd-endpoints",
  ]);
  assertEquals(flagsNamed(["--slot-failover=false", "etcd's --max-request-bytes"], ["slot"]), []);
});
