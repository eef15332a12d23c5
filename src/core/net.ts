/** Connection failures in one line, the same for every driver and for etcd. */

/** How the resolvers (Deno's, and node's for HTTP/2) say that a name does not resolve. */
export const NOT_RESOLVED =
  /failed to lookup address|Name or service not known|nodename nor servname|name resolution|No address associated|ENOTFOUND|EAI_AGAIN/i;

/**
 * `cannot connect to HOST:PORT: why`, or `cannot resolve HOST (why)` when the name does not
 * resolve: the fix is then the host name (or DNS), not the server.
 */
export function connectFailure(host: string, port: number, e: unknown): string {
  const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
  if (NOT_RESOLVED.test(why)) return `cannot resolve ${host} (${why.replace(host, "").trim()})`;
  return `cannot connect to ${host}:${port}: ${why}`;
}
