/** `sync snapshot TABLE...`: ask the running sync (any host, `--ha` too) to read tables again. */
import type { RunSettings as Settings } from "../config/typed.ts";
import type { SnapshotProgress } from "../core/snapshot_types.ts";
import type { EtcdClient } from "../etcd/client.ts";
import { REQUEST_POLL_MS } from "../service/snapshots.ts";
import { buildParts } from "./run.ts";
import { setupLogging } from "./logging.ts";

/** How long to wait for a running sync to take the request: a few of its polls. */
const TAKE_WAIT_MS = REQUEST_POLL_MS * 2.5;

export async function runSnapshot(s: Settings, tables: string[]): Promise<number> {
  const log = await setupLogging("error", s.logFormat);
  const parts = await buildParts(s, log);
  try {
    const state = await parts.sink.readState();
    if (!state) {
      console.error(
        `sync: no state under ${parts.sink.stateKey}: sync has not run for this source yet ` +
          "(its first start reads every table)",
      );
      return 2;
    }
    const known = Object.keys(state.tables ?? {}).sort();
    const unknown = tables.filter((t) => !known.includes(t));
    if (unknown.length) {
      console.error(
        `sync: not replicated by this source: ${unknown.join(", ")} (name tables as in ` +
          `keys; replicated: ${known.join(", ") || "none"})`,
      );
      return 2;
    }
    // A key of its own: a second request never replaces one no sync has taken yet.
    const id = `${new Date().toISOString()}-${crypto.randomUUID().slice(0, 8)}`;
    const key = parts.sink.keys.requestKey(id);
    await parts.client.put(key, JSON.stringify({ tables, requested: new Date().toISOString() }));
    console.log(`snapshot of ${tables.join(", ")} requested (${key})`);
    if (!(await taken(parts.client, key))) {
      console.log(
        `no running sync took it within ${TAKE_WAIT_MS / 1000} s: the request waits in etcd ` +
          "for the next start (or for a running sync's dump to end)",
      );
      return 0;
    }
    const progress = (await parts.sink.readState())?.snapshots ?? {};
    console.log(`the running sync took it: ${describe(tables, id, progress)}`);
    return 0;
  } finally {
    parts.client.close();
  }
}

/** Whether a sync took the request (deleted its key) within `TAKE_WAIT_MS`. */
async function taken(client: EtcdClient, key: string): Promise<boolean> {
  const until = Date.now() + TAKE_WAIT_MS;
  for (;;) {
    if (!(await client.range(key)).kvs.length) return true;
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Each table's snapshot as the state recorded it when the request was taken. */
function describe(tables: string[], id: string, progress: SnapshotProgress): string {
  const parts = tables.map((t) => {
    const s = progress[t];
    if (s?.state === "held") return `${t} held (${s.why}): not read until its identity is fixed`;
    if (!s?.requests?.includes(id)) return `${t} not started (see sync's log)`;
    if (s.state === "done") return `${t} done (${s.rows} rows)`;
    return `${t} running (${s.rows} rows read)`;
  });
  return parts.join(", ") + "; `sync status` shows the progress";
}
