/** `sync check`, `sync status` and `sync drop`. */
import type { RunSettings as Settings } from "../config/typed.ts";
import { type CheckResult, ConfigError, type Inspection, type SavedState } from "../core/source.ts";
import { createSource } from "../service/drivers.ts";
import { buildParts } from "./run.ts";
import { setupLogging } from "./logging.ts";
import { normalizePrefix } from "../core/keys.ts";
import { EtcdError, prefixEnd } from "../etcd/client.ts";
import { nameSettings, setting } from "../core/errors.ts";
import { settingName } from "../config/typed.ts";

/** Settings named in low layers' messages, as the user gave them (`--db-url`). */
const named = (s: string) => nameSettings(s, settingName);

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/** etcd's side of the preflight: reachable, authenticated, writable under the prefix. */
async function checkEtcd(s: Settings, parts: Awaited<ReturnType<typeof buildParts>>) {
  const out: CheckResult[] = [];
  const endpoints = s.etcdEndpoints.join(",");
  const authOn = s.etcdUsername !== undefined;
  const stateKey = parts.sink.stateKey;
  try {
    // Read the state key (a user may be allowed only its prefixes, not the whole key space).
    await parts.client.range(stateKey, { countOnly: true });
    out.push({ name: "etcd reachable", ok: true, detail: parts.client.endpoint });
    out.push({
      name: "etcd auth",
      ok: true,
      detail: authOn ? `logged in as ${s.etcdUsername}` : "no credentials given (auth off)",
    });
  } catch (e) {
    // The client turns etcd's refusals into ConfigErrors that say what to change, coded.
    const code = e instanceof ConfigError ? e.code : undefined;
    const authFailed = (e instanceof EtcdError && e.authFailed) || code === "auth";
    const denied = (e instanceof EtcdError && e.permissionDenied) || code === "permission";
    if (e instanceof EtcdError || authFailed || denied) {
      // etcd answered: it is reachable, and the refusal is about who we are.
      out.push({ name: "etcd reachable", ok: true, detail: parts.client.endpoint });
      if (authFailed) {
        out.push({
          name: "etcd auth",
          ok: false,
          detail: firstLine(e),
          fix: authOn
            ? `check ${setting("etcdUsername")} and ${setting("etcdPassword")}`
            : `etcd has auth enabled: give ${setting("etcdUsername")} and ` +
              setting("etcdPassword"),
        });
      } else if (denied) {
        out.push({ name: "etcd auth", ok: true, detail: `logged in as ${s.etcdUsername}` });
        out.push({
          name: "etcd writable under the prefix",
          ok: false,
          detail: `cannot read ${stateKey}: ${firstLine(e)}`,
          fix: "grant the etcd user's role readwrite on the prefix and on the state prefix",
        });
      } else out.push({ name: "etcd auth", ok: false, detail: firstLine(e) });
      return out;
    }
    out.push({
      name: "etcd reachable",
      ok: false,
      detail: firstLine(e),
      fix: `start etcd or fix ${setting("etcdEndpoints")} (${endpoints})`,
    });
    return out;
  }
  // A probe under each prefix sync writes: the data prefix and the state key's.
  const probes = [
    `${normalizePrefix(s.etcdPrefix)}/.sync-check`,
    `${stateKey}.sync-check`,
  ];
  try {
    for (const probe of probes) {
      await parts.client.put(probe, "1");
      await parts.client.deleteRange(probe);
    }
    out.push({ name: "etcd writable under the prefix", ok: true, detail: probes.join(", ") });
  } catch (e) {
    out.push({
      name: "etcd writable under the prefix",
      ok: false,
      detail: firstLine(e),
      fix: "grant the etcd user's role readwrite on the prefix and on the state prefix",
    });
  }
  return out;
}

/**
 * The drivers report one "database reachable" line; a server that answered but refused the
 * login is reachable, and the fix is the credentials, so that gets its own line.
 */
export function splitCredentials(results: CheckResult[]): CheckResult[] {
  const i = results.findIndex((r) => r.name === "database reachable");
  if (i < 0) return results;
  const r = results[i];
  const out = [...results];
  if (r.ok) {
    out.splice(i + 1, 0, { name: "credentials", ok: true, detail: "login accepted" });
  } else if (r.code === "auth") {
    out.splice(i, 1, { name: "database reachable", ok: true, detail: "the server answered" }, {
      name: "credentials",
      ok: false,
      detail: r.detail,
      fix: `check the user and password in ${setting("dbUrl")} (and pg_hba.conf for PostgreSQL)`,
    });
  }
  return out;
}

