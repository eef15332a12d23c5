/**
 * The suite from a checkout the server users cannot enter (issue 19): the repository cloned
 * into a mode-700 folder, as in root's home, with $TMPDIR a mode-700 folder too; from there
 * the clone's own harness starts one server of each kind the suite uses
 * (testing/every_server.ts). Passes only when all start, and none keeps its files
 * inside the private folder.
 */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals } from "../testing/assert.ts";
import { run } from "../testing/process.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
// Past the run's own 10-minute guard below.
const opts = { sanitizeOps: false, sanitizeResources: false, deadlineMs: 11 * 60_000 };

/**
 * A clone of this repository, then the working tree's files over it (tracked and new ones),
 * so the harness under test is the one the rest of the suite runs.
 */
async function cloneInto(dest: string): Promise<void> {
  await run("git", { args: ["clone", "--quiet", "--no-hardlinks", ROOT, dest] });
  const list = await run("git", {
    args: ["-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
  });
  for (const f of list.split("\0").filter(Boolean)) {
    const from = `${ROOT}/${f}`;
    if (!(await Deno.stat(from).then((s) => s.isFile, () => false))) continue; // deleted
    await Deno.mkdir(`${dest}/${f}`.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.copyFile(from, `${dest}/${f}`);
  }
}

test("every kind of server starts from a clone in a mode-700 folder", opts, async () => {
  const home = await Deno.makeTempDir({ prefix: "sync-private-home-" });
  try {
    assertEquals((await Deno.stat(home)).mode! & 0o777, 0o700);
    const clone = `${home}/sync`;
    await cloneInto(clone);
    const tmp = `${home}/tmp`;
    await Deno.mkdir(tmp, { mode: 0o700 });
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "testing/every_server.ts"],
      cwd: clone,
      env: { NO_COLOR: "1", TMPDIR: tmp },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Only a hung run is stopped (each server start has its own deadline inside).
    const guard = setTimeout(() => child.kill("SIGTERM"), 10 * 60_000);
    const out = await child.output();
    clearTimeout(guard);
    const stdout = new TextDecoder().decode(out.stdout);
    console.log(stdout.trim());
    const why = `${stdout}\n--- stderr:\n${
      new TextDecoder().decode(out.stderr).split("\n").slice(-80).join("\n")
    }`;
    const folders = new Map(
      [...stdout.matchAll(/^started (\S+) (\S+)/gm)].map((m) => [m[1], m[2]]),
    );
    for (const kind of ["etcd", "postgres", "mariadb", "patroni"]) {
      assert(folders.has(kind), `${kind} did not start:\n${why}`);
    }
    assert([...folders.keys()].some((k) => /^embedded-postgres-\d+$/.test(k)), why);
    for (const [kind, dir] of folders) {
      assert(dir.startsWith("/") && !dir.startsWith(`${home}/`), `${kind} used ${dir}:\n${why}`);
    }
    assertEquals(out.code, 0, why);
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});
