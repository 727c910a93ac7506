#!/usr/bin/env bash
# run_node.sh: the Node host test, when Node and npm are at hand. Installs
# better-sqlite3 12 from npm into tests/hosts on first use
# (better_sqlite3.sh), builds the extension once more against the SQLite headers it bundles, and runs
# node_fts5.js with both builds and the given model (tests/data/small.zip).
# When it cannot run it prints why and "node: 0 passed, 0 failed, 1 skipped".
#   tests/hosts/run_node.sh EXTENSION MODEL.zip
set -u
extension=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
model=$2
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
skip() {
  echo "skipped node host: $1"
  echo "node: 0 passed, 0 failed, 1 skipped"
  exit 0
}
command -v node >/dev/null && command -v npm >/dev/null || skip "node and npm not installed"
. "$here/better_sqlite3.sh"
ensure_better_sqlite3 || skip "npm install better-sqlite3@12 failed"
headers=$here/node_modules/better-sqlite3/deps/sqlite3
[ -f "$headers/sqlite3.h" ] || skip "better-sqlite3 ships no sqlite3.h"
build=$project/build-node
if ! make -s -C "$project" BUILD="$build" SHARED="$build/bytepiece.so" \
  CFLAGS="-O2 -g -Wno-missing-field-initializers -I$headers" "$build/bytepiece.so" >/dev/null; then
  echo "FAILED node: the build against better-sqlite3's headers"
  echo "node: 0 passed, 1 failed, 0 skipped"
  exit 1
fi
node "$here/node_fts5.js" "$extension" "$build/bytepiece.so" "$model"
