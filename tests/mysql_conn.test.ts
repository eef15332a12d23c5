/** The hand-written MySQL client against a real MariaDB: auth, TLS, queries, binlog dump. */
import { test } from "../testing/deadline.ts";
import { assert, assertEquals, assertRejects } from "../testing/assert.ts";
import { type ConnectOptions, MysqlConn, MysqlError } from "../src/mysql/conn.ts";
import { parseMysqlUrl } from "../src/mysql/url.ts";
import { binlogDump, registerReplica } from "../src/mysql/replica.ts";
import { type MariaServer, startMariadb } from "../testing/mariadb.ts";
import { makeCerts } from "../testing/tls.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

function base(db: MariaServer, extra: Partial<ConnectOptions> = {}): ConnectOptions {
  return {
    host: "127.0.0.1",
    port: db.port,
    user: "root",
    password: db.password,
    sslMode: "DISABLED",
    ...extra,
  };
}

/** Next event of a binlog stream, or fail after `ms`. */
async function next(it: AsyncIterator<Uint8Array>, ms = 10_000): Promise<Uint8Array> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, rej) => {
    t = setTimeout(() => rej(new Error("no binlog event in time")), ms);
  });
  try {
    const r = await Promise.race([it.next(), timeout]);
    if (r.done) throw new Error("binlog stream ended");
    return r.value;
  } finally {
    clearTimeout(t);
  }
}

/** Event types (header byte 4) until `until` is seen. */
async function typesUntil(it: AsyncIterator<Uint8Array>, until: number[]): Promise<number[]> {
  const seen: number[] = [];
  for (;;) {
    const ev = await next(it);
    seen.push(ev[4]);
    if (until.includes(ev[4])) return seen;
  }
}

