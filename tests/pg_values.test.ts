/**
 * The PostgreSQL value renderer against PostgreSQL's own JSON functions: for every column of
 * a table holding every type (with awkward values), `valueRenderer(oid)(text)` must equal
 * what the independent checker (`expected_pg.ts`) expects, compared structurally. The texts
 * come through sync's own connection (its session settings) from a server whose defaults
 * are none of them (time zone Asia/Kathmandu, +05:45; SQL dates; escaped bytea), so a
 * setting sync fails to make shows up here.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals } from "../testing/assert.ts";
import { startPostgres } from "../testing/postgres.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { canonicalJson, expectedKey, jsonMembers } from "../testing/checker.ts";
import { PgConn } from "../src/pg/conn.ts";
import {
  BUILTIN_TYPES,
  type PgType,
  renderArray,
  typeQuery,
  valueRenderer,
} from "../src/pg/values.ts";
import { jsonString } from "../src/core/json.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const TYPES = `
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'quote"d', 'com,ma');
  CREATE DOMAIN posnum AS numeric CHECK (VALUE >= 0);
  CREATE DOMAIN posnum2 AS posnum;
  CREATE DOMAIN utc_time AS timestamptz;
  CREATE DOMAIN blob AS bytea;
  CREATE DOMAIN tags AS text[];
  CREATE TYPE pair AS (a int, b text);
`;

/** [column, type, SQL literals one per row (missing rows are NULL)] */
const COLUMNS: [string, string, string[]][] = [
  ["b", "bool", ["true", "false"]],
  ["i2", "int2", ["-32768", "32767", "0"]],
  ["i4", "int4", ["-2147483648", "2147483647"]],
  ["i8", "int8", ["-9223372036854775808", "9223372036854775807"]],
  ["o", "oid", ["0", "4294967295"]],
  ["f4", "float4", [
    "'NaN'",
    "'Infinity'",
    "'-Infinity'",
    "'-0'",
    "1.5e-30",
    "3.4028235e38",
    "0.1",
  ]],
  ["f8", "float8", ["'NaN'", "'-Infinity'", "'-0'", "1e100", "0.1", "-1.7976931348623157e308"]],
  ["n", "numeric", [
    "'NaN'",
    "'Infinity'",
    "'-Infinity'",
    "-0.000",
    "123456789012345678901234567890.123456789012345678901234567890",
    "1e-20",
    "100",
  ]],
  ["n2", "numeric(12,3)", ["1.5", "-0", "999999999.999"]],
  ["m", "money", ["12.34", "-1000000.5", "0"]],
  ["t", "text", [
    "E'h\\u00e9llo \"w\" \\\\ \\n\\t'",
    "''",
    "'NULL'",
    "E'\\u0001 ctl \\u007f'",
    "'日本語 😀'",
  ]],
  ["vc", "varchar(20)", ["'abc'", "' padded '"]],
  ["bc", "char(4)", ["'ab'", "'abcd'"]],
  ["ch", '"char"', ["'x'", "'\"'"]],
  ["nm", "name", ["'some name'"]],
  ["by", "bytea", [
    "'\\x'",
    "'\\x00ff10'",
    "convert_to('hello world, longer than a few bytes', 'UTF8')",
  ]],
  ["j", "json", [
    `'{"a" : [1, 2.50, "x y"], "b":null}'`,
    "'\"str\"'",
    "'  1e3 '",
    `'{"a":{"b":[true,false]} , "c" : "\\\\u00e9 \\" ,"}'`,
  ]],
  ["jb", "jsonb", [`'{"b": 1e3, "a": [1, 2.50, "x y"]}'`, "'null'", "'[]'"]],
  ["u", "uuid", ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"]],
  ["d", "date", ["'2024-02-29'", "'infinity'", "'-infinity'", "'0044-03-15 BC'", "'0001-01-01'"]],
  ["tm", "time", ["'23:59:59.999999'", "'00:00'", "'12:00:00.5'"]],
  ["ttz", "timetz", ["'12:00:00+05:30'", "'12:00:00-08'", "'00:00:00.25+00'"]],
  ["ts", "timestamp", [
    "'2024-05-01 12:00:00.5'",
    "'infinity'",
    "'-infinity'",
    "'0044-03-15 10:00:00 BC'",
    "'2024-05-01 12:00:00'",
    "'294276-12-31 23:59:59.999999'",
  ]],
  ["tstz", "timestamptz", [
    "'2024-05-01 12:00:00.123+02'",
    "'infinity'",
    "'-infinity'",
    "'0044-03-15 10:00:00+00 BC'",
    "'2024-05-01 12:00:00.000001-09:30'",
    "'1900-01-01 00:00:00+00'",
  ]],
  ["iv", "interval", ["'1 year 2 mons -3 days 04:05:06.7'", "'0'", "'-1 day -00:00:01'"]],
  ["ip", "inet", ["'192.168.0.1/24'", "'::1'"]],
  ["cd", "cidr", ["'10.0.0.0/8'"]],
  ["mac", "macaddr", ["'08:00:2b:01:02:03'"]],
  ["mac8", "macaddr8", ["'08:00:2b:01:02:03:04:05'"]],
  ["bt", "bit(4)", ["B'1010'"]],
  ["vb", "varbit", ["B'101'", "B''"]],
  ["x", "xml", ["'<a>x &amp; \"y\"</a>'"]],
  ["pt", "point", ["'(1.5,-2)'"]],
  ["ln", "line", ["'{1,2,3}'"]],
  ["ls", "lseg", ["'[(1,2),(3,4)]'"]],
  ["bx", "box", ["'(1,2),(3,4)'"]],
  ["pa", "path", ["'((0,0),(1,1))'"]],
  ["pg", "polygon", ["'((0,0),(1,1),(1,0))'"]],
  ["ci", "circle", ["'<(0,0),1>'"]],
  ["tv", "tsvector", ["'a fat cat'"]],
  ["lsn", "pg_lsn", ["'16/B374D848'"]],
  ["ia", "int4[]", ["'{1,NULL,3}'", "'{}'", "'[0:1]={5,6}'", "'{{1,2},{3,4}}'"]],
  ["i8a", "int8[][]", ["'{{1,2},{3,NULL}}'", "'{{{1}},{{2}}}'"]],
  ["na", "numeric[]", ["'{NaN,Infinity,1.50,-0}'"]],
  ["fa", "float8[]", ["'{NaN,-Infinity,1e100,-0}'"]],
  ["ba", "bool[]", ["'{t,f,NULL}'"]],
  ["ta", "text[]", [
    `'{"a b","c\\"d",NULL,"NULL","",",","{}","\\\\",x}'`,
    "ARRAY['é', ' lead', 'trail ', E'tab\\t', 'semi;colon']",
    "'{{a,b},{c,d}}'",
    "'{}'",
  ]],
  ["vca", "varchar[]", ["'{a,\"b,c\"}'"]],
  ["bca", "char(2)[]", ["'{a,bb}'"]],
  ["bya", "bytea[]", ['\'{"\\\\x0102",NULL,"\\\\x"}\'', "'{}'", '\'{{"\\\\x01"},{"\\\\xff"}}\'']],
  ["tsa", "timestamp[]", ["'{\"2024-01-01 00:00:00.5\",infinity,NULL}'"]],
  ["tza", "timestamptz[]", [
    '\'{"2024-01-01 00:00:00+00",infinity,NULL,"2024-01-01 01:00:00.25+01"}\'',
    "'{}'",
    '\'{{"2024-01-01 00:00:00+00"},{"2024-01-02 00:00:00+00"}}\'',
  ]],
  ["da", "date[]", ["'{2024-01-01,infinity}'"]],
  ["ja", "json[]", [`ARRAY['{"a": 1}'::json, '[1, 2]', NULL, '"s"']`]],
  ["jba", "jsonb[]", [`ARRAY['{"a": 1}'::jsonb, 'null']`]],
  ["bxa", "box[]", ["'{(1,2),(3,4);(5,6),(7,8)}'"]],
  ["pta", "point[]", ["'{\"(1,2)\",NULL}'"]],
  ["ua", "uuid[]", ["'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'"]],
  ["ipa", "inet[]", ["'{10.0.0.1,::1}'"]],
  ["iva", "interval[]", ['\'{"1 day","-00:00:01"}\'']],
  ["ma", "money[]", ["'{1.5,-2}'"]],
  ["e", "mood", ["'happy'", "'quote\"d'", "'com,ma'"]],
  ["ea", "mood[]", [`'{sad,"quote\\"d","com,ma",NULL}'`]],
  ["dn", "posnum", ["12.50", "'NaN'", "0"]],
  ["dn2", "posnum2", ["1e-5"]],
  ["dtz", "utc_time", ["'2024-05-01 12:00:00+03'", "'infinity'"]],
  ["dby", "blob", ["'\\xdeadbeef'"]],
  ["dta", "tags", ["'{a,NULL,\"b c\"}'"]],
  ["cp", "pair", ["ROW(1, 'x,y')", "ROW(NULL, NULL)", "ROW(2, 'quote\"d (paren)')"]],
  ["cpa", "pair[]", ["ARRAY[ROW(1, 'x')::pair, NULL, ROW(2, 'a b')::pair]"]],
  ["r", "int4range", ["'[1,5)'", "'empty'", "'(,3]'"]],
  ["tr", "tstzrange", ["'[2024-01-01 00:00:00+00,infinity)'"]],
  ["ra", "int4range[]", ["'{\"[1,5)\",empty}'"]],
  ["mr", "int4multirange", ["'{[1,3),[5,7)}'"]],
];

const ROWS = Math.max(...COLUMNS.map(([, , v]) => v.length)) + 1; // last row: all NULL

/** Server defaults unlike every session setting sync makes. */
const AWKWARD_PG_DEFAULTS = {
  timezone: "'Asia/Kathmandu'",
  datestyle: "'SQL, DMY'",
  intervalstyle: "'sql_standard'",
  bytea_output: "'escape'",
};

test("valueRenderer agrees with PostgreSQL's JSON for every type", opts, async () => {
  const pg = await startPostgres({ conf: AWKWARD_PG_DEFAULTS });
  let conn: PgConn | undefined;
  try {
    await pg.psql(`
      ${TYPES}
      CREATE TABLE v (id int PRIMARY KEY, ${COLUMNS.map(([c, t]) => `${c} ${t}`).join(", ")});
    `);
    const inserts: string[] = [];
    for (let r = 0; r < ROWS; r++) {
      const vals = COLUMNS.map(([, , v]) => v[r] ?? "NULL");
      inserts.push(`INSERT INTO v VALUES (${r}, ${vals.join(", ")});`);
    }
    await pg.psql(inserts.join("\n"));

    const sql = pg.connect();
    const cols = await sql<{ name: string; oid: number }[]>`
      SELECT attname AS name, atttypid::int AS oid FROM pg_attribute
      WHERE attrelid = 'v'::regclass AND attnum > 0 ORDER BY attnum`;

    // Type lookup: built-ins, then the catalogue (as the driver does), following references.
    const types = new Map<number, PgType>(BUILTIN_TYPES);
    let want = [...new Set(cols.map((c) => c.oid))].filter((o) => !types.has(o));
    while (want.length) {
      const rows = await sql.unsafe(typeQuery(want));
      const next: number[] = [];
      for (const r of rows) {
        const t: PgType = {
          oid: Number(r.oid),
          name: r.name,
          typtype: r.typtype,
          category: r.category,
          elem: Number(r.elem),
          base: Number(r.base),
          delim: r.delim,
        };
        types.set(t.oid, t);
        for (const ref of [t.elem, t.base]) if (ref && !types.has(ref)) next.push(ref);
      }
      want = next;
    }
    for (const c of cols) assert(types.has(c.oid), `type ${c.oid} of ${c.name} not loaded`);

    // The built-in table agrees with this server's catalogue.
    const builtins = await sql.unsafe(typeQuery([...BUILTIN_TYPES.keys()]));
    assertEquals(builtins.length, BUILTIN_TYPES.size);
    for (const r of builtins) {
      const b = BUILTIN_TYPES.get(Number(r.oid))!;
      assertEquals(
        { ...b },
        {
          oid: Number(r.oid),
          name: r.name,
          typtype: r.typtype,
          category: r.category,
          elem: Number(r.elem),
          base: Number(r.base),
          delim: r.delim,
        },
      );
    }

    const renderers = cols.map((c) => valueRenderer(c.oid, (o) => types.get(o)));
    // Each value as its type's output function prints it on sync's own connection, with the
    // session settings it makes (the dump reads so; pgoutput prints with the same settings).
    conn = await PgConn.connect({
      host: "127.0.0.1",
      port: pg.port,
      user: "postgres",
      database: "postgres",
      sslMode: "disable",
    });
    const texts = (await conn.query("SELECT * FROM v ORDER BY id")).rows;
    const expected = await expectedFromPg(sql, "p", [{ schema: "public", table: "v" }]);
    assertEquals(expected.size, ROWS);

    const failures: string[] = [];
    const canonical = (s: string) => {
      try {
        return canonicalJson(s);
      } catch {
        return `(not JSON) ${s}`;
      }
    };
    for (const row of texts) {
      const id = String(row[0]);
      const exp = rowOf(expected, id);
      cols.forEach((c, i) => {
        const text = row[i];
        const got = text === null ? "null" : renderers[i](text);
        const want = exp.get(c.name);
        if (canonical(got) !== want) {
          failures.push(
            `${c.name} row ${id}: text ${
              JSON.stringify(text)
            }\n  renderer ${got}\n  checker  ${want}`,
          );
        }
      });
    }
    assertEquals(failures, []);

    // Spot checks that the comparison is about the design's forms, not just agreement.
    const row0 = rowOf(expected, "0");
    const row1 = rowOf(expected, "1");
    const row3 = rowOf(expected, "3");
    assertEquals(row0.get("o"), "0");
    assertEquals(row0.get("f4"), '"NaN"');
    assertEquals(row3.get("f4"), "-0");
    assertEquals(row0.get("by"), '""');
    assertEquals(row1.get("by"), '"AP8Q"');
    assertEquals(row0.get("b"), "true");
    assertEquals(row0.get("ts"), '"2024-05-01T12:00:00.5"');
    assertEquals(row0.get("tstz"), '"2024-05-01T10:00:00.123Z"');
    assertEquals(row3.get("tstz"), '"0044-03-15T10:00:00Z BC"');
    assertEquals(row0.get("jb"), '{"a":[1,2.50,"x y"],"b":1000}');
    assertEquals(row0.get("ia"), "[1,null,3]");
    assertEquals(row3.get("ia"), "[[1,2],[3,4]]");
    assertEquals(row1.get("ia"), "[]");
    assertEquals(row0.get("bya"), '["AQI=",null,""]');
    assertEquals(rowOf(expected, "2").get("bya"), '[["AQ=="],["/w=="]]');
    assertEquals(
      row0.get("tza"),
      '["2024-01-01T00:00:00Z","infinity",null,"2024-01-01T00:00:00.25Z"]',
    );
    assertEquals(row0.get("cpa"), '["(1,x)",null,"(2,\\"a b\\")"]');
    assertEquals(row0.get("dtz"), '"2024-05-01T09:00:00Z"');
    assertEquals(row0.get("dn"), "12.50");
    assertEquals(row0.get("e"), '"happy"');
    assertEquals(row0.get("r"), '"[1,5)"');
    const last = rowOf(expected, String(ROWS - 1));
    assertEquals([...last.entries()].filter(([c, v]) => c !== "id" && v !== "null"), []);
  } finally {
    conn?.close();
    await pg.close();
  }
});

/** The checker's row `id` of table v, column → canonical JSON. */
function rowOf(expected: Map<string, string>, id: string): Map<string, string> {
  return jsonMembers(expected.get(expectedKey("p", "public", "v", "public", [id]))!);
}

test("unknown types render as text; arrays honour the delimiter", () => {
  const none = () => undefined;
  assertEquals(valueRenderer(99999, none)("x,y"), '"x,y"');
  assertEquals(
    renderArray("{(1,2),(3,4);(5,6),(7,8)}", ";", jsonString),
    '["(1,2),(3,4)","(5,6),(7,8)"]',
  );
  assertEquals(
    renderArray('{{"a\\\\b",NULL},{"",c}}', ",", jsonString),
    '[["a\\\\b",null],["","c"]]',
  );
  const lookup = (o: number) => BUILTIN_TYPES.get(o);
  assertEquals(valueRenderer(1000, lookup)("{t,f,NULL}"), "[true,false,null]");
  assertEquals(
    valueRenderer(1185, lookup)('{"2024-01-01 00:00:00+00",-infinity}'),
    '["2024-01-01T00:00:00Z","-infinity"]',
  );
  assertEquals(valueRenderer(1001, lookup)('{"\\\\x0102"}'), '["AQI="]');
});
