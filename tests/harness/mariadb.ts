/**
 * A throwaway MariaDB (Debian's `mariadb-server`) on a free loopback port, with the binlog
 * in ROW format and full row images, stopped by PID.
 */
import mysql from "mysql2/promise";
import { freePort, run, spawn, type Spawned, tempDir, waitFor } from "./process.ts";

export interface MariaServer {
  readonly port: number;
  /** Root URL with password, no database. */
  readonly url: string;
  readonly password: string;
  readonly dataDir: string;
  readonly proc: Spawned;
  /** Run SQL (one or more statements) as root; rows of the last result. */
  query(sql: string): Promise<Record<string, unknown>[]>;
  stop(kill?: boolean): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface MariaOptions {
  conf?: Record<string, string | number>;
}

export async function startMariadb(opts: MariaOptions = {}): Promise<MariaServer> {
  const dir = await tempDir("mariadb");
  const dataDir = `${dir}/data`;
  const port = freePort();
  const password = "root-pw";
  await run("mariadb-install-db", {
    args: [
      "--no-defaults",
      "--user=root",
      `--datadir=${dataDir}`,
      "--auth-root-authentication-method=normal",
      "--skip-test-db",
    ],
  });
  const conf: Record<string, string | number> = {
    "bind-address": "127.0.0.1",
    port,
    socket: `${dir}/sock`,
    "pid-file": `${dir}/pid`,
    "log-error": `${dir}/error.log`,
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
    "innodb-flush-log-at-trx-commit": 0,
    "sync-binlog": 0,
    "performance-schema": "OFF",
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
  let first = true;
  const boot = async () => {
    const proc = spawn("mariadbd", { args });
    await waitFor(
      "MariaDB to accept connections",
      async () => {
        await run("mariadb", {
          args: [
            "--no-defaults",
            "-S",
            `${dir}/sock`,
            "-uroot",
            ...(first ? [] : [`-p${password}`]),
            "-e",
            "SELECT 1",
          ],
        });
        return true;
      },
      60_000,
      () => proc.output() + errorLog(),
    );
    if (first) {
      first = false;
      await run("mariadb", {
        args: [
          "--no-defaults",
          "-S",
          `${dir}/sock`,
          "-uroot",
          "-e",
          `
          CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
          ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '${password}';
          GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
          ALTER USER 'root'@'localhost' IDENTIFIED BY '${password}';
          FLUSH PRIVILEGES;`,
        ],
      });
    }
    return proc;
  };
  let proc = await boot();
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
    });
  const endPool = async () => {
    const p = pool;
    pool = undefined;
    await p?.end().catch(() => {});
  };
  return {
    port,
    url: `mysql://root:${password}@127.0.0.1:${port}/`,
    password,
    dataDir,
    get proc() {
      return proc;
    },
    async query(sql: string) {
      const [rows] = await getPool().query(sql);
      if (Array.isArray(rows)) {
        const last = rows.length && Array.isArray(rows[rows.length - 1]) ? rows.at(-1) : rows;
        return (Array.isArray(last) ? last : []) as Record<string, unknown>[];
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
