/** `sync run`: wire settings into the service and handle signals. */
import type { RunSettings as Settings } from "../config/typed.ts";
import { UsageError } from "../config/options.ts";
import { TableFilter } from "../core/filter.ts";
import { KeyConfig } from "../core/key_config.ts";
import { normalizePrefix } from "../core/keys.ts";
import type { SourceOptions } from "../core/source.ts";
import type { PgOptions } from "../pg/options.ts";
import type { MysqlOptions } from "../mysql/options.ts";
import { EtcdClient, type TxnCompare } from "../etcd/client.ts";
import { EtcdSink } from "../etcd/sink.ts";
import { EtcdSnapshotStore } from "../etcd/snapshot_store.ts";
import type { SnapshotSettings } from "../core/snapshot.ts";
import { createSource } from "../service/drivers.ts";
import { FatalError, runService } from "../service/run.ts";
import { Status } from "../service/status.ts";
import { serveHttp } from "../service/http.ts";
import { setupLogging } from "./logging.ts";
import { showProgress } from "./progress.ts";
import { campaign } from "../service/ha.ts";
import type { Log } from "../core/log.ts";
import { VERSION } from "../version.ts";
import { ConfigError } from "../core/source.ts";
import { parsePgUrl } from "../pg/url.ts";
import { parseMysqlUrl } from "../mysql/url.ts";
import { parseAddr } from "../service/http.ts";
import { splitDbUrl } from "../core/db_url.ts";
import { pollLagBytes } from "../service/lag.ts";

/**
 * The database named in a URL (`postgres://h1,h2/db?x` → `db`), from the URL's shape as the
 * drivers split it: the source id (and so the state key's name) never holds any part of the
 * user name or password.
 */
export function databaseOf(url: string): string {
  try {
    const path = splitDbUrl(url).path;
    return path ? decodeURIComponent(path) : "";
  } catch {
    return "";
  }
}

