/** Runs `mysqldump` at a consistent snapshot and streams its output through DumpParser. */
import { ConfigError } from "../core/source.ts";
import { type DumpItem, DumpParser } from "./dump_parser.ts";
import type { MysqlUrl } from "./url.ts";

export interface DumpOptions {
  url: MysqlUrl;
  databases: string[];
  /** `db.table` names to leave out. */
  ignoreTables?: string[];
  /** Dump only these tables of the (single) database in `databases`. */
  tables?: string[];
  signal: AbortSignal;
  /** The mysqldump binary (default `mysqldump` on PATH). */
  mysqldumpPath?: string;
  /** Same as mysqldumpPath (older name). */
  mysqldump?: string;
}

async function flavour(bin: string): Promise<{ mariadb: boolean; sourceData: boolean }> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(bin, { args: ["--help"], stdout: "piped", stderr: "null" })
      .output();
  } catch {
    throw new ConfigError(
      `${bin === "mysqldump" ? "mysqldump" : `mysqldump (${bin})`} not found: ` +
        "install the mariadb-client (Debian) or mysql-client package",
    );
  }
  const help = new TextDecoder().decode(out.stdout);
  return { mariadb: /mariadb/i.test(help), sourceData: /--source-data/.test(help) };
}

/** Items of the dump, in order: position (and GTID), then databases and their rows. */
export async function* runMysqldump(o: DumpOptions): AsyncGenerator<DumpItem> {
  const bin = o.mysqldumpPath ?? o.mysqldump ?? "mysqldump";
  const f = await flavour(bin);
  const host = o.url.hosts[0];
  const args = [
    "--no-defaults",
    `--host=${host.host}`,
    `--port=${host.port}`,
    `--user=${o.url.user}`,
    "--protocol=TCP",
    "--single-transaction",
    f.sourceData ? "--source-data=2" : "--master-data=2",
    ...(f.mariadb ? ["--gtid"] : []),
    "--hex-blob",
    "--complete-insert",
    "--no-create-info",
    "--skip-triggers",
    "--tz-utc",
    "--quick",
    "--skip-lock-tables",
    "--skip-add-locks",
    "--default-character-set=utf8mb4",
    ...(o.url.sslMode === "DISABLED" ? ["--skip-ssl"] : []),
    ...(o.url.sslCa ? [`--ssl-ca=${o.url.sslCa}`] : []),
    ...(o.ignoreTables ?? []).map((t) => `--ignore-table=${t}`),
    // With --databases mysqldump writes the USE statements; `db t1 t2` does not.
    ...(o.tables?.length ? [o.databases[0], ...o.tables] : ["--databases", ...o.databases]),
  ];
  if (o.tables?.length && o.databases.length !== 1) {
    throw new Error("runMysqldump: tables need exactly one database");
  }
  const child = new Deno.Command(bin, {
    args,
    env: { MYSQL_PWD: o.url.password },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  };
  o.signal.addEventListener("abort", kill, { once: true });
  const stderr = new Response(child.stderr).text();
  const parser = new DumpParser();
  try {
    if (o.tables?.length) yield { kind: "database", name: o.databases[0] };
    for await (const chunk of child.stdout) {
      for (const item of parser.push(chunk)) yield item;
    }
    for (const item of parser.end()) yield item;
    const status = await child.status;
    if (!status.success) {
      const last = (await stderr).trim().split("\n").filter(Boolean).at(-1) ?? "";
      const msg = `mysqldump failed (exit ${status.code}): ${last}`;
      // Missing privileges and bad credentials do not fix themselves.
      if (/Access denied|privilege/i.test(last)) {
        throw new ConfigError(`${msg} (grant RELOAD, REPLICATION CLIENT and SELECT)`);
      }
      throw new Error(msg);
    }
  } finally {
    o.signal.removeEventListener("abort", kill);
    kill();
    await child.status.catch(() => {});
  }
}
