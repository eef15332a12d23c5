/** Binlog positions compare by file number, then offset (src/mysql/visibility.ts). */
import { assertEquals } from "../../testing/assert.ts";
import { spotBefore } from "../../src/mysql/visibility.ts";

Deno.test("binlog spots: files by their number, then offsets", () => {
  const at = (file: string, offset: number) => ({ file, offset });
  assertEquals(spotBefore(at("bin.000009", 900), at("bin.000010", 4)), true);
  assertEquals(spotBefore(at("bin.000010", 4), at("bin.000009", 900)), false);
  assertEquals(spotBefore(at("bin.000002", 100), at("bin.000002", 101)), true);
  assertEquals(spotBefore(at("bin.000002", 101), at("bin.000002", 101)), false);
  // Past six digits the suffix grows: numbers, not text, decide.
  assertEquals(spotBefore(at("bin.999999", 5), at("bin.1000000", 4)), true);
});
