/**
 * Is an endpoint etcd at all? Asked only when no request got an answer from it. Something
 * that is not etcd (a web server, the PostgreSQL port) fails every request in ways that look
 * like a network fault (`Protocol error`, `write EPIPE`, `connection closed`), and retrying
 * those for ever hides a wrong --etcd-endpoints. etcd answers `GET /version` on its client
 * port, over HTTP/1.1, with JSON naming `etcdserver`.
 */

export interface ProbeTls {
  ca?: string;
  cert?: string;
  key?: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Read what the peer sends until it closes, `max` bytes, or the deadline. */
async function readAnswer(
  conn: Deno.Conn,
  max: number,
  deadline: number,
): Promise<{ bytes: Uint8Array; closed: boolean }> {
  const out = new Uint8Array(max);
  let n = 0;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0 || n >= max) return { bytes: out.subarray(0, n), closed: false };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), left)));
    const got = await Promise.race([conn.read(out.subarray(n)).catch(readFailed), late]);
    clearTimeout(timer);
    if (got === "late" || got === "tls") return { bytes: out.subarray(0, n), closed: false };
    if (got === null) return { bytes: out.subarray(0, n), closed: true };
    n += got;
  }
}

/**
 * A reset or an end is a peer that hung up; a TLS alert (etcd refusing the client
 * certificate after the handshake) says nothing about whether the peer is etcd.
 */
function readFailed(e: unknown): null | "tls" {
  return /alert|certificate|tls|handshake/i.test(String(e)) ? "tls" : null;
}

/**
 * Why `endpoint` is not an etcd server, or undefined when it is, cannot be reached, or
 * cannot be told (no answer yet; a proxy answering 5xx because etcd behind it is down).
 */
export async function notEtcd(
  endpoint: string,
  tls: ProbeTls,
  timeoutMs: number,
): Promise<string | undefined> {
  const u = new URL(endpoint);
  const https = u.protocol === "https:";
  const hostname = u.hostname.replace(/^\[|\]$/g, "");
  const port = Number(u.port || (https ? 443 : 80));
  const deadline = Date.now() + timeoutMs;
  let conn: Deno.Conn;
  try {
    conn = https
      ? await Deno.connectTls({
        hostname,
        port,
        caCerts: tls.ca ? [tls.ca] : undefined,
        ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
      })
      : await Deno.connect({ hostname, port });
  } catch {
    return undefined; // unreachable, or a TLS failure: the caller says which
  }
  try {
    const host = u.port ? `${hostname}:${u.port}` : hostname;
    await conn.write(
      enc.encode(`GET /version HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    const { bytes, closed } = await readAnswer(conn, 4096, deadline);
    if (!bytes.length) {
      return closed ? "it closed the connection without answering GET /version" : undefined;
    }
    const text = dec.decode(bytes);
    const status = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(text)?.[1];
    if (!status) {
      const hex = [...bytes.subarray(0, 5)].map((b) => b.toString(16).padStart(2, "0"));
      return `it answered GET /version with bytes that are not HTTP (${hex.join(" ")})`;
    }
    // 5xx: a proxy whose etcd is down. A 200 cut short by the deadline: cannot tell yet.
    if (status.startsWith("5") || (status === "200" && (/etcdserver/.test(text) || !closed))) {
      return undefined;
    }
    return `it answered GET /version with HTTP ${status}`;
  } catch {
    return "it closed the connection without answering GET /version";
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}
