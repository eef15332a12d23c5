/**
 * The single-file build (`deno bundle`, the stand-in for `deno compile` here) runs from an
 * empty directory with an empty DENO_DIR against real servers: nothing else is needed.
 */
import { test } from "../testing/deadline.ts";
import { assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { run, spawn } from "../testing/process.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { PERMISSIONS, RUNTIME_FLAGS } from "../testing/sync.ts";

const ROOT = new URL("../", import.meta.url).pathname;

test("bundle: one file, empty dir, empty DENO_DIR, real servers", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "sync-bundle-" });
  const denoDir = await Deno.makeTempDir({ prefix: "sync-denodir-" });
  const etcd = await startEtcd();
  const pg = await startPostgres();
  try {
    await run(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform", "deno", "-o", `${dir}/sync.js`, "src/cli/main.ts"],
      cwd: ROOT,
    });
    const env = { DENO_DIR: denoDir, NO_COLOR: "1" };
    const v = await run(Deno.execPath(), {
      args: ["run", "--cached-only", ...PERMISSIONS, ...RUNTIME_FLAGS, "sync.js", "--version"],
      cwd: dir,
      env,
    });
    assertMatch(v.trim(), /^\d+\.\d+\.\d+$/);
    await pg.sql`CREATE TABLE t (id int PRIMARY KEY, v jsonb)`;
    await pg.sql`INSERT INTO t SELECT g, jsonb_build_object('g', g) FROM generate_series(1, 50) g`;
    const sync = spawn(Deno.execPath(), {
      args: [
        "run",
        "--cached-only",
        ...PERMISSIONS,
        ...RUNTIME_FLAGS,
        "sync.js",
        "--driver=pgx",
        `--db-url=${pg.url}`,
        `--etcd-endpoints=${etcd.endpoint}`,
        "--etcd-prefix=/b",
      ],
      cwd: dir,
      env,
    });
    try {
      const expected = () => expectedFromPg(pg.sql, "/b");
      await pg.sql`UPDATE t SET v = '{"changed": true}' WHERE id = 7`;
      await assertConverges(etcd.endpoint, "/b/", expected, 60_000).catch((e) => {
        throw new Error(`${e.message}\n${sync.output()}`);
      });
      // The bundle brought nothing with it: the directory holds only the file itself.
      const entries = [...Deno.readDirSync(dir)].map((e) => e.name);
      assertEquals(entries, ["sync.js"]);
    } finally {
      await sync.stop();
    }
  } finally {
    await pg.close();
    await etcd.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.remove(denoDir, { recursive: true }).catch(() => {});
  }
});
