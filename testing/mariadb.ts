/**
 * A throwaway MariaDB (Debian's `mariadb-server`) on a free loopback port, with the binlog
 * in ROW format and full row images, stopped by PID (also when startup fails).
 */
import mysql from "mysql2/promise";
import { freePort, run, spawn, type Spawned, waitFor } from "./process.ts";
import { serverDir } from "./server_dirs.ts";

export interface MariaServer {
  readonly port: number;
  /** Root URL with password, no database: `mysql://root:pw@127.0.0.1:port/`. */
  readonly url: string;
  readonly password: string;
  readonly dataDir: string;
  /** The Unix socket (root can log in there with the password). */
  readonly socket: string;
  readonly proc: Spawned;
  /** Run SQL (one or more statements) as root; rows of the last result set. */
  // deno-lint-ignore no-explicit-any
  query(sql: string): Promise<any[]>;
  /** Stop (SIGKILL when `kill`, else SIGTERM then SIGKILL), keep the data dir. */
  stop(kill?: boolean): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface MariaOptions {
  /** Extra mariadbd options (`--key=value`; "" for a bare `--key`). */
  conf?: Record<string, string | number>;
  /** Password of root (default `root-pw`). */
  rootPassword?: string;
  /** TLS: PEM certificate, key and CA the server uses (written to the temp dir). */
  tls?: { cert: string; key: string; ca: string };
}

export async function startMariadb(opts: MariaOptions = {}): Promise<MariaServer> {
  const dir = await serverDir("mariadb");
  const dataDir = `${dir}/data`;
  const socket = `${dir}/sock`;
  const port = freePort();
  const password = opts.rootPassword ?? "root-pw";
  const sqlPw = password.replaceAll("\\", "\\\\").replaceAll("'", "''");
  // Its own temporary directory: servers sharing /tmp were seen to lose their internal
  // temporary tables ("Error on delete of '/tmp/#sql-temptable-...'"), also while installing.
  await Deno.mkdir(`${dir}/tmp`);
  const env = { TMPDIR: `${dir}/tmp` };
  try {
    await run("mariadb-install-db", {
      env,
      args: [
        "--no-defaults",
        "--user=root",
        `--datadir=${dataDir}`,
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
      ],
    });
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  const tlsConf: Record<string, string> = {};
  if (opts.tls) {
    await Deno.writeTextFile(`${dir}/server.pem`, opts.tls.cert);
    await Deno.writeTextFile(`${dir}/server.key`, opts.tls.key, { mode: 0o600 });
    await Deno.writeTextFile(`${dir}/ca.pem`, opts.tls.ca);
    tlsConf["ssl-cert"] = `${dir}/server.pem`;
    tlsConf["ssl-key"] = `${dir}/server.key`;
    tlsConf["ssl-ca"] = `${dir}/ca.pem`;
  }
  const conf: Record<string, string | number> = {
    "bind-address": "127.0.0.1",
    port,
    socket,
    "pid-file": `${dir}/pid`,
    "log-error": `${dir}/error.log`,
    tmpdir: env.TMPDIR,
    "log-bin": `${dataDir}/bin`,
    "binlog-format": "ROW",
    "binlog-row-image": "FULL",
    "binlog-row-metadata": "FULL",
    "server-id": 1,
    "binlog-checksum": "CRC32",
    "default-time-zone": "+00:00",
    "character-set-server": "utf8mb4",
    "collation-server": "utf8mb4_general_ci",
    "skip-name-resolve": "",
    "innodb-buffer-pool-size": "32M",
    "innodb-log-file-size": "16M",
    "skip-innodb-adaptive-hash-index": "",
    "innodb-flush-log-at-trx-commit": 0,
    "sync-binlog": 0,
    "performance-schema": "OFF",
    ...tlsConf,
    ...opts.conf,
  };
  const args = [
    "--no-defaults",
    "--user=root",
    `--datadir=${dataDir}`,
    ...Object.entries(conf).map(([k, v]) => (v === "" ? `--${k}` : `--${k}=${v}`)),
  ];
  const errorLog = () => {
    try {
      return Deno.readTextFileSync(`${dir}/error.log`).split("\n").slice(-20).join("\n");
    } catch {
      return "";
    }
  };
  const cli = (sql: string, withPw: boolean) =>
    run("mariadb", {
      args: ["--no-defaults", "-S", socket, "-uroot", "-e", sql],
      env: withPw ? { MYSQL_PWD: password } : {},
    });
  let first = true;
  const boot = async () => {
    const proc = spawn("mariadbd", { args, env });
    try {
      await waitFor(
        "MariaDB to accept connections",
        async () => {
          await cli("SELECT 1", !first);
          return true;
        },
        60_000,
        () => proc.output() + "\n" + errorLog(),
      );
      if (first) {
        await cli(
          `CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
          ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '${sqlPw}';
          GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
          CREATE USER IF NOT EXISTS 'root'@'%';
          ALTER USER 'root'@'%' IDENTIFIED BY '${sqlPw}';
          GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;
          ALTER USER 'root'@'localhost' IDENTIFIED BY '${sqlPw}';
          FLUSH PRIVILEGES;`,
          false,
        );
        first = false;
      }
    } catch (e) {
      await proc.stop(5_000);
      throw e;
    }
    return proc;
  };
  let proc: Spawned;
  try {
    proc = await boot();
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  let pool: mysql.Pool | undefined;
  const getPool = () =>
    pool ??= mysql.createPool({
      host: "127.0.0.1",
      port,
      user: "root",
      password,
      multipleStatements: true,
      connectionLimit: 2,
      timezone: "Z",
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      connectTimeout: 10_000,
    });
  const endPool = async () => {
    const p = pool;
    pool = undefined;
    await p?.end().catch(() => {});
  };
  return {
    port,
    url: `mysql://root:${encodeURIComponent(password)}@127.0.0.1:${port}/`,
    password,
    dataDir,
    socket,
    get proc() {
      return proc;
    },
    async query(sql: string) {
      // A deadline per query: a frozen server fails it instead of holding the test.
      const [rows] = await getPool().query({ sql, timeout: 300_000 });
      if (Array.isArray(rows)) {
        const last = rows.length && Array.isArray(rows[rows.length - 1]) ? rows.at(-1) : rows;
        // deno-lint-ignore no-explicit-any
        return (Array.isArray(last) ? last : []) as any[];
      }
      return [];
    },
    async stop(kill = false) {
      await endPool();
      if (kill) {
        proc.signal("SIGKILL");
        await proc.exited;
      } else await proc.stop();
    },
    async restart() {
      proc = await boot();
    },
    async close() {
      await endPool();
      await proc.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
