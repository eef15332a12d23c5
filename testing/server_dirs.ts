/**
 * Where the harness's servers keep their files. PostgreSQL and Patroni run as `postgres`
 * when we are root, and that user must be able to enter every folder on the way to their
 * binaries, data, sockets and configuration: so never the checkout (it may sit in a mode-700
 * home folder) nor a private $TMPDIR, but a folder under the system's temp dir.
 */
import { run } from "./process.ts";

/** The user the PostgreSQL servers (Debian's, embedded, Patroni) run as when we are root. */
export const SERVER_USER = "postgres";

/** True when every folder from `/` down to `path` lets other users enter it. */
function othersCanEnter(path: string): boolean {
  let at = "";
  for (const part of ["", ...path.split("/").filter(Boolean)]) {
    at += `${part}/`;
    try {
      const st = Deno.statSync(at);
      if (!st.isDirectory || ((st.mode ?? 0) & 0o001) === 0) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** $TMPDIR when every user can enter it (as /dev/shm for the benchmarks), else /tmp. */
export function serverRoot(): string {
  const tmp = Deno.env.get("TMPDIR")?.replace(/\/+$/, "");
  return tmp && othersCanEnter(tmp) ? tmp : "/tmp";
}

/**
 * A fresh folder for one server, owned by `user` when given and we are root. Its mode is
 * 700: only its owner (the server) needs to enter it.
 */
export async function serverDir(prefix: string, user?: string): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: serverRoot(), prefix: `sync-test-${prefix}-` });
  if (user && Deno.uid() === 0) await run("chown", { args: [user, dir] });
  return dir;
}

/**
 * `<server root>/sync-test-cache-<uid>/<name>`, mode 755 so every server user can read it,
 * kept across runs. The top folder sits in a world-writable place: one we do not own, or
 * that others may write to, is refused rather than trusted.
 */
export async function cacheDir(name: string): Promise<string> {
  const top = `${serverRoot()}/sync-test-cache-${Deno.uid()}`;
  await Deno.mkdir(top, { mode: 0o755 }).catch((e) => {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  });
  const st = await Deno.lstat(top);
  if (!st.isDirectory || st.uid !== Deno.uid() || ((st.mode ?? 0) & 0o022) !== 0) {
    throw new Error(`${top} is not a folder only this user can write to: remove it`);
  }
  await Deno.chmod(top, 0o755);
  const dir = `${top}/${name}`;
  await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
  await Deno.chmod(dir, 0o755);
  return dir;
}
