/**
 * HPACK (RFC 7541), as much as a gRPC client needs: request headers are encoded as literals
 * that never touch the dynamic table (so the server's table size does not matter to us), and
 * response header blocks are decoded in full: static and dynamic tables, size updates, and
 * Huffman-coded strings (grpc-go codes most of its values).
 */

/** One header field: name (lower case) and value. */
export type HeaderField = [name: string, value: string];

/** A header block that does not decode: the connection cannot go on (COMPRESSION_ERROR). */
export class HpackError extends Error {
  override name = "HpackError";
}

/** RFC 7541 Appendix A. Index 1 is the first entry. */
const STATIC: readonly HeaderField[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ...[
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "accept",
    "access-control-allow-origin",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-range",
    "content-type",
    "cookie",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "link",
    "location",
    "max-forwards",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "refresh",
    "retry-after",
    "server",
    "set-cookie",
    "strict-transport-security",
    "transfer-encoding",
    "user-agent",
    "vary",
    "via",
    "www-authenticate",
  ].map((n): HeaderField => [n, n === "accept-encoding" ? "gzip, deflate" : ""]),
];

/**
 * The Huffman code's lengths in bits, symbols 0 to 256 (EOS), from RFC 7541 Appendix B, in
 * base 36 (one character a symbol). The code is canonical (codes of one length are
 * consecutive in symbol order, shorter codes first), so the lengths determine every code.
 */
const HUFFMAN_LENGTHS = "dnsssssssoussussssssssusssssssss6aacd68baa8b8666555666666678f6ca" +
  "d67777777777777777777777878djde6f56565666577666567655677777fbeds" +
  "kmkkmmmnmnnnnnonoomnonnnnlmnmnnomlkmmnnlnmmolmnnllmlnmnnkmmmnmmn" +
  "qqkjmnmpqqqrrqopjlqrrqrollqqsrrrkoklmllnmmppooqnqrqqrrrrrsrrrrrqu";

/** Symbol 256 (EOS) is never sent inside a string; its code's top bits pad the last octet. */
const EOS = 256;

/** Each symbol's code (right-aligned) and length, derived from the lengths. */
const LENGTHS = [...HUFFMAN_LENGTHS].map((c) => parseInt(c, 36));
const CODES: number[] = (() => {
  const order = LENGTHS.map((_, s) => s).sort((a, b) => LENGTHS[a] - LENGTHS[b] || a - b);
  const codes: number[] = [];
  let code = 0;
  let len = LENGTHS[order[0]];
  for (const sym of order) {
    code *= 2 ** (LENGTHS[sym] - len);
    len = LENGTHS[sym];
    codes[sym] = code++;
  }
  return codes;
})();

/**
 * A binary decoding tree: node n's children are `TREE[2n]` (bit 0) and `TREE[2n+1]` (bit 1);
 * a child below 0 is the leaf of symbol `-child - 1`, 0 is no code.
 */
const TREE: Int16Array = (() => {
  const tree = new Int16Array(2 * 512);
  let nodes = 1;
  CODES.forEach((code, sym) => {
    let node = 0;
    for (let bit = LENGTHS[sym] - 1; bit > 0; bit--) {
      const slot = 2 * node + ((code >>> bit) & 1);
      if (tree[slot] === 0) tree[slot] = nodes++;
      node = tree[slot];
    }
    tree[2 * node + (code & 1)] = -sym - 1;
  });
  return tree;
})();

/** A symbol's code (right-aligned) and its length in bits: for checking against the RFC. */
export function huffmanCode(sym: number): { code: number; bits: number } {
  return { code: CODES[sym], bits: LENGTHS[sym] };
}

const latin1 = new TextDecoder("latin1");

/** Decode a Huffman-coded string (RFC 7541 section 5.2). */
export function huffmanDecode(src: Uint8Array): string {
  const out = new Uint8Array(Math.ceil((src.length * 8) / 5));
  let n = 0;
  let node = 0;
  // Bits read since the last symbol, and whether they were all ones: valid padding.
  let pending = 0;
  let ones = true;
  for (let i = 0; i < src.length; i++) {
    const byte = src[i];
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >>> b) & 1;
      const next = TREE[2 * node + bit];
      pending++;
      ones &&= bit === 1;
      if (next < 0) {
        const sym = -next - 1;
        if (sym === EOS) throw new HpackError("Huffman string contains EOS");
        out[n++] = sym;
        node = 0;
        pending = 0;
        ones = true;
      } else if (next === 0) {
        throw new HpackError("invalid Huffman code");
      } else node = next;
    }
  }
  if (pending > 7 || !ones) throw new HpackError("invalid Huffman padding");
  return latin1.decode(out.subarray(0, n));
}

/** A decoder's read position in a block. */
interface Cursor {
  at: number;
}

/** An integer with an N-bit prefix (RFC 7541 section 5.1). */
export function decodeInt(src: Uint8Array, c: Cursor, prefixBits: number): number {
  if (c.at >= src.length) throw new HpackError("header block ends inside an integer");
  const max = (1 << prefixBits) - 1;
  let v = src[c.at++] & max;
  if (v < max) return v;
  for (let shift = 0;; shift += 7) {
    if (c.at >= src.length) throw new HpackError("header block ends inside an integer");
    if (shift > 28) throw new HpackError("integer too large");
    const b = src[c.at++];
    v += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return v;
  }
}

