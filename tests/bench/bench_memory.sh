#!/usr/bin/env bash
# bench_memory.sh: peak resident memory and time of bp_train under several
# max_memory caps (config A's options, 2 threads) on one corpus, and the
# digest of each model, which must not depend on the cap.
#   tests/bench/bench_memory.sh EXTENSION CORPUS.db [CAP...]
# CORPUS.db has a table corpus(text), such as make_big_corpus.sh builds; a
# cap of 0 is no limit, "default" leaves max_memory out.
set -eu
extension=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
corpus=$2
shift 2
caps=${*:-64 128 256 512 1024 0 default}
threads=${BENCH_THREADS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy, so that rebuilding during a long run cannot disturb it.
cp "$extension" "$work/bytepiece.so"
printf '%-8s %8s %9s  %s\n' max_memory seconds "peak MB" "model digest"
for cap in $caps; do
  options="\"order\": 6, \"vocab_size\": 8000, \"min_count\": 8, \"threads\": $threads"
  [ "$cap" = default ] || options="$options, \"max_memory\": $cap"
  /usr/bin/time -f "%e %M" -o "$work/time" sqlite3 "$corpus" ".load $work/bytepiece.so" \
    "SELECT hex(sha3(bp_train(text, '{$options}'))) FROM corpus" >"$work/out" 2>&1 || {
    cat "$work/out" >&2; exit 1; }
  read -r seconds kb <"$work/time"
  printf '%-10s %8.1f %9.0f  %.16s\n' "$cap" "$seconds" "$((kb / 1024))" "$(cat "$work/out")"
done
