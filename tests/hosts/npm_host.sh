#!/usr/bin/env bash
# npm_host.sh: the npm package of make npm, installed from its tarball
# (npm install --offline, it has no dependencies) into a fresh project next
# to better-sqlite3 12 (installed once into tests/hosts, better_sqlite3.sh,
# and linked in), checked there (npm_check.js, "npm: ..."), then the README's
# example examples/node.js in that project ("node-examples: ..."). Without
# Node and npm, one skip that says so.
#   tests/hosts/npm_host.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
name=node-examples
. "$here/package_common.sh"
skip() {
  echo "skipped npm: $1"
  echo "npm: 0 passed, 0 failed, 1 skipped"
  exit 0
}
command -v node >/dev/null && command -v npm >/dev/null || skip "node and npm not installed"
. "$here/better_sqlite3.sh"
ensure_better_sqlite3 || skip "npm install better-sqlite3@12 failed"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() {
  cat "$scratch/log"
  echo "FAILED npm: $1"
  echo "npm: 0 passed, 1 failed, 0 skipped"
  exit 1
}
make -s -C "$project" npm >"$scratch/log" 2>&1 || fail "make npm"
tarball=$(ls "$project"/dist/sqlite-bytepiece-*.tgz)
app=$scratch/app
mkdir "$app"
echo '{"name": "app", "private": true}' >"$app/package.json"
(cd "$app" && npm install --offline --no-audit --no-fund --silent "$tarball") >"$scratch/log" 2>&1 ||
  fail "npm install $tarball"
ln -s "$here/node_modules/better-sqlite3" "$app/node_modules/better-sqlite3"
cp "$here/npm_check.js" "$app/"
node "$app/npm_check.js"
npm_status=$?

so=$app/node_modules/sqlite-bytepiece/lib/bytepiece.so
mkdir "$app/example"
cp "$project/examples/node.js" "$app/example/"
example node.js "$app/example" "$so" "[37037,40950,36144,29161,30241,10177]
今天[天气]不错，我们去公园散步。" node "$app/example/node.js"
summary
[ "$npm_status" -eq 0 ] && [ "$failed" -eq 0 ]
