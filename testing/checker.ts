/**
 * The independent checker: reads etcd with a different client (`etcd3` over gRPC, not our
 * client) and compares it with what the database holds, rendered by the test's own rules.
 * Nothing here or in expected_pg.ts / expected_mysql.ts comes from src/: keys are built by
 * this file's own percent-encoding and values are compared structurally by this file's own
 * JSON reader (numbers as their exact decimal text, never through a float), so a bug in the
 * product's key encoding or JSON writer cannot hide on both sides of the comparison.
 */
import { Etcd3 } from "etcd3";
import { step } from "./steps.ts";

/** One etcd key-value with the revisions etcd keeps for it. */
export interface EtcdKv {
  value: string;
  /** The revision of the transaction that last wrote it. */
  modRevision: number;
  createRevision: number;
  /** How many times it was written since it was created. */
  version: number;
}

/**
 * Every key under `prefix` with its revisions, read over gRPC in pages at one revision, and
 * that revision (etcd's header revision when the first page was read).
 */
export async function readEtcdKvs(
  endpoint: string,
  prefix: string,
): Promise<{ revision: number; kvs: Map<string, EtcdKv> }> {
  const c = new Etcd3({ hosts: endpoint });
  try {
    const kvs = new Map<string, EtcdKv>();
    const end = prefixEnd(prefix);
    let start = prefix;
    let revision: string | undefined;
    for (;;) {
      const q = c.getAll().inRange({ start, end }).sort("Key", "Ascend").limit(2000);
      if (revision) q.revision(revision);
      const r = await q.exec();
      revision ??= r.header.revision;
      for (const kv of r.kvs) {
        kvs.set(kv.key.toString(), {
          value: kv.value.toString(),
          modRevision: Number(kv.mod_revision),
          createRevision: Number(kv.create_revision),
          version: Number(kv.version),
        });
      }
      if (!r.more || !r.kvs.length) break;
      start = r.kvs[r.kvs.length - 1].key.toString() + "\0";
    }
    return { revision: Number(revision), kvs };
  } finally {
    c.close();
  }
}

/**
 * Every write of `key` after revision `after` up to `until` (etcd's history, read at each
 * revision in between; the range must not be compacted): value and revision, oldest first.
 */
export async function keyWrites(
  endpoint: string,
  key: string,
  after: number,
  until: number,
): Promise<{ modRevision: number; value: string }[]> {
  const c = new Etcd3({ hosts: endpoint });
  try {
    const out: { modRevision: number; value: string }[] = [];
    for (let rev = after + 1; rev <= until; rev++) {
      const r = await c.get(key).revision(String(rev)).exec();
      const kv = r.kvs[0];
      if (kv && Number(kv.mod_revision) === rev) {
        out.push({ modRevision: rev, value: kv.value.toString() });
      }
    }
    return out;
  } finally {
    c.close();
  }
}

/** Every key-value under `prefix`, read over gRPC in pages (one revision for all pages). */
export async function readEtcd(endpoint: string, prefix: string): Promise<Map<string, string>> {
  const { kvs } = await readEtcdKvs(endpoint, prefix);
  return new Map([...kvs].map(([k, kv]) => [k, kv.value]));
}

function prefixEnd(prefix: string): string {
  const b = new TextEncoder().encode(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      const e = b.slice(0, i + 1);
      e[i]++;
      return new TextDecoder().decode(e);
    }
  }
  return "\0";
}

/**
 * Writes between two readings of a prefix (`readEtcdKvs`) that `writes` does not account
 * for: each key must have been written exactly `writes(key)` times in between (its etcd
 * version), and a key written no time keeps its mod_revision. The first violation, or null.
 */
export function unexpectedWrites(
  before: Map<string, EtcdKv>,
  after: Map<string, EtcdKv>,
  writes: (key: string) => number,
): string | null {
  for (const k of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const b = before.get(k), a = after.get(k);
    if (!a) return `${k} was deleted`;
    const n = a.version - (b && b.createRevision === a.createRevision ? b.version : 0);
    if (n !== writes(k)) return `${k} written ${n} times, expected ${writes(k)}`;
    if (n === 0 && a.modRevision !== b!.modRevision) return `${k} rewritten`;
  }
  return null;
}

// ---- Keys (design: Keys), written from the contract ---------------------------------------

/**
 * One key part: printable ASCII stays, except `%` and `/`; every other byte (of the UTF-8
 * text, or of the raw value for binary columns) becomes `%XX`, upper-case hex.
 */
export function keyPart(value: string | Uint8Array): string {
  const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
  const out: string[] = [];
  for (const b of bytes) {
    const keep = b >= 0x20 && b <= 0x7e && b !== 0x25 && b !== 0x2f;
    out.push(keep ? String.fromCharCode(b) : "%" + b.toString(16).toUpperCase().padStart(2, "0"));
  }
  return out.join("");
}

/**
 * `<prefix>/<table>/<key>`: the table qualified as `schema.table` unless its schema is the
 * connection's default, every part (the table name too) percent-encoded, key parts joined
 * by `/` in key-column order.
 */
export function expectedKey(
  prefix: string,
  schema: string,
  table: string,
  defaultSchema: string,
  parts: (string | Uint8Array)[],
): string {
  const name = schema === defaultSchema ? table : `${schema}.${table}`;
  return `${prefix}/${keyPart(name)}/${parts.map(keyPart).join("/")}`;
}

// ---- Values: JSON read structurally ---------------------------------------------------------

/**
 * A JSON document re-written in one canonical form: no insignificant whitespace, strings by
 * their decoded characters (so `"\u00e9"` equals `"é"`), numbers as their exact text,
 * object members in their order (a row's columns are in table order). Throws on anything
 * that is not one JSON value.
 */
