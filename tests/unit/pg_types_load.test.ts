/**
 * Types.load runs for the stream and for chunk reads at once. A load that finds a type
 * already known must also find what it refers to: otherwise it builds a renderer from half
 * of the types. Hand-built catalogue rows (an array of a domain over int4), answered by a
 * stand-in connection whose second round is held back.
 */
import { assertEquals } from "../../testing/assert.ts";
import { Types } from "../../src/pg/catalog.ts";
import type { PgConn } from "../../src/pg/conn.ts";

const ARRAY = 90010, DOMAIN = 90011;
const ROWS: Record<number, (string | null)[]> = {
  [ARRAY]: [String(ARRAY), "_score", "b", "A", String(DOMAIN), "0", ","],
  [DOMAIN]: [String(DOMAIN), "score", "d", "N", "0", "23", ","],
};

/** Answers pg_type look-ups from ROWS; `gate` holds every round after the first. */
function catalogue(gate?: Promise<void>): PgConn {
  let round = 0;
  return {
    async query(sql: string) {
      if (round++ > 0 && gate) await gate;
      const oids = [...sql.matchAll(/\d{5}/g)].map((m) => Number(m[0]));
      return { rows: oids.filter((o) => ROWS[o]).map((o) => ROWS[o]) };
    },
  } as unknown as PgConn;
}

Deno.test("types: a load beside another sees a type only with the types it refers to", async () => {
  const whole = new Types();
  await whole.load(catalogue(), [ARRAY]);
  const expected = whole.renderer(ARRAY)("{1,2}");

  const types = new Types();
  let release = () => {};
  const slow = types.load(catalogue(new Promise<void>((r) => release = r)), [ARRAY]);
  await new Promise((r) => setTimeout(r, 10)); // the slow load's first round is in
  await types.load(catalogue(), [ARRAY]);
  assertEquals(types.renderer(ARRAY)("{1,2}"), expected);
  release();
  await slow;
  assertEquals(types.renderer(ARRAY)("{1,2}"), expected);
});