export async function runCheck(s: Settings): Promise<number> {
  const log = await setupLogging("error", s.logFormat);
  const parts = await buildParts(s, log);
  const results: CheckResult[] = [];
  try {
    const factory = createSource(parts.driver, parts.source);
    if (factory.check) {
      try {
        results.push(...splitCredentials(await factory.check()));
      } catch (e) {
        results.push({ name: "database", ok: false, detail: firstLine(e) });
      }
    }
    results.push(...await checkEtcd(s, parts));
  } finally {
    parts.client.close();
  }
  const w = Math.max(...results.map((r) => r.name.length));
  for (const r of results) {
    console.log(named(
      `${r.ok ? "PASS" : "FAIL"}  ${r.name.padEnd(w)}  ${r.detail}${
        !r.ok && r.fix ? `\n      fix: ${r.fix}` : ""
      }`,
    ));
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(failed ? `${failed} of ${results.length} checks failed` : "all checks passed");
  return failed ? 1 : 0;
}

/** The source's side of `sync status`, or why it could not be seen. */
type SourceSide = Inspection | { error: string };

/** What the next start (or the running process) does, from the state and the source. */
function phaseOf(state: SavedState | null, source: SourceSide | undefined): string {
  if (!state) return "no state: the next start dumps";
  if (source && "error" in source) return "state saved; the source did not answer";
  if (state.position.resync) {
    return `resync pending (${state.position.resync}): the next start dumps`;
  }
  if (!source) return "stopped: the next start resumes from the state";
  // A slot that is gone cannot be in use, so this comes first, as a position ahead must.
  if (source.dumps) return `${source.dumps}: the next start dumps`;
  const s = source.streaming;
  if ("unknown" in s) {
    // Never "stopped" for what could not be seen: the user may not list the replicas.
    return `${s.unknown}; if none does, the next start resumes from the state`;
  }
  if (s.active) return `streaming (${s.evidence})`;
  return "stopped: the next start resumes from the state";
}

export async function runStatus(s: Settings, json: boolean): Promise<number> {
  const log = await setupLogging("error", s.logFormat);
  const parts = await buildParts(s, log);
  try {
    const state: SavedState | null = await parts.sink.readState();
    const factory = createSource(parts.driver, parts.source);
    let source: SourceSide | undefined;
    if (factory.inspect) {
      try {
        source = await factory.inspect(state);
      } catch (e) {
        source = { error: firstLine(e) };
      }
    }
    const out = {
      stateKey: parts.sink.stateKey,
      phase: phaseOf(state, source),
      position: state?.position ?? null,
      updatedAt: state?.updatedAt ?? null,
      dumpRevision: state?.dumpRevision ?? null,
      identity: state?.source ?? null,
      snapshots: state?.snapshots ?? null,
      source: !source ? {} : "error" in source ? source : source.details,
    };
    if (json) console.log(named(JSON.stringify(out, null, 2)));
    else {
      // One `name value` line each, the source's fields prefixed `source.`, names aligned.
      const lines: [string, unknown][] = [];
      for (const [k, v] of Object.entries(out)) {
        if (k !== "source") lines.push([k, v]);
        else {
          for (const [sk, sv] of Object.entries(v as Record<string, unknown>)) {
            lines.push([`source.${sk}`, sv]);
          }
        }
      }
      const w = Math.max(...lines.map(([k]) => k.length));
      for (const [k, v] of lines) {
        console.log(named(`${k.padEnd(w)}  ${typeof v === "object" && v ? JSON.stringify(v) : v}`));
      }
    }
    return 0;
  } finally {
    parts.client.close();
  }
}

export async function runDrop(s: Settings, yes: boolean, purge: boolean): Promise<number> {
  if (!yes) {
    if (!Deno.stdin.isTerminal()) {
      console.error("sync: drop removes the slot/publication and state; pass --yes to confirm");
      return 2;
    }
    const answer = prompt("Remove what sync created on the source and its state key? [y/N]");
    if (!/^y(es)?$/i.test(answer ?? "")) return 1;
  }
  const log = await setupLogging(s.logLevel, s.logFormat);
  const parts = await buildParts(s, log);
  try {
    const factory = createSource(parts.driver, parts.source);
    const removed = factory.drop ? await factory.drop() : [];
    for (const key of parts.sink.keys.all()) await parts.client.deleteRange(key);
    const requests = parts.sink.keys.requestsPrefix;
    await parts.client.deleteRange(requests, prefixEnd(requests));
    removed.push(`state key ${parts.sink.stateKey}`);
    if (purge) {
      const prefix = `${normalizePrefix(s.etcdPrefix)}/`;
      const n = await parts.client.deleteRange(prefix, prefixEnd(prefix));
      removed.push(`${n} replicated keys under ${prefix}`);
    }
    for (const r of removed) console.log(`removed ${r}`);
    return 0;
  } finally {
    parts.client.close();
  }
}
