#!/usr/bin/env bash
# shell_host.sh: the extension in the sqlite3 shell (.load), with the committed
# model tests/data/small.zip: the sample text's pinned ids (the same as in
# python_host.py, static_host.c, node_fts5.js and hosts.test) and back.
# Prints "shell: N passed, N failed, N skipped"; without the shell, the one
# skip says why.
#   tests/hosts/shell_host.sh EXTENSION MODEL.zip
set -u
extension=$1
model=$2
if ! command -v sqlite3 >/dev/null; then
  echo "skipped shell host: the sqlite3 shell is not installed"
  echo "shell: 0 passed, 0 failed, 1 skipped"
  exit 0
fi
text='  for (size_t i = 0; i < n; i++) return BP_OK; /* 天气 */'
expected='[792,113,306,108,46,46,720,69,83,98,82,78,553,232,167,172,233,179,151,262,50]'
passed=0
failed=0
check() {
  if [ "$2" = "$3" ]; then passed=$((passed + 1))
  else failed=$((failed + 1)); printf 'FAILED shell %s\n  expected: %s\n  got:      %s\n' "$1" "$3" "$2"; fi
}
sql() {
  sqlite3 :memory: ".load ${extension%.so}" \
    "INSERT INTO bp_models(name, model) VALUES ('small', bp_model_load('$model'))" "$1" 2>&1
}
check encode "$(sql "SELECT bp_encode('$text', 'small')")" "$expected"
check decode "$(sql "SELECT bp_decode('$expected', 'small')")" "$text"
echo "shell: $passed passed, $failed failed, 0 skipped"
[ "$failed" -eq 0 ]
