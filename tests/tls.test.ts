/**
 * TLS to the databases with a CA made by the test: verified connections work end to end,
 * and a certificate the client cannot verify is one clear line and exit status 2.
 */
import { test } from "../testing/deadline.ts";
import { assertEquals, assertMatch } from "../testing/assert.ts";
import { startEtcd } from "../testing/etcd.ts";
import { startPostgres } from "../testing/postgres.ts";
import { startMariadb } from "../testing/mariadb.ts";
import { makeCerts } from "../testing/tls.ts";
import { runSync, startSync } from "../testing/sync.ts";
import { assertConverges } from "../testing/checker.ts";
import { expectedFromPg } from "../testing/expected_pg.ts";
import { expectedFromMysql } from "../testing/expected_mysql.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

test("TLS: PostgreSQL verify-full and require with the test CA", opts, async () => {
  const certs = await makeCerts();
  const etcd = await startEtcd();
  const pg = await startPostgres({ tls: { cert: certs.cert, key: certs.key } });
  try {
    await pg.sql`CREATE TABLE t (id int PRIMARY KEY, v text)`;
    await pg.sql`INSERT INTO t VALUES (1, 'secret over TLS')`;
    const url = `${pg.url}?sslmode=verify-full&sslrootcert=${certs.caFile}`;
    const sync = startSync([
      "--driver=pgx",
      `--db-url=${url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/tls",
    ]);
    try {
      await assertConverges(etcd.endpoint, "/tls/", () => expectedFromPg(pg.sql, "/tls"), 60_000)
        .catch((e) => {
          throw new Error(`${e.message}\n${sync.output()}`);
        });
      const [ssl] = await pg.sql`SELECT count(*)::int AS n FROM pg_stat_ssl WHERE ssl`;
      if (ssl.n < 1) throw new Error("no TLS connection seen by the server");
    } finally {
      await sync.stop();
    }
    // Without the CA the server's certificate cannot be verified: say so, exit 2.
    const r = await runSync([
      "--driver=pgx",
      `--db-url=${pg.url}?sslmode=require`,
      `--etcd-endpoints=${etcd.endpoint}`,
    ]);
    assertEquals(r.code, 2, r.stderr);
    assertMatch(r.stderr, /TLS to 127\.0\.0\.1:\d+ failed.*sslrootcert/);
  } finally {
    await pg.close();
    await etcd.close();
    await certs.close();
  }
});

test("TLS: MariaDB ssl-mode=VERIFY_IDENTITY with the test CA", opts, async () => {
  const certs = await makeCerts();
  await Deno.writeTextFile(`${certs.dir}/server.pem`, certs.cert);
  await Deno.writeTextFile(`${certs.dir}/server.key`, certs.key);
  const etcd = await startEtcd();
  const db = await startMariadb({
    conf: {
      "ssl-ca": certs.caFile,
      "ssl-cert": `${certs.dir}/server.pem`,
      "ssl-key": `${certs.dir}/server.key`,
    },
  });
  try {
    await db.query(`CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT);
      INSERT INTO app.t VALUES (1, 'over TLS');`);
    const url = `${db.url}app?ssl-mode=VERIFY_IDENTITY&ssl-ca=${certs.caFile}`;
    const sync = startSync([
      "--driver=mysql",
      `--db-url=${url}`,
      `--etcd-endpoints=${etcd.endpoint}`,
      "--etcd-prefix=/mtls",
      "--server-id=4301",
    ]);
    try {
      const expected = () => expectedFromMysql(db.query, "/mtls", ["app"], "app");
      await assertConverges(etcd.endpoint, "/mtls/", expected, 60_000).catch((e) => {
        throw new Error(`${e.message}\n${sync.output()}`);
      });
      await db.query("INSERT INTO app.t VALUES (2, 'streamed over TLS')");
      await assertConverges(etcd.endpoint, "/mtls/", expected, 60_000);
      // sync's connections (and mysqldump's) were TLS: the test's own client is not.
      const [accepts] = await db.query("SHOW GLOBAL STATUS LIKE 'Ssl_accepts'");
      if (Number(accepts.Value) < 2) throw new Error(`Ssl_accepts = ${accepts.Value}`);
    } finally {
      await sync.stop();
    }
  } finally {
    await db.close();
    await etcd.close();
    await certs.close();
  }
});
