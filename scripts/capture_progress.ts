/**
 * Run by scripts/capture-progress: real servers from the test harness, sync in a detached
 * tmux session (a real terminal, so the live progress display is drawn rather than log
 * lines), and the pane's text captured mid-dump into docs/progress.txt.
 */
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { syncCommand } from "../testing/sync.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const OUT = `${ROOT}docs/progress.txt`;
const SESSION = `sync-progress-${Deno.pid}`;

async function tmux(...args: string[]): Promise<string> {
  const out = await new Deno.Command("tmux", { args, stdout: "piped", stderr: "piped" }).output();
  const d = new TextDecoder();
  if (!out.success) throw new Error(`tmux ${args[0]} failed: ${d.decode(out.stderr)}`);
  return d.decode(out.stdout);
}

const cleanups: (() => Promise<unknown>)[] = [];
async function cleanup() {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups.length = 0;
}
Deno.addSignalListener("SIGINT", async () => {
  await cleanup();
  Deno.exit(130);
});

try {
  const etcd = await startEtcd();
  cleanups.push(() => etcd.close());
  const pg = await startPostgres();
  cleanups.push(() => pg.close());
  console.log("filling three tables (300k, 120k and 40k rows)");
  await pg.sql.unsafe(`
    CREATE TABLE orders (id int PRIMARY KEY, customer int, total numeric(12,2), note text);
    CREATE TABLE events (id bigint PRIMARY KEY, kind text, payload jsonb);
    CREATE TABLE customers (id int PRIMARY KEY, name text, email text);
    INSERT INTO orders SELECT g, g % 40000, g * 0.37, md5(g::text)
      FROM generate_series(1, 300000) g;
    INSERT INTO events SELECT g, 'kind' || g % 7, jsonb_build_object('n', g, 'h', md5(g::text))
      FROM generate_series(1, 120000) g;
    INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@example.com'
      FROM generate_series(1, 40000) g;
    ANALYZE;
  `);

  const c = syncCommand([
    "--driver=pgx",
    `--db-url=${pg.url}`,
    `--etcd-endpoints=${etcd.endpoint}`,
    "--etcd-prefix=/progress",
    "--dump-parallel=2",
  ]);
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  // A fixed-size pane, so the capture looks the same wherever it is taken.
  await tmux(
    "new-session",
    "-d",
    "-s",
    SESSION,
    "-x",
    "140",
    "-y",
    "14",
    `cd ${quote(ROOT)} && NO_COLOR=1 ${[c.cmd, ...c.args].map(quote).join(" ")}; sleep 600`,
  );
  cleanups.push(() => tmux("kill-session", "-t", SESSION));

  // Mid-dump: the biggest table part-way, the display drawn at least twice (a rate).
  let pane = "";
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`no mid-dump progress seen:\n${pane}`);
    await new Promise((r) => setTimeout(r, 200));
    pane = await tmux("capture-pane", "-p", "-t", SESSION);
    const m = /^\s+orders\s+\d+\/\d+\s+(\d+)%\s+(\d+)\/s/m.exec(pane);
    if (m && Number(m[1]) >= 35 && Number(m[1]) <= 75 && Number(m[2]) > 0) break;
  }
  const text = pane.replace(/\s+$/, "") + "\n";
  await Deno.writeTextFile(OUT, text);
  console.log(`wrote ${OUT}:\n${text}`);
  // Ctrl-C in the pane: sync stops cleanly mid-dump.
  await tmux("send-keys", "-t", SESSION, "C-c");
  const stopBy = Date.now() + 30_000;
  while (Date.now() < stopBy) {
    if (/msg=stopped/.test(await tmux("capture-pane", "-p", "-t", SESSION))) break;
    await new Promise((r) => setTimeout(r, 200));
  }
} finally {
  await cleanup();
}
