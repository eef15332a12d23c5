/**
 * etcd over https with client certificates (`--client-cert-auth`), CA and certificates made
 * by the test: sync replicates a real PostgreSQL into it, and the independent checker (the
 * `etcd3` gRPC client with its own TLS credentials) finds etcd equal to the database. A
 * client certificate that is missing or not from etcd's CA is one clear line.
 */
import { test } from "../testing/deadline.ts";
import { Buffer } from "node:buffer";
import { Etcd3 } from "etcd3";
import { assert, assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { makeCerts, makeClientCert } from "../testing/tls.ts";
import { startSync } from "../testing/sync.ts";
import { firstDifference } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Run sync to its exit, or fail after 60 s (retrying forever is the defect tested for). */
/** etcd on https with the CA's server certificate, requiring client certificates. */
function startTlsEtcd(
  certs: Awaited<ReturnType<typeof makeCerts>>,
  client: Awaited<ReturnType<typeof makeClientCert>>,
) {
  return startEtcd({
    tls: {
      caFile: certs.caFile,
      certFile: `${certs.dir}/server.pem`,
      keyFile: `${certs.dir}/server.key`,
      client,
    },
  });
}

async function runBounded(args: string[]): Promise<{ code: number; stderr: string }> {
  const p = startSync(args);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((r) => timer = setTimeout(() => r(null), 60_000));
  const st = await Promise.race([p.exited, late]);
  clearTimeout(timer);
  if (!st) {
    await p.stop();
    throw new Error(`sync did not exit within 60 s:\n${p.output()}`);
  }
  return { code: st.code, stderr: p.output() };
}

interface Creds {
  ca: string;
  cert: string;
  key: string;
}

/** Every key under `prefix`, over gRPC with TLS and a client certificate. */
async function readEtcdTls(endpoint: string, prefix: string, c: Creds) {
  const client = new Etcd3({
    hosts: endpoint,
    credentials: {
      rootCertificate: Buffer.from(c.ca),
      certChain: Buffer.from(c.cert),
      privateKey: Buffer.from(c.key),
    },
    // grpc-js names the server by the URL's host, and node:tls refuses an IP address as
    // SNI name; the certificate is for localhost too.
    grpcOptions: { "grpc.ssl_target_name_override": "localhost" },
  });
  try {
    const all = await client.getAll().prefix(prefix).strings();
    return new Map(Object.entries(all));
  } finally {
    client.close();
  }
}

async function converges(
  endpoint: string,
  prefix: string,
  creds: Creds,
  expected: () => Promise<Map<string, string>>,
  detail: () => string,
) {
  const deadline = Date.now() + 60_000;
  let diff: string | null = "not checked";
  while (Date.now() < deadline) {
    diff = firstDifference(await expected(), await readEtcdTls(endpoint, prefix, creds));
    if (diff === null) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`etcd did not converge to the database: ${diff}\n${detail()}`);
}

test("etcd TLS: https with client certificates, PostgreSQL replicated", opts, async () => {
  const certs = await makeCerts();
  const client = await makeClientCert(certs);
  const etcd = await startTlsEtcd(certs, client);
  const pg = await startPostgres();
  try {
    assertMatch(etcd.endpoint, /^https:/);
    await pg.sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
    await pg.sql`INSERT INTO t SELECT g, 'dumped ' || g FROM generate_series(1, 100) g`;
    const sync = startSync([
      "--driver=pgx",
      `--db-url=${pg.url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      `--etcd-ca=${certs.caFile}`,
      `--etcd-cert=${client.certFile}`,
      `--etcd-key=${client.keyFile}`,
      "--etcd-prefix=/etls",
    ]);
    const creds = { ca: certs.ca, cert: client.cert, key: client.key };
    const expected = () => expectedFromPg(pg.sql, "/etls");
    try {
      await converges(etcd.endpoint, "/etls/", creds, expected, () => sync.output());
      await pg.sql`UPDATE t SET v = 'streamed' WHERE id <= 10`;
      await pg.sql`DELETE FROM t WHERE id > 90`;
      await pg.sql`INSERT INTO t VALUES (1000, 'new over TLS')`;
      await converges(etcd.endpoint, "/etls/", creds, expected, () => sync.output());
      const got = await readEtcdTls(etcd.endpoint, "/etls/", creds);
      assertEquals(got.get("/etls/t/1000"), '{"id":1000,"v":"new over TLS"}');
      assertEquals(got.size, 91);
    } finally {
      await sync.stop();
    }
  } finally {
    await pg.close();
    await etcd.close();
    await certs.close();
  }
});

test(
  "etcd TLS: a certificate either side rejects is one clear line, exit 2",
  opts,
  async () => {
    const certs = await makeCerts();
    const client = await makeClientCert(certs);
    // A certificate from another CA: well-formed, but etcd does not trust it.
    const other = await makeCerts();
    const foreign = await makeClientCert(other, "foreign");
    const etcd = await startTlsEtcd(certs, client);
    const pg = await startPostgres();
    try {
      await pg.sql`CREATE TABLE t (id int PRIMARY KEY)`;
      const base = [
        "--driver=pgx",
        `--db-url=${pg.url}`,
        `--etcd-endpoints=${etcd.endpoint}`,
        "--etcd-prefix=/etls",
      ];
      // With TLS 1.3 the server's verdict on the client certificate may arrive after the
      // first request went out ("connection closed", retried once); then the alert says it.
      const clientCert =
        /msg="etcd at https:\S+ rejected the TLS client certificate \(received fatal alert: \w+\): give --etcd-cert and --etcd-key/;
      const serverCert =
        /msg="cannot verify etcd's TLS certificate at https:\S+ \((invalid peer certificate: \w+|unable to verify the first certificate)\): give the CA that signed it with --etcd-ca"/;
      const cases: [string, string[], RegExp][] = [
        ["no client certificate", [`--etcd-ca=${certs.caFile}`], clientCert],
        ["foreign client certificate", [
          `--etcd-ca=${certs.caFile}`,
          `--etcd-cert=${foreign.certFile}`,
          `--etcd-key=${foreign.keyFile}`,
        ], clientCert],
        ["server certificate from another CA", [
          `--etcd-ca=${other.caFile}`,
          `--etcd-cert=${client.certFile}`,
          `--etcd-key=${client.keyFile}`,
        ], serverCert],
        ["no CA for the server certificate", [
          `--etcd-cert=${client.certFile}`,
          `--etcd-key=${client.keyFile}`,
        ], serverCert],
      ];
      for (const [what, extra, want] of cases) {
        const r = await runBounded([...base, ...extra]);
        assertEquals(r.code, 2, `${what}: ${r.stderr}`);
        const errors = r.stderr.trim().split("\n").filter((l) => /level=error/.test(l));
        assertEquals(errors.length, 1, `${what}: ${r.stderr}`);
        assertMatch(errors[0], want, `${what}: ${errors[0]}`);
        assert(!/\n\s+at /.test(r.stderr), `${what}: stack trace in ${r.stderr}`);
      }
    } finally {
      await pg.close();
      await etcd.close();
      await certs.close();
      await other.close();
    }
  },
);
