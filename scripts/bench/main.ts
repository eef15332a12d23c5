/**
 * `deno task bench`: every benchmark, with ratios against a baseline from the same run, and
 * the table written to BENCHMARKS.md with the date and the machine.
 */
import { benchEtcd } from "./etcd.ts";
import { benchDecoders } from "./decoders.ts";

const lines: string[] = [];
const say = (s = "") => {
  console.log(s);
  lines.push(s);
};
say(`# Benchmarks`);
say();
say(
  `${new Date().toISOString().slice(0, 10)}, ${navigator.hardwareConcurrency} cores, ${
    Math.round(Deno.systemMemoryInfo().total / 2 ** 30)
  } GiB, Deno ${Deno.version.deno}. Ratios are against a baseline measured in the same run.`,
);
say();
say("## Decoders (bytes captured from real servers)");
say();
say("| decoder | MB/s | messages/s | UTF-8 decode of the same bytes, MB/s | ratio |");
say("|---|---:|---:|---:|---:|");
for (const r of benchDecoders()) {
  say(
    `| ${r.name} | ${r.mbPerSec.toFixed(1)} | ${Math.round(r.messagesPerSec)} | ${
      r.baselineMbPerSec.toFixed(1)
    } | ${(r.mbPerSec / r.baselineMbPerSec).toFixed(2)} |`,
  );
}
say();
say("## etcd writes");
say();
const rows = await benchEtcd();
const base = rows[0].keysPerSec;
say("| writer | keys/s | vs etcd3 gRPC serial |");
say("|---|---:|---:|");
for (const r of rows) {
  say(`| ${r.name} | ${Math.round(r.keysPerSec)} | ${(r.keysPerSec / base).toFixed(2)} |`);
}
await Deno.writeTextFile(new URL("../../BENCHMARKS.md", import.meta.url), lines.join("\n") + "\n");