async function readPem(path: string | undefined, what: string): Promise<string | undefined> {
  if (!path) return undefined;
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

/**
 * Parse the URL the way the driver will, so a bad URL is one line before anything starts
 * (the drivers' parsers never put the password in their messages).
 */
function checkDbUrl(driver: string, url: string): void {
  const scheme = /^([a-z0-9+.-]+):/i.exec(url)?.[1].toLowerCase() ?? "";
  const pg = scheme === "postgres" || scheme === "postgresql";
  if (driver === "pgx" && !pg) {
    throw new UsageError(`--driver pgx needs a postgres:// --db-url, not ${scheme}://`);
  }
  if (driver === "mysql" && pg) {
    throw new UsageError(`--driver mysql needs a mysql:// --db-url, not ${scheme}://`);
  }
  try {
    if (driver === "pgx") parsePgUrl(url);
    else if (driver === "mysql") parseMysqlUrl(url);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
}

/**
 * Every etcd endpoint must be an http:// or https:// URL with a host, and without a user
 * name or password: those go in --etcd-username and --etcd-password, and an endpoint is
 * shown in logs and errors. An endpoint that could hold one is never echoed.
 */
function checkEndpoints(endpoints: string[]): void {
  if (!endpoints.length) throw new UsageError("--etcd-endpoints is empty: give at least one URL");
  for (const ep of endpoints) {
    if (ep.includes("@")) {
      throw new UsageError(
        "--etcd-endpoints must not hold a user name or password: give --etcd-username and " +
          "--etcd-password (SYNC_ETCD_PASSWORD)",
      );
    }
    let u: URL | undefined;
    try {
      u = new URL(ep);
    } catch { /* reported below */ }
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:") || !u.hostname) {
      throw new UsageError(
        `invalid value ${JSON.stringify(ep)} in --etcd-endpoints: expected http://HOST:PORT ` +
          "or https://HOST:PORT",
      );
    }
  }
}

/** The chosen driver's own options. */
function driverOptions(driver: string | undefined, s: Settings): PgOptions | MysqlOptions {
  if (driver === "mysql") return { serverId: s.serverId };
  return {
    slot: s.slot,
    publication: s.publication,
    dumpParallel: Math.max(1, s.dumpParallel),
    statusIntervalMs: s.statusInterval,
    takeOverSlot: s.ha,
    failover: s.slotFailover,
  };
}

export interface RunParts {
  sink: EtcdSink;
  client: EtcdClient;
  source: SourceOptions;
  driver: string;
  status: Status;
  /** Set while this process leads (`--ha`): every data transaction is fenced by it. */
  fence: { current?: () => TxnCompare[] };
  snapshots: SnapshotSettings;
}

/** The settings no single option can check; the driver, URL and prefixes they give. */
function checkSettings(s: Settings) {
  const driver = s.driver;
  if (!driver) throw new UsageError("missing --driver (pgx or mysql)");
  const url = s.dbUrl;
  if (!url) throw new UsageError("missing --db-url (or SYNC_DB_URL)");
  if (!/^(postgres|postgresql|mysql|mariadb):\/\//i.test(url)) {
    throw new UsageError("--db-url must start with postgres:// (pgx) or mysql:// (mysql)");
  }
  checkDbUrl(driver, url);
  checkEndpoints(s.etcdEndpoints);
  if (s.httpAddr !== undefined) {
    try {
      parseAddr(s.httpAddr);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const prefix = normalizePrefix(s.etcdPrefix ?? "/sync");
  if (!prefix) throw new UsageError("--etcd-prefix must not be empty");
  const sourceId = s.sourceId ?? `${driver}-${databaseOf(url) || "default"}`;
  const statePrefix = normalizePrefix(s.etcdStatePrefix ?? `${prefix}-state`);
  if (!statePrefix) throw new UsageError("--etcd-state-prefix must not be empty");
  if ((statePrefix + "/").startsWith(prefix + "/")) {
    throw new UsageError("--etcd-state-prefix must be outside --etcd-prefix");
  }
  return { driver, url, prefix, sourceId, statePrefix };
}

/** Build the etcd client, sink and source options from settings (shared by subcommands). */
export async function buildParts(s: Settings, log: SourceOptions["log"]): Promise<RunParts> {
  const { driver, url, prefix, sourceId, statePrefix } = checkSettings(s);
  const endpoints = s.etcdEndpoints;
  const status = new Status();
  const client = new EtcdClient({
    endpoints,
    onRetry: (reason, endpoint, message) => {
      status.count(status.etcdRetries, reason);
      log.debug("etcd retry", { reason, endpoint, message });
    },
    onEndpoints: (list) => log.info("etcd endpoints", { endpoints: list.join(",") }),
    username: s.etcdUsername,
    password: s.etcdPassword,
    caCert: await readPem(s.etcdCa, "etcd CA file"),
    cert: await readPem(s.etcdCert, "etcd certificate file"),
    key: await readPem(s.etcdKey, "etcd key file"),
    timeoutMs: s.etcdTimeout,
    transport: s.etcdTransport,
  });
  status.about = { driver, stateKey: `${statePrefix}/${sourceId}`, version: VERSION };
  const fence: { current?: () => TxnCompare[] } = {};
  const sink = new EtcdSink(client, {
    prefix,
    stateKey: `${statePrefix}/${sourceId}`,
    maxTxnOps: s.etcdMaxTxnOps,
    maxTxnBytes: s.etcdMaxTxnBytes,
    oversize: s.oversize,
    log,
    onTxn: (t) => status.observeTxn(t.seconds),
    onOversize: () => status.oversizeSkipped++,
    fence: () => fence.current?.() ?? [],
  });
  let keys: KeyConfig;
  try {
    keys = new KeyConfig(s.keys);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const source: SourceOptions = {
    url,
    filter: new TableFilter(s.tables, s.exclude),
    keys,
    log,
    onTableEstimate: (table, rows) => status.estimate(table, rows),
    driver: driverOptions(driver, s),
  };
  const snapshots = {
    store: new EtcdSnapshotStore(
      client,
      prefix,
      s.etcdMaxTxnOps,
      sink.keys.requestsPrefix,
    ),
    chunkRows: s.snapshotChunkRows,
    parallel: s.snapshotParallel,
  };
  return { sink, client, source, driver, status, fence, snapshots };
}

export async function startRun(s: Settings): Promise<number> {
  const log = await setupLogging(s.logLevel, s.logFormat);
  const parts = await buildParts(s, log);
  const factory = createSource(parts.driver, parts.source);
  const stop = new AbortController();
  const shutdownMs = s.shutdownTimeout;
  let forced: ReturnType<typeof setTimeout> | undefined;
  const onSignal = (sig: string) => () => {
    if (stop.signal.aborted) return;
    log.info("stopping", { signal: sig });
    stop.abort();
    // Whatever is not committed by then is abandoned; its position was never confirmed.
    forced = setTimeout(() => {
      log.warn("shutdown timeout reached; abandoning in-flight work", { timeout_ms: shutdownMs });
      Deno.exit(0);
    }, shutdownMs);
  };
  let http: Deno.HttpServer | undefined;
  try {
    http = s.httpAddr
      ? serveHttp({
        addr: s.httpAddr,
        status: parts.status,
        log,
        readyMaxLagMs: s.readyMaxLag,
        signal: stop.signal,
      })
      : undefined;
  } catch (e) {
    parts.client.close();
    throw new UsageError(
      `cannot serve --http-addr ${s.httpAddr}: ${(e as Error).message.split("\n")[0]}`,
    );
  }
  // Lag in bytes is only reported through /metrics: no endpoint, no polling.
  if (http) pollLagBytes(factory, parts.status, log, stop.signal);
  const sigterm = onSignal("SIGTERM");
  const sigint = onSignal("SIGINT");
  Deno.addSignalListener("SIGTERM", sigterm);
  Deno.addSignalListener("SIGINT", sigint);
  log.info("sync starting", {
    driver: parts.driver,
    etcd: s.etcdEndpoints.join(","),
    state_key: parts.sink.stateKey,
  });
  const stopProgress = showProgress(parts.status, log);
  try {
    const service = (signal: AbortSignal) =>
      runService({
        factory,
        sink: parts.sink,
        log,
        signal,
        status: parts.status,
        snapshots: parts.snapshots,
      });
    if (s.ha) await runLeader(s, parts, log, stop.signal, service);
    else await service(stop.signal);
    log.info("stopped");
    return 0;
  } catch (e) {
    if (e instanceof FatalError) {
      log.error(e.message);
      parts.status.lastError = { time: new Date(), message: e.message };
      return e.exitCode;
    }
    throw e;
  } finally {
    // Whatever ended the run ends the process: the HTTP server and the lag poll stop too
    // (they waited for a signal, so a fatal error left /healthz answering for ever).
    parts.status.phase = "stopped";
    stop.abort();
    clearTimeout(forced);
    stopProgress();
    Deno.removeSignalListener("SIGTERM", sigterm);
    Deno.removeSignalListener("SIGINT", sigint);
    parts.client.close();
    await http?.finished;
  }
}

/** `--ha`: campaign, run while leading, and campaign again when leadership is lost. */
async function runLeader(
  s: Settings,
  parts: RunParts,
  log: Log,
  stop: AbortSignal,
  service: (signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const id = s.haId ?? `${Deno.hostname()}-${Deno.pid}`;
  const name = `${parts.sink.stateKey}/leader`;
  let led = false;
  while (!stop.aborted) {
    parts.status.phase = "standby";
    let lead;
    try {
      lead = await campaign({
        client: parts.client,
        name,
        id,
        ttlSeconds: Math.max(2, Math.round((s.haTtl) / 1000)),
        log,
        signal: stop,
      });
    } catch (e) {
      if (stop.aborted) return;
      // Bad etcd credentials or permissions before this process ever led: no retry helps.
      if (e instanceof ConfigError && !led) throw new FatalError(e.message, 2);
      log.warn("campaign failed; retrying", { reason: (e as Error).message.split("\n")[0] });
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    parts.fence.current = lead.fence;
    led = true;
    try {
      await service(AbortSignal.any([stop, lead.lost]));
    } finally {
      parts.fence.current = undefined;
      await lead.resign();
    }
    if (!stop.aborted) log.warn("no longer the leader; campaigning again");
  }
}
