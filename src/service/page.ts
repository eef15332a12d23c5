/**
 * The status page at `GET /`: plain HTML and a small script served by sync itself (no
 * external assets, nothing fetched but `/status.json`). It shows the phase, the position,
 * per-table dump progress and streamed changes, and draws lag and throughput of the last
 * ten minutes (the history the server keeps) on a canvas.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sync status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:20px 24px;color:#1d2330;background:#f6f7f9}
header{display:flex;align-items:baseline;gap:12px;margin-bottom:14px}
h1{font-size:20px;margin:0}
h2{font-size:15px;margin:18px 0 8px}
.muted{color:#5f6b7a}
#updated{margin-left:auto}
.cards{display:flex;gap:10px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:8px 12px;flex:1 1 0;
 min-width:90px}
.card b{display:block;font-size:18px;font-variant-numeric:tabular-nums;word-break:break-all}
.card small{color:#5f6b7a}
.wide{flex:2.5 1 0;min-width:220px}
.phase-sync{color:#137333}.phase-dump{color:#1a5fb4}
.phase-retrying,.phase-standby,.phase-starting{color:#b06000}.phase-stopped{color:#a50e0e}
.err{color:#a50e0e;margin-top:8px;min-height:1em}
.chartbox{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:6px}
canvas{display:block;width:100%;height:240px}
table{border-collapse:collapse;background:#fff;border:1px solid #dde1e7;min-width:720px}
td,th{padding:5px 12px;border-bottom:1px solid #eef0f3;text-align:left}
th{font-weight:600;color:#5f6b7a;font-size:12px;text-transform:uppercase}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;vertical-align:middle;width:160px;height:8px;border-radius:4px;
 background:#e8ebf0;margin-right:8px;overflow:hidden}
.bar i{display:block;height:100%;background:#1a5fb4}
.bar.done i{background:#137333}
</style></head><body>
<header><h1>sync</h1><span id="about" class="muted"></span>
<span id="updated" class="muted">connecting…</span></header>
<div class="cards">
 <div class="card">phase<b id="phase">…</b><small id="since"></small></div>
 <div class="card wide">position<b id="position">…</b><small id="commit"></small></div>
 <div class="card">lag<b id="lag">…</b></div>
 <div class="card">writes/s<b id="rate">…</b></div>
 <div class="card">transactions<b id="txns">…</b></div>
 <div class="card">backlog<b id="backlog">…</b></div>
 <div class="card">reconnects<b id="reconnects">…</b></div>
</div>
<div id="error" class="err"></div>
<h2 id="chart-title">Lag and throughput</h2>
<div class="chartbox"><canvas id="chart" data-points="0"></canvas></div>
<div id="chart-note" class="muted"></div>
<h2>Tables</h2>
<table><thead><tr><th>table</th><th>dump</th><th>rows dumped</th><th>changes streamed</th></tr>
</thead><tbody id="tables"></tbody></table>
<script>
"use strict";
const MINUTE = 60 * 1000, MAX_WINDOW_MS = 10 * MINUTE;
const $ = (id) => document.getElementById(id);
const fmtInt = (n) => String(Math.round(n)).replace(/\\B(?=(\\d{3})+(?!\\d))/g, ",");
function fmtNum(n) {
  if (n >= 100) return fmtInt(n);
  return n >= 10 ? n.toFixed(1) : n.toFixed(2);
}
function fmtAge(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
}
function fmtPos(p) {
  if (!p) return "–";
  return Object.entries(p).filter(([k]) => k !== "resync").map(([k, v]) => k + " " + v).join(", ");
}
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
/**
 * The chart spans the history there is, in whole minutes, up to the ten the server keeps:
 * a sync started a minute ago fills the width instead of a sliver of it.
 */
