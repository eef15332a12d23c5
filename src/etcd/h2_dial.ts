/** The connection under an HTTP/2 session: TCP (h2c, prior knowledge) or TLS with ALPN "h2". */

export interface H2Target {
  hostname: string;
  port: number;
  /** Present for TLS: PEM text of the CA bundle, client certificate and key. */
  tls?: { ca?: string; cert?: string; key?: string };
}

/**
 * Connect, and for TLS finish the handshake here: a certificate either side rejects then
 * fails the connection with the TLS library's reason, which explain.ts recognizes.
 */
export async function dial(target: H2Target): Promise<Deno.Conn> {
  const { hostname, port, tls } = target;
  if (!tls) {
    const conn = await Deno.connect({ hostname, port });
    conn.setNoDelay(true); // requests and answers are small: no Nagle delay
    return conn;
  }
  const conn = await Deno.connectTls({
    hostname,
    port,
    caCerts: tls.ca ? [tls.ca] : undefined,
    ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
    alpnProtocols: ["h2"],
  });
  try {
    const { alpnProtocol } = await conn.handshake();
    if (alpnProtocol !== "h2") throw new Error("the server did not agree to HTTP/2 (ALPN h2)");
  } catch (e) {
    conn.close();
    throw e;
  }
  return conn;
}
