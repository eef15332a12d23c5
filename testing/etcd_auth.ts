/** Turn on etcd's authentication with users limited to key prefixes (over the gateway). */

const b64 = (s: string) => btoa(s);

function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

async function call(endpoint: string, path: string, body: unknown, token?: string) {
  const res = await fetch(`${endpoint}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: token } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${text}`);
  return JSON.parse(text || "{}");
}

export interface EtcdUser {
  name: string;
  password: string;
  /** Key prefixes the user may read and write (none: a user without any role). */
  prefixes: string[];
}

/** Create `root` and the users, then enable auth. Returns a root token for the test. */
export async function enableEtcdAuth(
  endpoint: string,
  rootPassword: string,
  users: EtcdUser[],
): Promise<string> {
  await call(endpoint, "/v3/auth/role/add", { name: "root" });
  await call(endpoint, "/v3/auth/user/add", { name: "root", password: rootPassword });
  await call(endpoint, "/v3/auth/user/grant", { user: "root", role: "root" });
  for (const u of users) {
    await call(endpoint, "/v3/auth/user/add", { name: u.name, password: u.password });
    if (!u.prefixes.length) continue;
    const role = `${u.name}-rw`;
    await call(endpoint, "/v3/auth/role/add", { name: role });
    for (const p of u.prefixes) {
      await call(endpoint, "/v3/auth/role/grant", {
        name: role,
        perm: { permType: "READWRITE", key: b64(p), range_end: b64(prefixEnd(p)) },
      });
    }
    await call(endpoint, "/v3/auth/user/grant", { user: u.name, role });
  }
  await call(endpoint, "/v3/auth/enable", {});
  const r = await call(endpoint, "/v3/auth/authenticate", {
    name: "root",
    password: rootPassword,
  });
  return String(r.token);
}