function windowOf(s) {
  const first = s.history.length ? s.history[0][0] : Date.parse(s.now);
  const span = Date.parse(s.now) - first;
  return Math.min(MAX_WINDOW_MS, Math.max(1, Math.ceil(span / MINUTE)) * MINUTE);
}
function fmtAgo(ms) {
  return ms >= MINUTE ? "-" + Math.round(ms / MINUTE) + "m" : "-" + Math.round(ms / 1000) + "s";
}
/** A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
function draw(s) {
  const c = $("chart"), dpr = window.devicePixelRatio || 1;
  const W = c.clientWidth || 900, H = c.clientHeight || 240;
  c.width = W * dpr; c.height = H * dpr;
  const g = c.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, H);
  g.font = "12px system-ui,sans-serif";
  const L = 56, R = 64, T = 22, B = 24, w = W - L - R, h = H - T - B;
  const span = windowOf(s), end = Date.parse(s.now), start = end - span;
  const pts = s.history.filter((p) => p[0] >= start);
  c.dataset.points = String(pts.length);
  const lagMax = niceMax(Math.max(0, ...pts.map((p) => p[1])));
  const rateMax = niceMax(Math.max(0, ...pts.map((p) => p[2])));
  const x = (t) => L + ((t - start) / span) * w;
  // Grid and axes: time back from now along the bottom, lag on the left, writes/s on the
  // right.
  g.strokeStyle = "#eef0f3"; g.fillStyle = "#5f6b7a"; g.lineWidth = 1;
  g.textAlign = "center"; g.textBaseline = "top";
  const step = [10, 15, 30, 60, 120].map((v) => v * 1000).find((v) => span / v <= 10);
  for (let ago = 0; ago <= span; ago += step) {
    const xx = Math.round(x(end - ago)) + 0.5;
    g.beginPath(); g.moveTo(xx, T); g.lineTo(xx, T + h); g.stroke();
    g.fillText(ago ? fmtAgo(ago) : "now", xx, T + h + 6);
  }
  g.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const yy = Math.round(T + h - (i / 4) * h) + 0.5;
    g.beginPath(); g.moveTo(L, yy); g.lineTo(L + w, yy); g.stroke();
    g.fillStyle = "#b06000"; g.textAlign = "right";
    g.fillText(fmtNum((lagMax * i) / 4) + " s", L - 6, yy);
    g.fillStyle = "#1a5fb4"; g.textAlign = "left";
    g.fillText(fmtNum((rateMax * i) / 4), L + w + 6, yy);
  }
  g.strokeStyle = "#c4cad3"; g.strokeRect(L + 0.5, T + 0.5, w, h);
  g.textBaseline = "alphabetic"; g.textAlign = "left";
  g.fillStyle = "#b06000"; g.fillText("● lag (s)", L, T - 8);
  g.fillStyle = "#1a5fb4"; g.fillText("● writes/s (rows dumped + changes applied)", L + 90, T - 8);
  if (pts.length < 2) {
    g.fillStyle = "#5f6b7a"; g.textAlign = "center";
    g.fillText("collecting samples…", L + w / 2, T + h / 2);
    return;
  }
  const y = (v, max) => T + h - (v / max) * h;
  // Throughput as a filled area, lag as a line on top.
  g.beginPath(); g.moveTo(x(pts[0][0]), T + h);
  for (const p of pts) g.lineTo(x(p[0]), y(p[2], rateMax));
  g.lineTo(x(pts[pts.length - 1][0]), T + h); g.closePath();
  g.fillStyle = "rgba(26,95,180,0.15)"; g.fill();
  for (const [i, color, max] of [[2, "#1a5fb4", rateMax], [1, "#b06000", lagMax]]) {
    g.beginPath(); g.strokeStyle = color; g.lineWidth = 2;
    pts.forEach((p, k) => (k ? g.lineTo : g.moveTo).call(g, x(p[0]), y(p[i], max)));
    g.stroke();
  }
}
function render(s) {
  $("about").textContent = [s.driver, s.stateKey && "state " + s.stateKey, s.version && "v" + s.version]
    .filter(Boolean).join(" · ");
  const now = Date.parse(s.now);
  $("updated").textContent = "updated " + new Date(now).toISOString().slice(11, 19) + " UTC";
  const ph = $("phase");
  ph.textContent = s.phase; ph.className = "phase-" + s.phase;
  $("since").textContent = "for " + fmtAge(now - Date.parse(s.phaseSince));
  $("position").textContent = fmtPos(s.position);
  $("commit").textContent = s.lastCommitTime
    ? "last source commit " + fmtAge(now - Date.parse(s.lastCommitTime)) + " ago" : "";
  $("lag").textContent = fmtNum(s.lagSeconds) + " s";
  const last = s.history[s.history.length - 1];
  $("rate").textContent = last ? fmtInt(last[2]) : "0";
  $("txns").textContent = fmtInt(s.transactions);
  $("backlog").textContent = fmtInt(s.backlog);
  $("reconnects").textContent = fmtInt(s.reconnects);
  $("error").textContent = s.lastError
    ? "last error (" + fmtAge(now - Date.parse(s.lastError.time)) + " ago): " + s.lastError.message
    : "";
  const body = $("tables");
  body.replaceChildren(...s.tables.map((t) => {
    const tr = el("tr");
    tr.dataset.table = t.table;
    tr.append(el("td", t.table));
    // The estimate comes from the catalogue and may be off: the count of rows read wins, and
    // a table is complete once streaming began.
    const total = Math.max(t.estimated ?? 0, t.dumped);
    const done = s.phase === "sync" && t.dumped > 0;
    const pct = done ? 100 : total ? Math.floor((t.dumped / total) * 100) : 0;
    const cell = el("td");
    if (t.snapshot && t.snapshot.state === "running") {
      cell.textContent = "snapshot, " + fmtInt(t.snapshot.rows) + " rows read";
    } else if (t.snapshot && t.snapshot.state === "held") {
      cell.textContent = "held: " + t.snapshot.why;
    } else if (t.dumped > 0 || s.phase === "dump") {
      const bar = el("span", undefined, done ? "bar done" : "bar");
      const fill = el("i"); fill.style.width = pct + "%";
      bar.append(fill);
      cell.append(bar, pct + "%");
    } else cell.textContent = "–";
    tr.append(cell);
    tr.append(el("td", fmtInt(t.dumped) + (t.estimated !== undefined && !done
      ? " / ~" + fmtInt(t.estimated) : ""), "n"));
    tr.append(el("td", fmtInt(t.changes), "n"));
    return tr;
  }));
  if (!s.tables.length) {
    const tr = el("tr"), td = el("td", "no tables yet", "muted");
    td.colSpan = 4; tr.append(td); body.append(tr);
  }
  const span = windowOf(s);
  $("chart-title").textContent = "Lag and throughput, last " + span / MINUTE +
    (span === MINUTE ? " minute" : " minutes");
  const pts = s.history.filter((p) => p[0] >= now - span);
  $("chart-note").textContent = pts.length < 2 ? "" : pts.length + " samples over " +
    fmtAge(pts[pts.length - 1][0] - pts[0][0]) + " · peak " +
    fmtInt(Math.max(...pts.map((p) => p[2]))) + " writes/s · max lag " +
    fmtNum(Math.max(...pts.map((p) => p[1]))) + " s";
  draw(s);
}
async function tick() {
  try {
    const r = await fetch("status.json", { cache: "no-store" });
    render(await r.json());
  } catch (e) {
    $("error").textContent = "cannot reach sync: " + e;
  }
}
tick(); setInterval(tick, 1000);
</script></body></html>
`;
