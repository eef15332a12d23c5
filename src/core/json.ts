/**
 * The JSON writer for row values (design: Values).
 *
 * Drivers render each cell to a JSON fragment with these helpers; `renderRow` joins them.
 * Numbers are copied from the database's text form, never passed through a float.
 */
import type { Cell } from "./change.ts";
import { UNCHANGED } from "./change.ts";

export const JSON_NULL = "null";
export const JSON_TRUE = "true";
export const JSON_FALSE = "false";

// JSON's number grammar.
const NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/** Strings JSON.stringify writes as they are: no control, quote, backslash or surrogate. */
// deno-lint-ignore no-control-regex -- the control characters are what it looks for
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/**
 * A string value. Most strings need no escaping, and checking that (one anchored regex,
 * measured faster than JSON.stringify and than a charCodeAt loop) lets them be quoted as
 * they are; the others go through JSON.stringify, so the bytes are the same either way.
 */
export function jsonString(s: string): string {
  return PLAIN.test(s) ? '"' + s + '"' : JSON.stringify(s);
}

/**
 * A number as the database printed it. `NaN`, `Infinity` and anything JSON cannot
 * write as a number (such as `1.` or `+5`) become strings.
 */
export function jsonNumber(text: string): string {
  return NUMBER.test(text) ? text : JSON.stringify(text);
}

/** A boolean. */
export function jsonBool(b: boolean): string {
  return b ? JSON_TRUE : JSON_FALSE;
}

/** Binary data as a base64 string. */
export function jsonBase64(bytes: Uint8Array): string {
  return '"' + (bytes as Uint8Array & { toBase64(): string }).toBase64() + '"';
}

/**
 * A JSON document stored in the database (json/jsonb/MySQL JSON), embedded as itself with
 * insignificant whitespace removed, so the same document always renders the same bytes
 * whichever way the database printed it. Strings and number tokens are kept byte for byte.
 */
export function jsonRaw(json: string): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i++;
      while (i < json.length && json.charCodeAt(i) !== 0x22) {
        i += json.charCodeAt(i) === 0x5c ? 2 : 1;
      }
    } else if (c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d) {
      out += json.slice(from, i);
      from = i + 1;
    }
  }
  return from === 0 ? json : out + json.slice(from);
}

/**
 * Per columns array, each column's lead-in: `{"name":` for the first, `,"name":` after.
 * Drivers pass one array per table (or per rows event), so it is built once per many rows.
 */
const leadIns = new WeakMap<readonly string[], string[]>();

function leadInsOf(columns: readonly string[]): string[] {
  let heads = leadIns.get(columns);
  // (A caller that changed its array since gets its lead-ins built again.)
  if (!heads || heads.length !== columns.length) {
    heads = columns.map((c, i) => (i ? "," : "{") + jsonString(c) + ":");
    leadIns.set(columns, heads);
  }
  return heads;
}

/** Render one row: `{"col":value,...}` in table order. */
export function renderRow(columns: readonly string[], cells: readonly Cell[]): string {
  if (columns.length === 0) return "{}";
  const heads = leadInsOf(columns);
  let out = "";
  for (let i = 0; i < columns.length; i++) {
    const cell = cells[i];
    if (cell === UNCHANGED) throw new Error(`column ${columns[i]} has no value to render`);
    out += heads[i] + cell;
  }
  return out + "}";
}

/**
 * Split a rendered row back into its columns' fragments, without re-encoding them
 * (used to fill unchanged TOAST columns from etcd's current value).
 */
export function splitRow(json: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = skipWs(json, 0);
  if (json[i] !== "{") throw new SyntaxError("row value is not a JSON object");
  i = skipWs(json, i + 1);
  if (json[i] === "}") return out;
  for (;;) {
    const keyEnd = scanValue(json, i);
    const name = JSON.parse(json.slice(i, keyEnd)) as string;
    i = skipWs(json, keyEnd);
    if (json[i] !== ":") throw new SyntaxError("expected ':' in row value");
    const start = skipWs(json, i + 1);
    const end = scanValue(json, start);
    out.set(name, json.slice(start, end));
    i = skipWs(json, end);
    if (json[i] === ",") {
      i = skipWs(json, i + 1);
      continue;
    }
    if (json[i] === "}") return out;
    throw new SyntaxError("expected ',' or '}' in row value");
  }
}

function skipWs(s: string, i: number): number {
  while (i < s.length && (s[i] === " " || s[i] === "\n" || s[i] === "\r" || s[i] === "\t")) i++;
  return i;
}

/** Index just past the JSON value starting at `i`. */
function scanValue(s: string, i: number): number {
  const c = s[i];
  if (c === '"') {
    for (let j = i + 1; j < s.length; j++) {
      if (s[j] === "\\") j++;
      else if (s[j] === '"') return j + 1;
    }
    throw new SyntaxError("unterminated string in row value");
  }
  if (c === "{" || c === "[") {
    let depth = 0;
    for (let j = i; j < s.length; j++) {
      const d = s[j];
      if (d === '"') j = scanValue(s, j) - 1;
      else if (d === "{" || d === "[") depth++;
      else if (d === "}" || d === "]") {
        if (--depth === 0) return j + 1;
      }
    }
    throw new SyntaxError("unterminated container in row value");
  }
  let j = i;
  while (j < s.length && !",}] \n\r\t".includes(s[j])) j++;
  if (j === i) throw new SyntaxError("missing value in row value");
  return j;
}
