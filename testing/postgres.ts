/**
 * A throwaway PostgreSQL (Debian's `postgresql`) on a free loopback port: `initdb` as the
 * `postgres` user into a folder of its own outside the checkout (server_dirs.ts),
 * `wal_level=logical`, stopped by PID.
 */
import postgres from "postgres";
import { freePort, run, spawn, type Spawned, waitFor } from "./process.ts";
import { SERVER_USER, serverDir } from "./server_dirs.ts";

type Sql = ReturnType<typeof postgres>;

export interface PgServer {
  readonly port: number;
  /** Superuser URL (`postgres` user, trust auth on loopback unless `auth` was given). */
  readonly url: string;
  readonly dataDir: string;
  /** A postgres.js client on the superuser URL. */
  readonly sql: Sql;
  readonly proc: Spawned;
  /** Run SQL text (may hold BEGIN/COMMIT) through psql, stopping at the first error. */
  psql(sql: string): Promise<string>;
  /** Connect as another user/database. */
  connect(opts?: { user?: string; password?: string; database?: string }): Sql;
  /** Stop (immediate shutdown when `kill`), keep the data dir. */
  stop(kill?: boolean): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface PgOptions {
  /** Extra `postgresql.conf` settings. */
  conf?: Record<string, string | number>;
  /** pg_hba method for TCP connections (default trust). */
  auth?: "trust" | "md5" | "scram-sha-256" | "password";
  /** Password for the `postgres` superuser (needed with password auth). */
  password?: string;
  /** TLS: a PEM certificate and key the server presents. */
  tls?: { cert: string; key: string };
  /**
   * Server binaries (`initdb`, `postgres`) from elsewhere, e.g. another major version; the
   * client tools (`psql`, `pg_isready`) still come from Debian's newest install.
   */
  serverBin?: string;
}

/** The newest PostgreSQL bin dir installed (or $PG_BIN). */
export function pgBin(): string {
  const env = Deno.env.get("PG_BIN");
  if (env) return env;
  const versions = [...Deno.readDirSync("/usr/lib/postgresql")]
    .map((e) => e.name)
    .filter((n) => /^\d+$/.test(n))
    .sort((a, b) => Number(a) - Number(b));
  if (!versions.length) throw new Error("PostgreSQL is not installed (apt-get install postgresql)");
  return `/usr/lib/postgresql/${versions.at(-1)}/bin`;
}

export async function startPostgres(opts: PgOptions = {}): Promise<PgServer> {
  const bin = pgBin();
  const serverBin = opts.serverBin ?? bin;
  const dir = await serverDir("pg", SERVER_USER);
  const dataDir = `${dir}/data`;
  const port = freePort();
  const pwArgs: string[] = [];
  if (opts.password) {
    await Deno.writeTextFile(`${dir}/pw`, opts.password);
    await run("chown", { args: [SERVER_USER, `${dir}/pw`] }).catch(() => {});
    pwArgs.push(`--pwfile=${dir}/pw`);
  }
  await run(`${serverBin}/initdb`, {
    args: ["-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", ...pwArgs],
    user: SERVER_USER,
    // Its own folder: the caller's (the checkout) may be one the server user cannot enter.
    cwd: dir,
  });
  const conf: Record<string, string | number> = {
    listen_addresses: "'127.0.0.1'",
    port,
    unix_socket_directories: `'${dir}'`,
    wal_level: "logical",
    max_wal_senders: 10,
    max_replication_slots: 10,
    fsync: "off",
    synchronous_commit: "off",
    full_page_writes: "off",
    shared_buffers: "32MB",
    log_min_messages: "warning",
    ...opts.conf,
  };
  if (opts.tls) {
    await Deno.writeTextFile(`${dataDir}/server.crt`, opts.tls.cert);
    await Deno.writeTextFile(`${dataDir}/server.key`, opts.tls.key, { mode: 0o600 });
    await run("chown", { args: [SERVER_USER, `${dataDir}/server.crt`, `${dataDir}/server.key`] })
      .catch(() => {});
    conf.ssl = "on";
  }
  await Deno.writeTextFile(
    `${dataDir}/postgresql.conf`,
    Object.entries(conf).map(([k, v]) => `${k} = ${v}`).join("\n") + "\n",
    { append: true },
  );
  const method = opts.auth ?? "trust";
  await Deno.writeTextFile(
    `${dataDir}/pg_hba.conf`,
    [
      "local all all trust",
      "local replication all trust",
      `host all all 127.0.0.1/32 ${method}`,
      `host replication all 127.0.0.1/32 ${method}`,
    ].join("\n") + "\n",
  );
  const pw = opts.password ? `:${encodeURIComponent(opts.password)}` : "";
  const url = `postgres://postgres${pw}@127.0.0.1:${port}/postgres`;

  const boot = async () => {
    const proc = spawn(`${serverBin}/postgres`, {
      args: ["-D", dataDir],
      user: SERVER_USER,
      cwd: dir,
    });
    await waitFor(
      "PostgreSQL to accept connections",
      async () => {
        const out = await run(`${bin}/pg_isready`, {
          args: ["-h", "127.0.0.1", "-p", String(port)],
        }).catch(() => "");
        return out.includes("accepting");
      },
      60_000,
      () => proc.output(),
    );
    return proc;
  };
  let proc = await boot();
  const clients: Sql[] = [];
  const connect = (o: { user?: string; password?: string; database?: string } = {}) => {
    const c = postgres({
      host: "127.0.0.1",
      port,
      user: o.user ?? "postgres",
      password: o.password ?? opts.password,
      database: o.database ?? "postgres",
      onnotice: () => {},
      max: 2,
      ssl: false,
      // Every wait has a deadline: connecting, and each statement (enforced by the server;
      // a frozen server is the per-test deadline's).
      connect_timeout: 10,
      idle_timeout: 60,
      connection: { statement_timeout: 300_000 },
    });
    clients.push(c);
    return c;
  };
  const sql = connect();
  const closeClients = async () => {
    await Promise.all(clients.map((c) => c.end({ timeout: 1 }).catch(() => {})));
  };
  const psql = (text: string) =>
    run(`${bin}/psql`, {
      args: [
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-f",
        "-",
      ],
      env: opts.password ? { PGPASSWORD: opts.password } : {},
      stdin: text,
    });
  return {
    port,
    url,
    dataDir,
    sql,
    psql,
    connect,
    get proc() {
      return proc;
    },
    async stop(kill = false) {
      if (kill) {
        // SIGQUIT: immediate shutdown (a crash, as far as the clients can tell).
        proc.signal("SIGQUIT");
        await proc.exited;
      } else {
        proc.signal("SIGINT"); // fast shutdown
        await proc.exited;
      }
    },
    async restart() {
      proc = await boot();
    },
    async close() {
      await closeClients();
      proc.signal("SIGINT");
      const t = setTimeout(() => proc.signal("SIGKILL"), 10_000);
      await proc.exited;
      clearTimeout(t);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