function decodeString(src: Uint8Array, c: Cursor): string {
  if (c.at >= src.length) throw new HpackError("header block ends inside a string");
  const huffman = (src[c.at] & 0x80) !== 0;
  const len = decodeInt(src, c, 7);
  if (c.at + len > src.length) throw new HpackError("header block ends inside a string");
  const bytes = src.subarray(c.at, c.at + len);
  c.at += len;
  return huffman ? huffmanDecode(bytes) : latin1.decode(bytes);
}

/** The decoding side of one connection: its dynamic table lives as long as the connection. */
export class HpackDecoder {
  /** Newest first: dynamic index 62 is `#table[0]`. */
  #table: HeaderField[] = [];
  #size = 0;
  #max: number;
  /** The most the peer may set the table to (our SETTINGS_HEADER_TABLE_SIZE). */
  readonly #limit: number;

  constructor(limit = 4096) {
    this.#limit = limit;
    this.#max = limit;
  }

  /** The dynamic table's size in RFC 7541 terms (32 octets an entry plus its strings). */
  get size(): number {
    return this.#size;
  }

  /** The dynamic table, newest first (for tests). */
  get entries(): readonly HeaderField[] {
    return this.#table;
  }

  /** Decode one complete header block (HEADERS plus its CONTINUATIONs). */
  decode(block: Uint8Array): HeaderField[] {
    const out: HeaderField[] = [];
    const c = { at: 0 };
    while (c.at < block.length) {
      const b = block[c.at];
      if (b & 0x80) {
        out.push(this.#field(decodeInt(block, c, 7)));
      } else if (b & 0x40) {
        const f = this.#literal(block, c, 6);
        this.#add(f);
        out.push(f);
      } else if (b & 0x20) {
        const size = decodeInt(block, c, 5);
        if (size > this.#limit) throw new HpackError(`table size ${size} above ${this.#limit}`);
        this.#max = size;
        this.#evict(0);
      } else {
        out.push(this.#literal(block, c, 4)); // without indexing, or never indexed
      }
    }
    return out;
  }

  #field(index: number): HeaderField {
    if (index === 0) throw new HpackError("header index 0");
    if (index <= STATIC.length) return STATIC[index - 1];
    const f = this.#table[index - STATIC.length - 1];
    if (!f) throw new HpackError(`header index ${index} beyond the tables`);
    return f;
  }

  #literal(block: Uint8Array, c: Cursor, prefixBits: number): HeaderField {
    const index = decodeInt(block, c, prefixBits);
    const name = index === 0 ? decodeString(block, c) : this.#field(index)[0];
    return [name, decodeString(block, c)];
  }

  #add(f: HeaderField): void {
    const size = 32 + f[0].length + f[1].length;
    this.#evict(size);
    if (size > this.#max) return; // an entry larger than the table empties it
    this.#table.unshift(f);
    this.#size += size;
  }

  /** Evict the oldest entries until `room` more octets fit. */
  #evict(room: number): void {
    while (this.#table.length > 0 && this.#size + room > this.#max) {
      const [n, v] = this.#table.pop()!;
      this.#size -= 32 + n.length + v.length;
    }
  }
}

/** Write an integer with an N-bit prefix; `first` holds the bits above the prefix. */
function writeInt(out: number[], first: number, prefixBits: number, v: number): void {
  const max = (1 << prefixBits) - 1;
  if (v < max) {
    out.push(first | v);
    return;
  }
  out.push(first | max);
  v -= max;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function writeString(out: number[], s: string): void {
  writeInt(out, 0, 7, s.length);
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch > 0xff) throw new HpackError("header value is not Latin-1");
    out.push(ch);
  }
}

/** Static-table lookups for the encoder: "name\0value" and "name" to an index. */
const STATIC_PAIR = new Map<string, number>();
const STATIC_NAME = new Map<string, number>();
STATIC.forEach(([n, v], i) => {
  if (!STATIC_PAIR.has(`${n}\0${v}`)) STATIC_PAIR.set(`${n}\0${v}`, i + 1);
  if (!STATIC_NAME.has(n)) STATIC_NAME.set(n, i + 1);
});

/**
 * Encode header fields without the dynamic table: a static entry by index when name and
 * value match one, else a literal without indexing (by the static name's index when there
 * is one). Strings go as they are (no Huffman): short, and cheaper to write than to code.
 */
export function encodeHeaders(fields: readonly HeaderField[]): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of fields) {
    const full = STATIC_PAIR.get(`${name}\0${value}`);
    if (full !== undefined) {
      writeInt(out, 0x80, 7, full);
      continue;
    }
    const named = STATIC_NAME.get(name);
    if (named !== undefined) writeInt(out, 0x00, 4, named);
    else {
      out.push(0x00);
      writeString(out, name);
    }
    writeString(out, value);
  }
  return new Uint8Array(out);
}
