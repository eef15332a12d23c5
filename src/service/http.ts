/** `--http-addr`: liveness, readiness, Prometheus metrics and the status page. */
import type { Log } from "../core/log.ts";
import { renderMetrics } from "./metrics.ts";
import { type Status, statusJson } from "./status.ts";
import { STATUS_PAGE } from "./page.ts";

export interface HttpOptions {
  addr: string;
  status: Status;
  log: Log;
  /** /readyz fails when lag exceeds this. */
  readyMaxLagMs: number;
  signal: AbortSignal;
}

/** Parse `HOST:PORT` (or `:PORT`). */
export function parseAddr(addr: string): { hostname: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (!m) throw new Error(`--http-addr must be HOST:PORT, got ${addr}`);
  return { hostname: m[1].replace(/^\[|\]$/g, "") || "0.0.0.0", port: Number(m[2]) };
}

export function readiness(status: Status, maxLagMs: number): { ok: boolean; reason: string } {
  if (status.phase !== "sync") return { ok: false, reason: `phase is ${status.phase}` };
  // A table being read again is not current in etcd until its snapshot ends.
  const reading = Object.entries(status.snapshots).filter(([, s]) => s.state === "running");
  if (reading.length) {
    return { ok: false, reason: `snapshot running: ${reading.map(([t]) => t).join(", ")}` };
  }
  // A held table's changes are not applied (its replica identity leaves out the key).
  const held = Object.entries(status.snapshots).filter(([, s]) => s.state === "held");
  if (held.length) return { ok: false, reason: `held: ${held.map(([t]) => t).join(", ")}` };
  const lag = status.lagSeconds();
  if (lag * 1000 > maxLagMs) return { ok: false, reason: `lag ${lag.toFixed(1)}s over limit` };
  return { ok: true, reason: "streaming" };
}

export function serveHttp(o: HttpOptions): Deno.HttpServer {
  const { hostname, port } = parseAddr(o.addr);
  const server = Deno.serve({
    hostname,
    port,
    signal: o.signal,
    onListen: (a) => o.log.info("http listening", { addr: `${a.hostname}:${a.port}` }),
  }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/healthz") return new Response("ok\n");
    if (path === "/readyz") {
      const r = readiness(o.status, o.readyMaxLagMs);
      return Response.json({ ready: r.ok, reason: r.reason, phase: o.status.phase }, {
        status: r.ok ? 200 : 503,
      });
    }
    if (path === "/metrics") {
      return new Response(renderMetrics(o.status), {
        headers: { "content-type": "text/plain; version=0.0.4" },
      });
    }
    if (path === "/status.json") return Response.json(statusJson(o.status));
    if (path === "/") {
      return new Response(STATUS_PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    return new Response("not found\n", { status: 404 });
  });
  // The status page's chart: the server keeps the history, so a page opened now shows
  // the last minutes at once.
  o.status.sample();
  const sampler = setInterval(() => o.status.sample(), 1000);
  o.signal.addEventListener("abort", () => clearInterval(sampler), { once: true });
  return server;
}
