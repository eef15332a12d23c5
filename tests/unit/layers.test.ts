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
