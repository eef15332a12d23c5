#!/usr/bin/env bash
# Regenerates tests/fixtures/mysql/: a real MariaDB binlog covering every column type and
# event kind, the matching mysqldump output, and the tables' information_schema rows.
# Starts a private mariadbd in a temp dir (socket only, no TCP) and stops it by PID.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/tests/fixtures/mysql"
TMP="$(mktemp -d /tmp/mysql-fixtures.XXXXXX)"
SOCK="$TMP/sock"
PID=""

cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

mariadb-install-db --no-defaults --user=root --datadir="$TMP/data" --auth-root-authentication-method=normal \
  >"$TMP/install.log" 2>&1

# Fixed time zone and server identity so the capture is reproducible apart from timestamps.
TZ=UTC mariadbd --no-defaults --user=root --datadir="$TMP/data" --socket="$SOCK" --skip-networking \
  --pid-file="$TMP/pid" --log-error="$TMP/error.log" \
  --log-bin="$TMP/data/bin" --binlog-format=ROW --binlog-row-image=FULL --server-id=1 \
  --binlog-checksum=CRC32 --gtid-domain-id=0 --default-time-zone=+00:00 \
  --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci &
PID=$!

for _ in $(seq 1 100); do
  [ -S "$SOCK" ] && mariadb --no-defaults -S "$SOCK" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$TMP/error.log" >&2; exit 1; }
  sleep 0.2
done

sql() { mariadb --no-defaults -S "$SOCK" -uroot --default-character-set=utf8mb4 "$@"; }

sql -e 'RESET MASTER'

# Schema and the rows that go into the dump.
sql <<'SQL'
CREATE DATABASE fx CHARACTER SET utf8mb4;
USE fx;
CREATE TABLE ints (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  bo BOOLEAN
);
CREATE TABLE nums (
  id INT PRIMARY KEY,
  d DECIMAL(10,2), d2 DECIMAL(30,10), d3 DECIMAL(5,0), d4 DECIMAL(65,30) UNSIGNED,
  f FLOAT, db DOUBLE,
  b1 BIT(1), b10 BIT(10), b64 BIT(64)
);
CREATE TABLE times (
  id INT PRIMARY KEY,
  y YEAR, dt DATE, tm TIME, tm3 TIME(3), tm6 TIME(6),
  dtt DATETIME, dtt1 DATETIME(1), dtt6 DATETIME(6),
  ts TIMESTAMP NULL DEFAULT NULL, ts2 TIMESTAMP(2) NULL DEFAULT NULL, ts6 TIMESTAMP(6) NULL DEFAULT NULL
);
CREATE TABLE strs (
  id INT PRIMARY KEY,
  c CHAR(10), vc VARCHAR(300), vl VARCHAR(50) CHARACTER SET latin1, v3 VARCHAR(50) CHARACTER SET utf8mb3,
  cl CHAR(5) CHARACTER SET latin1, vbin VARCHAR(20) COLLATE utf8mb4_bin,
  tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT
);
CREATE TABLE bins (
  id INT PRIMARY KEY,
  b BINARY(4), vb VARBINARY(300), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB
);
CREATE TABLE misc (
  id INT PRIMARY KEY,
  e ENUM('small','medium','large'), s SET('red','green','blue','x y'), j JSON,
  g GEOMETRY, p POINT
);
CREATE TABLE comp (
  a VARCHAR(10), b INT, v TEXT, PRIMARY KEY (a, b)
);
SET NAMES utf8mb4;
SET SESSION sql_mode = '';  -- allows the invalid ENUM value '' (index 0)
INSERT INTO ints VALUES
  (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
   -9223372036854775808, 18446744073709551615, 1),
  (2, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, 0),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, -1, 1, -1, 1, -1, 1, -1, 1, -1, 9007199254740993, 1);
INSERT INTO nums VALUES
  (1, 12345678.90, -12345678901234567890.0123456789, 99999,
   12345678901234567890123456789012345.123456789012345678901234567890,
   3.1415927, 2.718281828459045, b'1', b'1010101010', b'1111111111111111111111111111111111111111111111111111111111111111'),
  (2, -0.01, 0.0000000001, -5, 0, -1.5e-7, 1e300, b'0', b'0', b'11111111111111111111111111111111111111111111111111111'),
  (3, 0, 0, 0, 0.000000000000000000000000000001, 0, 0, NULL, NULL, NULL),
  (4, -99999999.99, 1.5, 1, 1, 123456789, 0.1, b'1', b'1', b'100000000000000000000000000000000000000000000000000001'),
  (5, 100, -0.5, -99999, 2, 1e20, 1.7976931348623157e308, NULL, b'1111111111', NULL),
  (6, NULL, NULL, NULL, NULL, 0.1, -2.2250738585072014e-308, NULL, NULL, NULL),
  (7, 1.5, 1, 1, 1, 1e-10, 123456789012345680000, NULL, NULL, NULL),
  (8, 1.5, 1, 1, 1, -3.40282e38, 1e15, NULL, NULL, NULL),
  (9, 1.5, 1, 1, 1, 1.17549435e-38, 1e16, NULL, NULL, NULL),
  (10, 1.5, 1, 1, 1, 100000, 123456.789, NULL, NULL, NULL),
  (11, 1.5, 1, 1, 1, 1000000, 0.000123456789, NULL, NULL, NULL),
  (12, 1.5, 1, 1, 1, 0.0001, 1e-5, NULL, NULL, NULL),
  (13, 1.5, 1, 1, 1, 123.456, 1e-300, NULL, NULL, NULL);
