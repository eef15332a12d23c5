/**
 * PostgreSQL values, from their text form to the design's JSON (design: Values).
 *
 * Connections run with DateStyle=ISO, TimeZone=UTC, IntervalStyle=postgres and
 * bytea_output=hex, so the dump (simple queries) and the stream (pgoutput) print every
 * value the same way; one renderer per column serves both.
 */
import { jsonBase64, jsonBool, jsonNumber, jsonRaw, jsonString } from "../core/json.ts";

export interface PgType {
  oid: number;
  name: string;
  /** pg_type.typtype: b base, c composite, d domain, e enum, p pseudo, r range, m multirange. */
  typtype: string;
  /** pg_type.typcategory (A for arrays). */
  category: string;
  /** Element type of an array type (0 otherwise). */
  elem: number;
  /** Base type of a domain (0 otherwise). */
  base: number;
  /** Array element delimiter of this type (`,` for all built-ins but box). */
  delim: string;
}

export type TypeLookup = (oid: number) => PgType | undefined;

function t(oid: number, name: string, category: string, elem = 0, delim = ","): PgType {
  return { oid, name, typtype: "b", category, elem, base: 0, delim };
}

// [scalar oid, name, category, array oid]
const SCALARS: [number, string, string, number][] = [
  [16, "bool", "B", 1000],
  [17, "bytea", "U", 1001],
  [18, "char", "Z", 1002],
  [19, "name", "S", 1003],
  [20, "int8", "N", 1016],
  [21, "int2", "N", 1005],
  [23, "int4", "N", 1007],
  [24, "regproc", "N", 1008],
  [25, "text", "S", 1009],
  [26, "oid", "N", 1028],
  [114, "json", "U", 199],
  [142, "xml", "U", 143],
  [600, "point", "G", 1017],
  [601, "lseg", "G", 1018],
  [602, "path", "G", 1019],
  [604, "polygon", "G", 1027],
  [628, "line", "G", 629],
  [718, "circle", "G", 719],
  [650, "cidr", "I", 651],
  [700, "float4", "N", 1021],
  [701, "float8", "N", 1022],
  [774, "macaddr8", "U", 775],
  [790, "money", "N", 791],
  [829, "macaddr", "U", 1040],
  [869, "inet", "I", 1041],
  [1042, "bpchar", "S", 1014],
  [1043, "varchar", "S", 1015],
  [1082, "date", "D", 1182],
  [1083, "time", "D", 1183],
  [1114, "timestamp", "D", 1115],
  [1184, "timestamptz", "D", 1185],
  [1186, "interval", "T", 1187],
  [1266, "timetz", "D", 1270],
  [1560, "bit", "V", 1561],
  [1562, "varbit", "V", 1563],
  [1700, "numeric", "N", 1231],
  [2950, "uuid", "U", 2951],
  [3614, "tsvector", "U", 3643],
  [3615, "tsquery", "U", 3645],
  [3802, "jsonb", "U", 3807],
  [4072, "jsonpath", "U", 4073],
  [3220, "pg_lsn", "U", 3221],
];

/** Built-in types by oid, so most tables need no catalogue query. */
export const BUILTIN_TYPES: ReadonlyMap<number, PgType> = (() => {
  const m = new Map<number, PgType>();
  for (const [oid, name, cat, arr] of SCALARS) {
    m.set(oid, t(oid, name, cat));
    m.set(arr, t(arr, `_${name}`, "A", oid));
  }
  m.set(603, t(603, "box", "G", 0, ";"));
  m.set(1020, t(1020, "_box", "A", 603, ";"));
  return m;
})();

/**
 * Catalogue query for types that are not built in, the oids inlined (simple query protocol).
 * Columns, in this order: oid, name, typtype, category, elem, base, delim.
 */
export function typeQuery(oids: number[]): string {
  const list = oids.map((o) => String(Math.trunc(Number(o)) >>> 0)).join(",");
  return typeSql(`'{${list}}'::oid[]`);
}

function typeSql(oids: string): string {
  return `SELECT t.oid::int8 AS oid, t.typname::text AS name, t.typtype::text AS typtype,
      t.typcategory::text AS category,
      (CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0 END)::int8 AS elem,
      t.typbasetype::int8 AS base, t.typdelim::text AS delim
    FROM pg_type t WHERE t.oid = ANY (${oids})`;
}

type Render = (text: string) => string;

const NUMERIC_NAMES = new Set(["numeric", "float4", "float8"]);
/** PostgreSQL prints these as `-?[0-9]+` without leading zeros: JSON numbers as they are. */
const INTEGER_NAMES = new Set(["int2", "int4", "int8", "oid"]);

/**
 * The renderer of integer columns: their text is the JSON number, and also their key part
 * (digits and `-` need no percent-encoding). Exported so row plans can tell it apart.
 */
