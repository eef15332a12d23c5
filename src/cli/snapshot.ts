/** `sync snapshot TABLE...`: ask the running sync (any host, `--ha` too) to read tables again. */
import type { RunSettings as Settings } from "../config/typed.ts";
import { buildParts } from "./run.ts";
import { setupLogging } from "./logging.ts";

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
    const request = JSON.stringify({ tables, requested: new Date().toISOString() });
    await parts.client.put(parts.sink.keys.requestKey, request);
    console.log(`snapshot of ${tables.join(", ")} requested (${parts.sink.keys.requestKey})`);
    console.log(
      "a running sync starts it within seconds (`sync status` shows its progress); " +
        "if none runs, the request waits in etcd for the next start",
    );
    return 0;
  } finally {
    parts.client.close();
  }
}
