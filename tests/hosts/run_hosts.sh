#!/usr/bin/env bash
# run_hosts.sh: the extension in other SQLite hosts than the Tcl suite's:
# the sqlite3 shell, Python's sqlite3 module, a C program that links it
# statically, and Node's better-sqlite3 (run_node.sh). Each prints its own
# "hosts:" or "node:" line; a host that is not installed is skipped, saying so.
#   tests/hosts/run_hosts.sh BUILD_DIRECTORY EXTENSION
set -u
build=$1
extension=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
shared=${SHARED_DATA:-$project/../shared}
model=$shared/models/bytepiece_80k.zip
if [ ! -f "$model" ]; then
  echo "hosts: skipped ($model not found)"
  exit 0
fi
expected='[37037,40950,36144,29161,30241,10177]'

# The sqlite3 shell.
got=$(sqlite3 :memory: ".load ${extension%.so}" \
  "INSERT INTO bp_models(name, model) VALUES ('zh80k', bp_model_load('$model'))" \
  "SELECT bp_encode('今天天气不错 hello world 123', 'zh80k')" 2>&1)
if [ "$got" = "$expected" ]; then echo "hosts: 1 passed, 0 failed"
else echo "FAILED shell: $got"; echo "hosts: 0 passed, 1 failed"; fi

# Python's sqlite3 (Debian's python3: it can load extensions).
if /usr/bin/python3 -c "import sqlite3; sqlite3.connect(':memory:').enable_load_extension(True)" 2>/dev/null; then
  /usr/bin/python3 "$here/python_host.py" "$extension" "$model"
else
  echo "hosts: skipped (no python3 whose sqlite3 loads extensions)"
fi

# A statically linked C program.
"$build/static_host" "$model"

"$here/run_node.sh" "$extension"