test("MysqlConn against MariaDB", opts, async (t) => {
  const certs = await makeCerts();
  const db = await startMariadb({
    rootPassword: "s3cret-Pw",
    tls: { cert: certs.cert, key: certs.key, ca: certs.ca },
    conf: { "max-allowed-packet": "64M" },
  });
  try {
    await db.query(
      "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20), b BLOB)",
    );

    await t.step("native password, query results", async () => {
      const c = await MysqlConn.connect(base(db, { database: "app" }));
      try {
        assert(c.serverVersion.includes("MariaDB"), c.serverVersion);
        assert(c.connectionId > 0);
        const r = await c.query(
          "SELECT 1 AS one, NULL AS n, 'é✓' AS s, X'610062' AS bin, DATABASE() AS d",
        );
        assertEquals(r.columns, ["one", "n", "s", "bin", "d"]);
        assertEquals(r.rows, [["1", null, "é✓", "a\0b", "app"]]);
        const ok = await c.query("INSERT INTO t VALUES (1, NULL, X'00FF')");
        assertEquals(ok, { columns: [], rows: [] });
        const r2 = await c.query("SELECT id, v, HEX(b) FROM t ORDER BY id");
        assertEquals(r2.rows, [["1", null, "00FF"]]);
        const empty = await c.query("SELECT id FROM t WHERE id < 0");
        assertEquals(empty, { columns: ["id"], rows: [] });
        const e = await assertRejects(() => c.query("SELECT * FROM nope"), MysqlError);
        assertEquals(e.code, 1146);
        // Still usable after an error.
        assertEquals((await c.query("SELECT 2")).rows, [["2"]]);
      } finally {
        c.close();
      }
    });

    await t.step("packets over 16 MiB both ways", async () => {
      const c = await MysqlConn.connect(base(db));
      try {
        const n = 17 * 1024 * 1024 + 5;
        const r = await c.query(`SELECT REPEAT('x', ${n}) AS big, 'after' AS a`);
        assertEquals(r.rows[0][0]!.length, n);
        assertEquals(r.rows[0][1], "after");
        const lit = "y".repeat(n);
        const r2 = await c.query(`SELECT LENGTH('${lit}')`);
        assertEquals(r2.rows, [[String(n)]]);
        // Exactly one full packet (0xffffff payload) then an empty one.
        const exact = 0xffffff - "SELECT LENGTH('')".length - 1;
        const r3 = await c.query(`SELECT LENGTH('${"z".repeat(exact)}')`);
        assertEquals(r3.rows, [[String(exact)]]);
      } finally {
        c.close();
      }
    });

    await t.step("wrong password: MysqlError 1045 without the password", async () => {
      const e = await assertRejects(
        () => MysqlConn.connect(base(db, { password: "not-the-pw-xyz" })),
        MysqlError,
      );
      assertEquals(e.code, 1045);
      assertEquals(e.sqlState, "28000");
      assert(e.message.startsWith("MySQL error 1045 (28000): Access denied"), e.message);
      assert(!e.message.includes("not-the-pw-xyz"));
    });

    await t.step("TLS: REQUIRED without a CA, VERIFY_IDENTITY with it", async () => {
      const u = parseMysqlUrl(`${db.url}?ssl-mode=REQUIRED`);
      const c = await MysqlConn.connect({ ...base(db), sslMode: u.sslMode });
      try {
        const r = await c.query("SHOW SESSION STATUS LIKE 'Ssl_version'");
        assert(/TLS/.test(r.rows[0][1] ?? ""), JSON.stringify(r.rows));
        const big = await c.query("SELECT REPEAT('q', 300000)");
        assertEquals(big.rows[0][0]!.length, 300000);
      } finally {
        c.close();
      }
      const v = await MysqlConn.connect(
        base(db, { sslMode: "VERIFY_IDENTITY", sslCa: certs.caFile }),
      );
      try {
        const r = await v.query("SHOW SESSION STATUS LIKE 'Ssl_version'");
        assert(/TLS/.test(r.rows[0][1] ?? ""));
      } finally {
        v.close();
      }
      // Without the CA the chain cannot be verified.
      await assertRejects(() => MysqlConn.connect(base(db, { sslMode: "VERIFY_CA" })));
      const plain = await MysqlConn.connect(base(db));
      try {
        const r = await plain.query("SHOW SESSION STATUS LIKE 'Ssl_version'");
        assertEquals(r.rows[0][1], "");
      } finally {
        plain.close();
      }
    });

    await t.step("client_ed25519 (auth switch)", async () => {
      await db.query("INSTALL SONAME 'auth_ed25519'");
      await db.query(
        "CREATE USER 'ed'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed-pw-1'); " +
          "GRANT SELECT ON *.* TO 'ed'@'%'",
      );
      const c = await MysqlConn.connect(base(db, { user: "ed", password: "ed-pw-1" }));
      try {
        assertEquals((await c.query("SELECT CURRENT_USER()")).rows, [["ed@%"]]);
      } finally {
        c.close();
      }
      const e = await assertRejects(
        () => MysqlConn.connect(base(db, { user: "ed", password: "wrong" })),
        MysqlError,
      );
      assertEquals(e.code, 1045);
    });

    await t.step("registerReplica + binlogDump from file/position", async () => {
      const c = await MysqlConn.connect(base(db));
      try {
        const [[file, pos]] = (await c.query("SHOW MASTER STATUS")).rows;
        await c.query("SET @master_binlog_checksum = 'CRC32'");
        await c.query("SET @master_heartbeat_period = 1000000000");
        await registerReplica(c, 9101);
        const it = binlogDump(c, { file: file!, position: Number(pos), serverId: 9101 });
        // First: a fake ROTATE (4) to the file, then the FORMAT_DESCRIPTION (15).
        const first = await next(it);
        assertEquals(first[4], 4);
        await db.query("INSERT INTO app.t VALUES (2, 'streamed', NULL)");
        const seen = await typesUntil(it, [23, 30]);
        assert(seen.includes(15), `types ${seen}`);
        assert(seen.includes(19), `TABLE_MAP missing: ${seen}`);
        const xid = await typesUntil(it, [16]);
        assertEquals(xid.at(-1), 16);
        const hosts = await db.query("SHOW SLAVE HOSTS");
        assert(hosts.some((h) => Number(h.Server_id) === 9101), JSON.stringify(hosts));
      } finally {
        c.close();
      }
    });

    await t.step("MariaDB GTID start (file '' position 4)", async () => {
      const [{ pos }] = await db.query("SELECT @@gtid_binlog_pos AS pos");
      assert(/^0-1-\d+$/.test(pos), pos);
      const c = await MysqlConn.connect(base(db));
      try {
        await c.query("SET @mariadb_slave_capability = 4");
        await c.query(`SET @slave_connect_state = '${pos}'`);
        await c.query("SET @slave_gtid_strict_mode = 0");
        await c.query("SET @master_binlog_checksum = 'CRC32'");
        await c.query("SET @master_heartbeat_period = 500000000");
        await registerReplica(c, 9102);
        const it = binlogDump(c, { file: "", position: 4, serverId: 9102 });
        await db.query("INSERT INTO app.t VALUES (3, 'gtid', X'01')");
        const seen = await typesUntil(it, [23, 30]);
        // ROTATE, FDE, GTID_LIST (163), then the new transaction's GTID (162) and TABLE_MAP.
        assertEquals(seen[0], 4);
        assert(seen.includes(163), `types ${seen}`);
        assert(seen.includes(162), `types ${seen}`);
        assert(seen.includes(19), `types ${seen}`);
        // The write carries the row: id 3 as a little-endian INT in the body.
        const [{ now }] = await db.query("SELECT @@gtid_binlog_pos AS now");
        assert(now !== pos);
      } finally {
        c.close();
      }
    });

    await t.step("binlogDump nonBlock ends at the end of the log; bad file throws", async () => {
      const c = await MysqlConn.connect(base(db));
      try {
        const [[file]] = (await c.query("SHOW MASTER STATUS")).rows;
        await c.query("SET @master_binlog_checksum = 'CRC32'");
        const types: number[] = [];
        for await (
          const ev of binlogDump(c, { file: file!, position: 4, serverId: 9103, nonBlock: true })
        ) types.push(ev[4]);
        assertEquals(types[0], 4);
        assert(types.includes(15) && types.includes(19) && types.includes(16), `${types}`);
      } finally {
        c.close();
      }
      const c2 = await MysqlConn.connect(base(db));
      try {
        await c2.query("SET @master_binlog_checksum = 'CRC32'");
        const e = await assertRejects(async () => {
          for await (
            const _ of binlogDump(c2, { file: "nope.000009", position: 4, serverId: 9104 })
          ) { /* no events */ }
        }, MysqlError);
        assertEquals(e.code, 1236);
      } finally {
        c2.close();
      }
    });
  } finally {
    await db.close();
    await certs.close();
  }
});
