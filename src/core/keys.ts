/**
 * Key layout: `<prefix>/<table>/<key>` (design: Keys).
 *
 * Every key part and the table name are percent-encoded for `%`, `/` and bytes outside
 * printable ASCII (UTF-8 for text), so any value round-trips and no two rows share a key.
 */

const HEX = "0123456789ABCDEF";
const encoder = new TextEncoder();

function needsEscape(b: number): boolean {
  return b < 0x20 || b > 0x7e || b === 0x25 /* % */ || b === 0x2f /* / */;
}

/** Percent-encode raw bytes for use as one key part. */
export function encodeKeyBytes(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    out += needsEscape(b) ? "%" + HEX[b >> 4] + HEX[b & 15] : String.fromCharCode(b);
  }
  return out;
}

/** Percent-encode a text value (its UTF-8 bytes) for use as one key part. */
export function encodeKeyPart(text: string): string {
  // Fast path: nothing to escape.
  let plain = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25 || c === 0x2f) {
      plain = false;
      break;
    }
  }
  return plain ? text : encodeKeyBytes(encoder.encode(text));
}

/** Decode one percent-encoded key part back to bytes. */
export function decodeKeyPart(part: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < part.length; i++) {
    const c = part.charCodeAt(i);
    if (c === 0x25) {
      out.push(parseInt(part.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(c);
  }
  return new Uint8Array(out);
}

/** The key for a row: its primary-key parts (canonical text), in key-column order. */
export function rowKey(parts: readonly string[]): string {
  return parts.length === 1 ? encodeKeyPart(parts[0]) : parts.map(encodeKeyPart).join("/");
}

/** `<prefix>/<table>/` — the range holding every row of one table. */
export function tablePrefix(prefix: string, table: string): string {
  return `${prefix}/${encodeKeyPart(table)}/`;
}

/** The full etcd key of one row. */
export function fullKey(prefix: string, table: string, key: string): string {
  return tablePrefix(prefix, table) + key;
}

/** Strip trailing slashes; the design's prefix has none. */
export function normalizePrefix(prefix: string): string {
  return prefix.replace(/\/+$/, "");
}

/**
 * Table name as it appears in keys: qualified as `schema.table` unless the schema is the
 * connection's default.
 */
export function keyTableName(schema: string, table: string, defaultSchema: string): string {
  return schema === defaultSchema ? table : `${schema}.${table}`;
}

/** The inverse of `keyTableName`: `[schema, table]` (a dot in a bare name reads as a schema). */
export function splitKeyTableName(name: string, defaultSchema: string): [string, string] {
  const dot = name.indexOf(".");
  return dot < 0 ? [defaultSchema, name] : [name.slice(0, dot), name.slice(dot + 1)];
}

/** The table name of a row key under `prefix`, or undefined for a key outside it. */
export function tableOfKey(prefix: string, key: string): string | undefined {
  const start = prefix.length + 1;
  if (!key.startsWith(`${prefix}/`)) return undefined;
  const end = key.indexOf("/", start);
  if (end < 0) return undefined;
  return new TextDecoder().decode(decodeKeyPart(key.slice(start, end)));
}
