# shellcheck shell=bash
# better_sqlite3.sh: sourced by the Node runners (run_node.sh, npm_host.sh).
# ensure_better_sqlite3 installs better-sqlite3 12 from npm into
# tests/hosts/node_modules on first use (version 13 crashes on Node 20) and
# returns 1 when that fails. Needs $here set to tests/hosts.
ensure_better_sqlite3() {
  [ -d "$here/node_modules/better-sqlite3" ] && return 0
  (cd "$here" && npm install --no-audit --no-fund --silent better-sqlite3@12 >/dev/null 2>&1)
}
