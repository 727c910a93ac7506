#!/usr/bin/env bash
# run_node.sh: the Node host test, when Node and npm are at hand. Installs
# better-sqlite3 12 from npm into tests/hosts, builds the extension once
# more against the SQLite headers it bundles, and runs node_fts5.js with
# both builds. Prints "node: skipped (...)" when it cannot run.
#   tests/hosts/run_node.sh EXTENSION
set -u
extension=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
shared=${SHARED_DATA:-$project/../shared}
model=$shared/models/bytepiece_80k.zip
skip() { echo "node: skipped ($1)"; exit 0; }
command -v node >/dev/null && command -v npm >/dev/null || skip "node and npm not installed"
[ -f "$model" ] || skip "$model not found"
if [ ! -d "$here/node_modules/better-sqlite3" ]; then
  (cd "$here" && npm install --no-audit --no-fund --silent better-sqlite3@12 >/dev/null 2>&1) ||
    skip "npm install better-sqlite3@12 failed"
fi
headers=$here/node_modules/better-sqlite3/deps/sqlite3
[ -f "$headers/sqlite3.h" ] || skip "better-sqlite3 ships no sqlite3.h"
build=$project/build-node
make -s -C "$project" BUILD="$build" SHARED="$build/bytepiece.so" \
  CFLAGS="-O2 -g -Wno-missing-field-initializers -I$headers" "$build/bytepiece.so" >/dev/null ||
  { echo "node: 0 passed, 1 failed (build against the bundled headers)"; exit 1; }
node "$here/node_fts5.js" "$extension" "$build/bytepiece.so" "$model"
