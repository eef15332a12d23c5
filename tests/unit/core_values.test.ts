/** The design's Keys and Values rules, exactly. */
import { assert, assertEquals } from "../../testing/assert.ts";
import {
  jsonBase64,
  jsonBool,
  jsonNumber,
  jsonRaw,
  jsonString,
  renderRow,
  splitRow,
} from "../../src/core/json.ts";
import {
  decodeKeyPart,
  encodeKeyPart,
  fullKey,
  keyTableName,
  rowKey,
} from "../../src/core/keys.ts";
import { TableFilter } from "../../src/core/filter.ts";

Deno.test("numbers are copied exactly; NaN and Infinity become strings", () => {
  assertEquals(jsonNumber("12345678901234567890123"), "12345678901234567890123");
  assertEquals(jsonNumber("-0.000100"), "-0.000100");
  assertEquals(jsonNumber("1e+20"), "1e+20");
  assertEquals(jsonNumber("NaN"), '"NaN"');
  assertEquals(jsonNumber("Infinity"), '"Infinity"');
  assertEquals(jsonNumber("-Infinity"), '"-Infinity"');
  assertEquals(jsonNumber("007"), '"007"');
});

Deno.test("every value kind renders as the design says", () => {
  const row = renderRow(
    [
      "int",
      "dec",
      "flt",
      "bool",
      "text",
      "bin",
      "json",
      "arr",
      "set",
      "ts",
      "tstz",
      "null",
      "other",
    ],
    [
      jsonNumber("-42"),
      jsonNumber("3.14159265358979323846"),
      jsonNumber("NaN"),
      jsonBool(true),
      jsonString('quote " backslash \\ newline \n tab \t ü 😀'),
      jsonBase64(new Uint8Array([0, 1, 2, 253, 254, 255])),
      jsonRaw('{"a": [1, 2.50, null], "s": "x y"}'),
      "[1,null,[2,3]]",
      '["a","c"]',
      jsonString("2024-01-02T03:04:05.5"),
      jsonString("2024-01-02T03:04:05Z"),
      "null",
      jsonString("(1,2)"),
    ],
  );
  assertEquals(
    row,
    '{"int":-42,"dec":3.14159265358979323846,"flt":"NaN","bool":true,' +
      '"text":"quote \\" backslash \\\\ newline \\n tab \\t ü 😀","bin":"AAEC/f7/",' +
      '"json":{"a":[1,2.50,null],"s":"x y"},"arr":[1,null,[2,3]],"set":["a","c"],' +
      '"ts":"2024-01-02T03:04:05.5","tstz":"2024-01-02T03:04:05Z","null":null,"other":"(1,2)"}',
  );
  // The row is valid JSON and splits back into the same fragments.
  JSON.parse(row);
  const parts = splitRow(row);
  assertEquals(parts.get("json"), '{"a":[1,2.50,null],"s":"x y"}');
  assertEquals(parts.get("dec"), "3.14159265358979323846");
  assertEquals(parts.get("text"), jsonString('quote " backslash \\ newline \n tab \t ü 😀'));
  assertEquals(parts.size, 13);
});

Deno.test("key parts are percent-encoded for %, / and non-printable bytes", () => {
  assertEquals(encodeKeyPart("plain-key_1.2"), "plain-key_1.2");
  assertEquals(encodeKeyPart("a/b%c"), "a%2Fb%25c");
  assertEquals(encodeKeyPart("ü\n"), "%C3%BC%0A");
  assertEquals(rowKey(["1", "a/b"]), "1/a%2Fb");
  assertEquals(new TextDecoder().decode(decodeKeyPart("a%2Fb%25c%C3%BC")), "a/b%cü");
  assertEquals(fullKey("/sync", "public.t/x", "1"), "/sync/public.t%2Fx/1");
  assertEquals(keyTableName("public", "t", "public"), "t");
  assertEquals(keyTableName("other", "t", "public"), "other.t");
  // Distinct composite keys never collide.
  assert(rowKey(["a/b", "c"]) !== rowKey(["a", "b/c"]));
});

Deno.test("table filters are globs on schema.table", () => {
  const f = new TableFilter(["public.*", "app.user?"], ["public.tmp_*"]);
  assert(f.matches("public", "orders"));
  assert(!f.matches("public", "tmp_x"));
  assert(f.matches("app", "users"));
  assert(!f.matches("app", "user"));
  assert(!f.matches("other", "orders"));
  assert(new TableFilter([], []).all);
});
