# Shared by scripts/*: install what is missing (Deno from npm, servers from Debian's apt).
# Nothing is downloaded from anywhere but the npm registry and Debian's archive.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DENO_VERSION="2.9.6"
TOOLS="$ROOT/.tools"

log() { printf '%s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1
  fi
}

# Deno: the pinned npm package `deno`, installed under .tools/ unless the right one is on PATH.
ensure_deno() {
  if command -v deno >/dev/null && deno --version 2>/dev/null | grep -q "deno $DENO_VERSION "; then
    return
  fi
  if [ ! -x "$TOOLS/node_modules/.bin/deno" ]; then
    log "installing deno $DENO_VERSION from npm into .tools/"
    mkdir -p "$TOOLS"
    (cd "$TOOLS" && { [ -f package.json ] || echo '{"private":true}' > package.json; } &&
      npm install --no-audit --no-fund --silent "deno@$DENO_VERSION" >&2)
  fi
  export PATH="$TOOLS/node_modules/.bin:$PATH"
}

APT_UPDATED=""
apt_install() {
  [ "$#" -gt 0 ] || return 0
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    as_root apt-get update -qq >&2
    APT_UPDATED=1
  fi
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

have_pg() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }

# Servers the tests and the demo start: PostgreSQL, etcd, MariaDB, Patroni, openssl; and the
# tools that look at sync from outside: headless Chromium (status page test) and tmux (progress
# display capture).
ensure_servers() {
  local want=()
  have_pg || want+=(postgresql postgresql-contrib)
  command -v etcd >/dev/null || want+=(etcd-server)
  command -v etcdctl >/dev/null || want+=(etcd-client)
  command -v mariadbd >/dev/null || want+=(mariadb-server)
  command -v mysqldump >/dev/null || want+=(mariadb-client)
  command -v patroni >/dev/null || want+=(patroni)
  command -v openssl >/dev/null || want+=(openssl)
  command -v setpriv >/dev/null || want+=(util-linux)
  command -v chromium >/dev/null || want+=(chromium)
  command -v tmux >/dev/null || want+=(tmux)
  apt_install "${want[@]}"
  # Debian starts the packaged servers on install where it can; the tests run their own.
  as_root sh -c 'for s in postgresql mariadb etcd patroni; do service $s stop >/dev/null 2>&1 || true; done'
  PG_BIN="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")"
  export PG_BIN
}
