#!/usr/bin/env bash
# Runs each libFuzzer target for a set time from its committed seeds and
# reports its executions; a target that finds a crash, exits non-zero or runs
# no input fails. The last line is "fuzz: N passed, N failed"; the exit
# status is 1 if any target failed.
#   tests/fuzz/run.sh BUILD_DIRECTORY SECONDS TARGET...
set -u
build=$1
seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
passed=0
failed=0
for target in "$@"; do
  corpus="$build/corpus/$target"
  mkdir -p "$corpus" "$build/crashes"
  log="$build/$target.log"
  ASAN_OPTIONS=detect_leaks=1 "$build/$target" -max_total_time="$seconds" -print_final_stats=1 \
    -rss_limit_mb=4096 -timeout=60 -artifact_prefix="$build/crashes/$target-" \
    "$corpus" "$here/seeds/$target" >"$log" 2>&1
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$status" -eq 0 ] && [ "${runs:-0}" -gt 0 ]; then
    passed=$((passed + 1))
    echo "fuzz $target: $runs executions in ${seconds} s, no crash"
  elif [ "$status" -eq 0 ]; then
    # Exiting 0 without running an input checks nothing.
    failed=$((failed + 1))
    echo "FAILED fuzz $target: it ran no input (see $log)"
  else
    failed=$((failed + 1))
    echo "FAILED fuzz $target after ${runs:-?} executions (see $log):"
    grep -m 5 -E "ERROR|SUMMARY|Test unit written" "$log" || tail -n 3 "$log"
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
