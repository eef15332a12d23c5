/** `sync check`, `sync status` and `sync drop`. */
import type { Settings } from "../config/options.ts";
import type { CheckResult, SavedState } from "../core/source.ts";
import { createSource } from "../service/drivers.ts";
import { buildParts } from "./run.ts";
import { setupLogging } from "./logging.ts";
import { normalizePrefix } from "../core/keys.ts";
import { prefixEnd } from "../etcd/client.ts";

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/** etcd's side of the preflight: reachable, authenticated, writable under the prefix. */
async function checkEtcd(s: Settings, parts: Awaited<ReturnType<typeof buildParts>>) {
  const out: CheckResult[] = [];
  const endpoints = (s["etcd-endpoints"] as string[]).join(",");
  try {
    // Read the state key (a user may be allowed only its prefixes, not the whole key space).
    await parts.client.range(parts.sink.stateKey, { countOnly: true });
    out.push({ name: "etcd reachable", ok: true, detail: parts.client.endpoint });
  } catch (e) {
    const msg = firstLine(e);
    const auth = /auth|token|user/i.test(msg);
    out.push({
      name: auth ? "etcd auth" : "etcd reachable",
      ok: false,
      detail: msg,
      fix: auth
        ? "check --etcd-username/--etcd-password (and that the user has a role)"
        : `start etcd or fix --etcd-endpoints (${endpoints})`,
    });
    return out;
  }
  const probe = `${normalizePrefix(String(s["etcd-prefix"]))}/.sync-check`;
  try {
    await parts.client.put(probe, "1");
    await parts.client.deleteRange(probe);
    out.push({ name: "etcd writable under the prefix", ok: true, detail: probe });
  } catch (e) {
    out.push({
      name: "etcd writable under the prefix",
      ok: false,
      detail: firstLine(e),
      fix: "grant the etcd user readwrite on the prefix and its state prefix",
    });
  }
  return out;
}

export async function runCheck(s: Settings): Promise<number> {
  const log = await setupLogging("error", String(s["log-format"]));
  const parts = await buildParts(s, log);
  const results: CheckResult[] = [];
  try {
    const factory = createSource(parts.driver, parts.source);
    if (factory.check) {
      try {
        results.push(...await factory.check());
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
    console.log(
      `${r.ok ? "PASS" : "FAIL"}  ${r.name.padEnd(w)}  ${r.detail}${
        !r.ok && r.fix ? `\n      fix: ${r.fix}` : ""
      }`,
    );
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(failed ? `${failed} of ${results.length} checks failed` : "all checks passed");
  return failed ? 1 : 0;
}

export async function runStatus(s: Settings, json: boolean): Promise<number> {
  const log = await setupLogging("error", String(s["log-format"]));
  const parts = await buildParts(s, log);
  try {
    const state: SavedState | null = await parts.sink.readState();
    const factory = createSource(parts.driver, parts.source);
    let source: Record<string, unknown> = {};
    if (factory.inspect) {
      try {
        source = await factory.inspect(state);
      } catch (e) {
        source = { error: firstLine(e) };
      }
    }
    const out = {
      stateKey: parts.sink.stateKey,
      phase: state ? "synced" : "no state (next start dumps)",
      position: state?.position ?? null,
      updatedAt: state?.updatedAt ?? null,
      dumpRevision: state?.dumpRevision ?? null,
      identity: state?.source ?? null,
      source,
    };
    if (json) console.log(JSON.stringify(out, null, 2));
    else {
      for (const [k, v] of Object.entries(out)) {
        if (k === "source") {
          for (const [sk, sv] of Object.entries(v as Record<string, unknown>)) {
            console.log(
              `${`source.${sk}`.padEnd(16)} ${typeof sv === "object" ? JSON.stringify(sv) : sv}`,
            );
          }
        } else console.log(`${k.padEnd(16)} ${typeof v === "object" && v ? JSON.stringify(v) : v}`);
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
  const log = await setupLogging(String(s["log-level"]), String(s["log-format"]));
  const parts = await buildParts(s, log);
  try {
    const factory = createSource(parts.driver, parts.source);
    const removed = factory.drop ? await factory.drop() : [];
    await parts.client.deleteRange(parts.sink.stateKey);
    removed.push(`state key ${parts.sink.stateKey}`);
    if (purge) {
      const prefix = `${normalizePrefix(String(s["etcd-prefix"]))}/`;
      const n = await parts.client.deleteRange(prefix, prefixEnd(prefix));
      removed.push(`${n} replicated keys under ${prefix}`);
    }
    for (const r of removed) console.log(`removed ${r}`);
    return 0;
  } finally {
    parts.client.close();
  }
}