export const integerText: Render = (s) => s;

/** Compile the renderer for one column type (once per column, not per value). */
export function valueRenderer(oid: number, types: TypeLookup): Render {
  return build(oid, types, 0).render;
}

interface Built {
  render: Render;
  /** The type's array delimiter (for arrays of it). */
  delim: string;
}

function build(oid: number, types: TypeLookup, depth: number): Built {
  const ty = types(oid);
  if (!ty || depth > 16) return { render: jsonString, delim: "," };
  if (ty.typtype === "d" && ty.base) return build(ty.base, types, depth + 1);
  if (ty.category === "A" && ty.elem) {
    const el = build(ty.elem, types, depth + 1);
    return { render: (text) => renderArray(text, el.delim, el.render), delim: "," };
  }
  if (ty.typtype === "e" || ty.typtype === "c" || ty.typtype === "r" || ty.typtype === "m") {
    return { render: jsonString, delim: ty.delim };
  }
  return { render: scalar(ty.name), delim: ty.delim };
}

function scalar(name: string): Render {
  if (INTEGER_NAMES.has(name)) return integerText;
  if (NUMERIC_NAMES.has(name)) return jsonNumber;
  switch (name) {
    case "bool":
      return (s) => jsonBool(s === "t" || s === "true");
    case "bytea":
      return (s) => jsonBase64(hexToBytes(s));
    case "json":
    case "jsonb":
      return jsonRaw;
    case "timestamp":
      return (s) => jsonString(isoTimestamp(s, false));
    case "timestamptz":
      return (s) => jsonString(isoTimestamp(s, true));
    default:
      return jsonString;
  }
}

function hexToBytes(s: string): Uint8Array {
  // bytea_output=hex: "\x" then two hex digits per byte.
  const hex = s.startsWith("\\x") ? s.slice(2) : s;
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) {
    out[i] = (hexVal(hex.charCodeAt(2 * i)) << 4) | hexVal(hex.charCodeAt(2 * i + 1));
  }
  return out;
}

function hexVal(c: number): number {
  return c <= 57 ? c - 48 : (c | 32) - 87;
}

/**
 * `2024-05-01 12:00:00.5+00` → `2024-05-01T12:00:00.5Z` (the session is UTC), as
 * PostgreSQL's to_json() writes it but with `Z` for `+00:00`. Special values (`infinity`)
 * and the ` BC` suffix stay as the database prints them.
 */
function isoTimestamp(s: string, tz: boolean): string {
  const space = s.indexOf(" ");
  if (space < 0) return s; // infinity, -infinity
  let out = s.slice(0, space) + "T" + s.slice(space + 1);
  if (!tz) return out;
  let bc = "";
  if (out.endsWith(" BC")) {
    bc = " BC";
    out = out.slice(0, -3);
  }
  // TimeZone=UTC: the offset is always +00.
  if (out.endsWith("+00")) out = out.slice(0, -3);
  else if (out.endsWith("+00:00")) out = out.slice(0, -6);
  else return s.slice(0, space) + "T" + s.slice(space + 1); // not UTC: leave as printed
  return out + "Z" + bc;
}

/**
 * An array literal (`{1,2}`, `{{a,"b c"},{NULL,d}}`, `[0:1]={x,y}`) as a JSON array with
 * each element rendered by `el`.
 */
export function renderArray(text: string, delim: string, el: Render): string {
  let i = 0;
  if (text[0] === "[") {
    const eq = text.indexOf("=");
    if (eq > 0) i = eq + 1;
  }
  const d = delim.charCodeAt(0);
  let out = "";
  const parse = (): void => {
    // at '{'
    i++;
    out += "[";
    let first = true;
    for (;;) {
      while (text[i] === " ") i++;
      if (text[i] === "}") {
        i++;
        out += "]";
        return;
      }
      if (!first) out += ",";
      first = false;
      if (text[i] === "{") parse();
      else if (text[i] === '"') {
        i++;
        let s = "";
        let from = i;
        for (; i < text.length && text[i] !== '"'; i++) {
          if (text[i] === "\\") {
            s += text.slice(from, i);
            i++;
            from = i;
          }
        }
        s += text.slice(from, i);
        i++; // closing quote
        out += el(s);
      } else {
        const start = i;
        while (i < text.length && text.charCodeAt(i) !== d && text[i] !== "}") i++;
        const raw = text.slice(start, i).trim();
        out += raw.toUpperCase() === "NULL" ? "null" : el(raw);
      }
      while (text[i] === " ") i++;
      if (text.charCodeAt(i) === d) i++;
      else if (text[i] !== "}") {
        throw new SyntaxError(`malformed array literal: ${text.slice(0, 60)}`);
      }
    }
  };
  if (text[i] !== "{") throw new SyntaxError(`malformed array literal: ${text.slice(0, 60)}`);
  parse();
  return out;
}