INSERT INTO times VALUES
  (1, 2024, '2024-02-29', '12:34:56', '-838:59:59.000', '838:59:59.000000',
   '2024-02-29 23:59:59', '2024-02-29 23:59:59.9', '1000-01-01 00:00:00.000001',
   '2024-02-29 23:59:59', '2038-01-19 03:14:07.99', '1970-01-01 00:00:01.000001'),
  (2, 1901, '0000-00-00', '-00:00:01', '00:00:00.5', '-12:00:00.000001',
   '0000-00-00 00:00:00', '9999-12-31 23:59:59.9', '2000-01-01 00:00:00.123456',
   '0000-00-00 00:00:00', '2000-01-01 00:00:00.01', '2000-06-15 12:30:45.5'),
  (3, 0, '2000-00-00', '00:00:00', '-00:00:00.001', '100:00:00.1',
   '2000-00-00 00:00:00', '2000-01-01 00:00:00.0', '2000-01-01 00:00:00',
   NULL, NULL, NULL),
  (4, 2155, '9999-12-31', '-838:59:59', NULL, '-00:00:00.000001', NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO strs VALUES
  (1, 'abc', 'héllo wörld ✓ 😀', 'café', 'naïve ✓', 'ÿ', 'Bin', 't', 'text', 'medium', 'long'),
  (2, '', '', '', '', '', '', '', '', '', ''),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 'q\'"\\', 'esc: \0 \b \n \r \t \Z \\ % _ end', 'a\nb', 'tab\there', 'x  ', 'y ', '\\%\_', '"quoted"', 'line1\nline2', REPEAT('ab', 200)),
  (5, '  pad', REPEAT('é', 300), 'Ä', '日本', 'z', '', 'ü', CONCAT(REPEAT('x', 1000), '✓'), 'm', 'l');
INSERT INTO bins VALUES
  (1, 0x00010203, 0xDEADBEEF00, 0x00, 0x27225C0A0D091A00, 0xFFFE, 0x61),
  (2, 0x61000000, '', '', '', '', ''),
  (3, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 'ab', REPEAT(0xA5, 300), 'text\'s', 0x5C30, UNHEX(REPEAT('00FF', 200)), 'x');
INSERT INTO misc VALUES
  (1, 'medium', 'red,blue', '{"a": 1, "b": [true, null, "x"], "c": {"d": 1.5}}',
   ST_GeomFromText('LINESTRING(0 0, 1 1, 2 0.5)'), POINT(1.5, -2)),
  (2, 'small', '', '[]', NULL, NULL),
  (3, NULL, NULL, NULL, NULL, NULL),
  (4, 'large', 'red,green,blue,x y', '"just a string"', ST_GeomFromText('POINT(0 0)'), POINT(0, 0)),
  (5, '', 'green', '123.456e2', NULL, NULL);
INSERT INTO comp VALUES ('a', 1, 'one'), ('a', 2, 'two'), ('b/c', -1, 'slash');
SQL

# The dump, at a snapshot with binlog coordinates and GTID (as the driver runs it).
mariadb-dump --no-defaults -S "$SOCK" -uroot --single-transaction --master-data=2 --gtid \
  --hex-blob --complete-insert --skip-comments=false --tz-utc --default-character-set=utf8mb4 \
  --databases fx >"$TMP/dump.sql"
# The same data without --hex-blob or --complete-insert: binary columns as escaped strings.
mariadb-dump --no-defaults -S "$SOCK" -uroot --single-transaction --master-data=2 \
  --skip-extended-insert --default-character-set=utf8mb4 --databases fx >"$TMP/dump-plain.sql"

