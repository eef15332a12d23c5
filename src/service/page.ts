/**
 * The status page at `GET /`: plain HTML and a small script served by sync itself (no
 * external assets). It polls `/status.json` and draws lag and throughput of the last
 * minutes on a canvas.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sync status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
h1{font-size:20px;margin:0 0 16px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:10px 14px;min-width:140px}
.card b{display:block;font-size:18px}
.phase-sync{color:#137333}.phase-dump{color:#1a5fb4}.phase-retrying,.phase-standby{color:#b06000}
table{border-collapse:collapse;background:#fff;border:1px solid #dde1e7;margin-bottom:16px}
td,th{padding:4px 10px;border-bottom:1px solid #eef0f3;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
canvas{background:#fff;border:1px solid #dde1e7;border-radius:8px}
.err{color:#a50e0e}
</style></head><body>
<h1>sync</h1>
<div class="cards">
 <div class="card">phase<b id="phase">…</b></div>
 <div class="card">position<b id="position">…</b></div>
 <div class="card">lag<b id="lag">…</b></div>
 <div class="card">changes/s<b id="rate">…</b></div>
 <div class="card">transactions<b id="txns">…</b></div>
</div>
<div id="error" class="err"></div>
<h2>Lag (s) and throughput (changes/s), last minutes</h2>
<canvas id="chart" width="900" height="240"></canvas>
<h2>Tables</h2>
<table><thead><tr><th>table</th><th>rows dumped</th><th>estimated</th><th>changes streamed</th></tr></thead>
<tbody id="tables"></tbody></table>
<script>
const hist = [];
let last = null;
function fmtPos(p) { return p ? Object.entries(p).map(([k, v]) => k + " " + v).join(", ") : "–"; }
function draw() {
  const c = document.getElementById("chart"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const pad = 36, w = c.width - 2 * pad, h = c.height - 2 * pad;
  g.strokeStyle = "#dde1e7"; g.strokeRect(pad, pad, w, h);
  if (hist.length < 2) return;
  const series = [["lag", "#b06000"], ["rate", "#1a5fb4"]];
  for (const [k, color] of series) {
    const max = Math.max(1, ...hist.map((p) => p[k]));
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    hist.forEach((p, i) => {
      const x = pad + (i / (hist.length - 1)) * w, y = pad + h - (p[k] / max) * h;
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
    g.fillStyle = color;
    g.fillText(k + " (max " + max.toFixed(k === "lag" ? 2 : 0) + ")", k === "lag" ? pad : pad + 160, pad - 10);
  }
}
async function tick() {
  try {
    const s = await (await fetch("status.json", { cache: "no-store" })).json();
    const now = Date.now();
    const total = s.changesTotal;
    const rate = last ? Math.max(0, (total - last.total) / ((now - last.t) / 1000)) : 0;
    last = { t: now, total };
    hist.push({ lag: s.lagSeconds, rate });
    if (hist.length > 300) hist.shift();
    const ph = document.getElementById("phase");
    ph.textContent = s.phase; ph.className = "phase-" + s.phase;
    document.getElementById("position").textContent = fmtPos(s.position);
    document.getElementById("lag").textContent = s.lagSeconds.toFixed(2) + " s";
    document.getElementById("rate").textContent = rate.toFixed(0);
    document.getElementById("txns").textContent = s.transactions;
    document.getElementById("error").textContent = s.lastError ? "last error: " + s.lastError.message : "";
    const rows = s.tables.map((t) =>
      "<tr><td>" + t.table.replace(/</g, "&lt;") + "</td><td class=n>" + t.dumped +
      "</td><td class=n>" + (t.estimated ?? "–") + "</td><td class=n>" + t.changes + "</td></tr>");
    document.getElementById("tables").innerHTML = rows.join("");
    draw();
  } catch (e) {
    document.getElementById("error").textContent = "cannot reach sync: " + e;
  }
}
tick(); setInterval(tick, 1000);
</script></body></html>
`;