export function canonicalJson(text: string): string {
  const r = new JsonReader(text);
  const out = r.value();
  r.ws();
  if (r.at < text.length) r.fail("text after the value");
  return out;
}

/** A JSON object's members, each value in canonical form (a row's columns, by name). */
export function jsonMembers(text: string): Map<string, string> {
  const r = new JsonReader(text);
  r.ws();
  if (r.s[r.at] !== "{") r.fail("not an object");
  const members: [string, string][] = [];
  r.object(members);
  r.ws();
  if (r.at < text.length) r.fail("text after the value");
  return new Map(members);
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

class JsonReader {
  at = 0;
  constructor(readonly s: string) {}

  fail(why: string): never {
    throw new SyntaxError(`not JSON (${why} at ${this.at}): ${this.s.slice(0, 200)}`);
  }

  ws(): void {
    for (;;) {
      const c = this.s.charCodeAt(this.at);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      this.at++;
    }
  }

  value(): string {
    this.ws();
    const c = this.s[this.at];
    if (c === "{") return this.object();
    if (c === "[") return this.array();
    if (c === '"') return JSON.stringify(this.string());
    for (const lit of ["true", "false", "null"]) {
      if (this.s.startsWith(lit, this.at)) {
        this.at += lit.length;
        return lit;
      }
    }
    NUMBER.lastIndex = this.at;
    const m = NUMBER.exec(this.s);
    if (!m || !m[0].length) this.fail("no value");
    this.at += m[0].length;
    return m[0];
  }

  object(into?: [string, string][]): string {
    this.at++;
    const members: string[] = [];
    this.ws();
    if (this.s[this.at] === "}") {
      this.at++;
      return "{}";
    }
    for (;;) {
      this.ws();
      if (this.s[this.at] !== '"') this.fail("member name expected");
      const name = this.string();
      this.ws();
      if (this.s[this.at++] !== ":") this.fail("':' expected");
      const value = this.value();
      into?.push([name, value]);
      members.push(`${JSON.stringify(name)}:${value}`);
      this.ws();
      const c = this.s[this.at++];
      if (c === "}") return `{${members.join(",")}}`;
      if (c !== ",") this.fail("',' or '}' expected");
    }
  }

  array(): string {
    this.at++;
    const items: string[] = [];
    this.ws();
    if (this.s[this.at] === "]") {
      this.at++;
      return "[]";
    }
    for (;;) {
      items.push(this.value());
      this.ws();
      const c = this.s[this.at++];
      if (c === "]") return `[${items.join(",")}]`;
      if (c !== ",") this.fail("',' or ']' expected");
    }
  }

  /** The decoded characters of the string starting at `at` (its opening quote). */
  string(): string {
    let out = "";
    let from = this.at + 1;
    for (let i = from; i < this.s.length; i++) {
      const c = this.s.charCodeAt(i);
      if (c === 0x22) {
        this.at = i + 1;
        return out + this.s.slice(from, i);
      }
      if (c < 0x20) {
        this.at = i;
        this.fail("control character in a string");
      }
      if (c !== 0x5c) continue;
      out += this.s.slice(from, i);
      const e = this.s[++i];
      if (e === "u") {
        const hex = this.s.slice(i + 1, i + 5);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("bad \\u escape");
        out += String.fromCharCode(parseInt(hex, 16));
        i += 4;
      } else if (e in ESCAPES) out += ESCAPES[e];
      else this.fail("bad escape");
      from = i + 1;
    }
    return this.fail("unterminated string");
  }
}

const ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/** The canonical form of a value, or undefined when it is not JSON. */
function canonicalOrUndefined(text: string): string | undefined {
  try {
    return canonicalJson(text);
  } catch {
    return undefined;
  }
}

const clip = (s: string | undefined) =>
  s === undefined || s.length <= 400 ? s : `${s.slice(0, 400)}... (${s.length} chars)`;

/**
 * The first difference between two key→value maps, or null when they hold the same keys
 * and structurally equal JSON values (see `canonicalJson`; values that are not JSON must be
 * equal as text).
 */
export function firstDifference(
  expected: Map<string, string>,
  actual: Map<string, string>,
): string | null {
  const keys = [...new Set([...expected.keys(), ...actual.keys()])].sort();
  for (const k of keys) {
    const e = expected.get(k);
    const a = actual.get(k);
    if (e === a) continue;
    if (a === undefined) return `missing in etcd: ${k} (expected ${clip(e)})`;
    if (e === undefined) return `unexpected key in etcd: ${k} = ${clip(a)}`;
    const ce = canonicalOrUndefined(e), ca = canonicalOrUndefined(a);
    if (ce !== undefined && ce === ca) continue;
    const [x, y] = ce !== undefined && ca !== undefined ? [ce, ca] : [e, a];
    let at = 0;
    while (x[at] === y[at]) at++;
    return `value differs at ${k} (from character ${at}${
      ca === undefined ? "; etcd's value is not JSON" : ", canonical forms"
    }):\n  expected ${clip(x.slice(Math.max(0, at - 100)))}\n  actual   ${
      clip(y.slice(Math.max(0, at - 100)))
    }`;
  }
  return null;
}

/** Poll until etcd under `prefix` equals `expected()`; throws with the first difference. */
export async function assertConverges(
  endpoint: string,
  prefix: string,
  expected: () => Promise<Map<string, string>>,
  timeoutMs = 60_000,
): Promise<void> {
  step(`waiting for etcd under ${prefix} to equal the database`);
  const deadline = Date.now() + timeoutMs;
  let diff: string | null = "not checked";
  while (Date.now() < deadline) {
    diff = firstDifference(await expected(), await readEtcd(endpoint, prefix));
    if (diff === null) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`etcd did not converge to the database: ${diff}`);
}
