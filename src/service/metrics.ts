/** Prometheus text exposition of the service's `Status`. */
import type { Status } from "./status.ts";

const PHASES = ["starting", "standby", "dump", "sync", "retrying", "stopped"] as const;

function esc(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Adds one metric family: name, type, help, and its rows as (labels, value). */
type Metric = (name: string, type: string, help: string, rows: [string, number][]) => void;

/** Online snapshots, once one ran (like the last error: absent until then). */
function snapshots(s: Status, metric: Metric, now: Date): void {
  if (!s.snapshotTimes.size && !s.snapshotChunks.size && !s.snapshotsDone.size) return;
  const perTable = (m: Map<string, number>) =>
    [...m].map(([t, n]) => [`{table="${esc(t)}"}`, n] as [string, number]);
  metric(
    "sync_snapshot_rows_total",
    "counter",
    "Rows read by online snapshots, by table.",
    perTable(s.snapshotRows),
  );
  metric(
    "sync_snapshot_chunks_total",
    "counter",
    "Chunks written by online snapshots, by table.",
    perTable(s.snapshotChunks),
  );
  metric(
    "sync_snapshot_writes_total",
    "counter",
    "Keys online snapshots wrote or removed (rows that differed from etcd), by table.",
    perTable(s.snapshotWritten),
  );
  metric(
    "sync_snapshots_done_total",
    "counter",
    "Online snapshots finished, by table.",
    perTable(s.snapshotsDone),
  );
  // A gauge, not a counter: it answers "how long has this one been reading" (an alert on a
  // snapshot that takes too long), which a counter of seconds only answers with a rate.
  metric(
    "sync_snapshot_seconds",
    "gauge",
    "Seconds the table's online snapshot has been reading, or its last one read.",
    perTable(s.snapshotSeconds(now.getTime())),
  );
}

export function renderMetrics(s: Status, now = new Date()): string {
  const out: string[] = [];
  const metric: Metric = (name, type, help, rows) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    // A histogram's rows carry their suffix (`_bucket{...}`, `_sum`, `_count`) as "labels".
    for (const [labels, v] of rows) out.push(`${name}${labels} ${v}`);
  };
  work(s, metric);
  snapshots(s, metric, now);
  health(s, metric, now);
  return out.join("\n") + "\n";
}

/** What the service is doing and what it has replicated. */
function work(s: Status, metric: Metric): void {
  metric("sync_info", "gauge", "Always 1; the labels say what runs.", [[
    `{version="${esc(s.about.version ?? "")}",driver="${esc(s.about.driver ?? "")}"}`,
    1,
  ]]);
  metric(
    "sync_phase",
    "gauge",
    "1 for the phase the service is in.",
    PHASES.map((p) => [`{phase="${p}"}`, s.phase === p ? 1 : 0]),
  );
  metric(
    "sync_dump_rows_total",
    "counter",
    "Rows written by dumps, by table.",
    [...s.rowsDumped].map(([t, n]) => [`{table="${esc(t)}"}`, n]),
  );
  metric(
    "sync_dump_rows_estimated",
    "gauge",
    "Rows each table holds per the catalogue, for dump progress.",
    [...s.rowsEstimated].map(([t, n]) => [`{table="${esc(t)}"}`, n]),
  );
  metric(
    "sync_changes_total",
    "counter",
    "Streamed changes applied to etcd, by table and kind.",
    [...s.changes].map(([k, n]) => {
      const [table, op] = k.split("\t");
      return [`{table="${esc(table)}",op="${op}"}`, n];
    }),
  );
  metric("sync_transactions_total", "counter", "Source transactions applied.", [[
    "",
    s.transactions,
  ]]);
}

/** etcd's latency, skipped rows, retries, lag and the last error. */
function health(s: Status, metric: Metric, now: Date): void {
  metric("sync_etcd_txns_total", "counter", "etcd transactions committed.", [["", s.etcdTxns]]);
  metric(
    "sync_etcd_retries_total",
    "counter",
    "etcd requests the client retried, by reason.",
    [...s.etcdRetries].map(([r, n]) => [`{reason="${esc(r)}"}`, n]),
  );
  const h = s.etcdTxnSeconds;
  let cumulative = 0;
  metric(
    "sync_etcd_txn_duration_seconds",
    "histogram",
    "Latency of committed etcd transactions.",
    [
      ...h.bounds.map((b, i): [string, number] => {
        cumulative += h.counts[i];
        return [`_bucket{le="${b}"}`, cumulative];
      }),
      [`_bucket{le="+Inf"}`, h.count],
      ["_sum", h.sum],
      ["_count", h.count],
    ],
  );
  metric("sync_oversize_rows_skipped_total", "counter", "Rows too large for etcd, skipped.", [[
    "",
    s.oversizeSkipped,
  ]]);
  metric(
    "sync_reconnects_total",
    "counter",
    "Retries of the source or etcd, by reason.",
    [...s.reconnects].map(([r, n]) => [`{reason="${esc(r)}"}`, n]),
  );
  metric("sync_lag_seconds", "gauge", "Source commit to etcd commit delay.", [[
    "",
    s.lagSeconds(now),
  ]]);
  if (s.lagBytes !== undefined) {
    metric(
      "sync_lag_bytes",
      "gauge",
      "Source log bytes not yet confirmed (WAL or binlog), polled while streaming.",
      [["", s.lagBytes]],
    );
  }
  metric("sync_backlog_changes", "gauge", "Changes read from the source, not yet in etcd.", [[
    "",
    s.backlog,
  ]]);
  if (s.lastError) {
    metric("sync_last_error_timestamp_seconds", "gauge", "Time of the last error.", [[
      "",
      s.lastError.time.getTime() / 1000,
    ]]);
  }
}