# Information_schema rows the driver would read (before the ALTERs below).
columns_json() {
  sql -N -B -r -e "SELECT JSON_ARRAYAGG(JSON_OBJECT(
      'schema', TABLE_SCHEMA, 'table', TABLE_NAME, 'name', COLUMN_NAME, 'pos', ORDINAL_POSITION,
      'dataType', DATA_TYPE, 'columnType', COLUMN_TYPE, 'charset', CHARACTER_SET_NAME,
      'precision', NUMERIC_PRECISION, 'scale', NUMERIC_SCALE, 'fsp', DATETIME_PRECISION,
      'key', COLUMN_KEY,
      'json', EXISTS(SELECT 1 FROM information_schema.CHECK_CONSTRAINTS k
        WHERE k.CONSTRAINT_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME
          AND k.CHECK_CLAUSE = CONCAT('json_valid(\`', c.COLUMN_NAME, '\`)')) = 1)
      ORDER BY TABLE_NAME, ORDINAL_POSITION)
    FROM information_schema.COLUMNS c WHERE TABLE_SCHEMA = 'fx'"
}
columns_json >"$TMP/columns-before.json"

# The stream: the same rows again (copied into twin tables, so stream and dump can be
# compared), updates, deletes, a rollback, DDL, rotation, full metadata, compressed events.
sql fx <<'SQL'
SET NAMES utf8mb4;
CREATE TABLE ints2 LIKE ints; INSERT INTO ints2 SELECT * FROM ints;
CREATE TABLE nums2 LIKE nums; INSERT INTO nums2 SELECT * FROM nums;
CREATE TABLE times2 LIKE times; INSERT INTO times2 SELECT * FROM times;
CREATE TABLE strs2 LIKE strs; INSERT INTO strs2 SELECT * FROM strs;
CREATE TABLE bins2 LIKE bins; INSERT INTO bins2 SELECT * FROM bins;
CREATE TABLE misc2 LIKE misc; INSERT INTO misc2 SELECT * FROM misc;
CREATE TABLE comp2 LIKE comp; INSERT INTO comp2 SELECT * FROM comp;
BEGIN;
UPDATE comp SET v = 'uno' WHERE a = 'a' AND b = 1;
UPDATE ints SET bi = bi + 1 WHERE id = 4;
DELETE FROM comp WHERE a = 'b/c';
COMMIT;
BEGIN;
INSERT INTO comp VALUES ('rolled', 0, 'back');
ROLLBACK;
ALTER TABLE comp ADD COLUMN extra INT DEFAULT 7 AFTER b;
INSERT INTO comp VALUES ('c', 3, 8, 'after alter');
ALTER TABLE comp DROP COLUMN extra;
ALTER TABLE comp MODIFY COLUMN v VARCHAR(20) CHARACTER SET latin1;
INSERT INTO comp VALUES ('d', 4, 'modified');
RENAME TABLE comp2 TO comp3;
TRUNCATE TABLE comp3;
FLUSH BINARY LOGS;
SET GLOBAL binlog_row_metadata = FULL;
SQL
# New session: binlog_row_metadata is read per session from the global.
sql fx <<'SQL'
SET NAMES utf8mb4;
CREATE TABLE ints3 LIKE ints; INSERT INTO ints3 SELECT * FROM ints;
CREATE TABLE strs3 LIKE strs; INSERT INTO strs3 SELECT * FROM strs;
CREATE TABLE misc3 LIKE misc; INSERT INTO misc3 SELECT * FROM misc;
CREATE TABLE times3 LIKE times; INSERT INTO times3 SELECT * FROM times;
UPDATE misc3 SET e = 'small', s = 'green', j = '{"k": [1, 2]}' WHERE id = 1;
DELETE FROM strs3 WHERE id = 5;
SET GLOBAL log_bin_compress = ON;
SET GLOBAL log_bin_compress_min_len = 10;
SQL
sql fx <<'SQL'
SET NAMES utf8mb4;
CREATE TABLE nums3 LIKE nums; INSERT INTO nums3 SELECT * FROM nums;
UPDATE nums3 SET d = 1.25 WHERE id = 1;
DELETE FROM nums3 WHERE id = 2;
SET GLOBAL log_bin_compress = OFF;
FLUSH BINARY LOGS;
SQL

columns_json >"$TMP/columns-after.json"

# Stop the server first so the binlog files are complete and closed.
kill "$PID"
for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
PID=""

mkdir -p "$OUT"
rm -f "$OUT"/bin.0* "$OUT"/*.sql "$OUT"/columns-*.json
cp "$TMP/data/bin.000001" "$TMP/data/bin.000002" "$TMP/data/bin.000003" "$OUT/"
cp "$TMP/dump.sql" "$TMP/dump-plain.sql" "$TMP/columns-before.json" "$TMP/columns-after.json" "$OUT/"
mariadbd --version >"$OUT/server-version.txt"
ls -l "$OUT" >&2
