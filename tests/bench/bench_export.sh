#!/usr/bin/env bash
# bench_export.sh: `make bench`, the token file export. For mix_small.jsonl
# and mix_dev.jsonl of ../shared, with bytepiece_80k (uint32 ids, <eos>
# after each document): bp_export with 1 and 2 threads (and 4 on a machine
# with 4 cores), against counting alone (SELECT sum(bp_count(...)), one
# thread) and a Python loop over bp_encode_packed writing the same .bin.
# Each line: the best of BENCH_RUNS (3) runs of the statement (or loop)
# alone, the model compiled before, in MB/s of text, the ratio to bp_export with
# one thread, and the peak resident memory of the whole process. Every .bin is
# checked to be byte-identical to the one-thread file. The machine's load
# (from /proc/loadavg) is printed before and after: ratios taken on a busy
# machine understate what the cores give; so does a machine whose two cores
# do not run two independent statements at full speed, which the bench
# measures too (two counts at once in two processes) and prints as the
# ceiling for 2 threads.
#   tests/bench/bench_export.sh EXTENSION
set -eu
extension=$1
here=$(cd "$(dirname "$0")" && pwd)
shared=${SHARED_DATA:-$here/../../../shared}
python=${PYTHON:-/usr/bin/python3}
runs=${BENCH_RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$extension" "$work/bytepiece.so"
extension=$work/bytepiece.so
cores=$(nproc)
thread_counts="1 2"
[ "$cores" -ge 4 ] && thread_counts="1 2 4"

# write_script SQL: a sqlite3 shell script in $work/script that loads the
# extension, compiles the model with a first statement, then times SQL.
write_script() {
  printf '.load %s sqlite3_bytepiece_init\nSELECT bp_count('"'x'"', '"'bytepiece_80k'"');\n.timer on\n%s\n' \
    "$extension" "$1" >"$work/script"
}

# faster SECONDS BEST: SECONDS is below BEST, or BEST is empty.
faster() { [ -z "$2" ] || awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# best SQL: "seconds peak_kb" of the fastest of $runs runs of SQL in the
# sqlite3 shell, timed by the shell (.timer), after a first statement that
# compiles the model, so that only the statement itself counts; the peak is
# the whole process's.
best_sql() {
  local best_s="" best_kb=0 s kb
  write_script "$1"
  for _ in $(seq "$runs"); do
    # An export replacing the last run's files would also time the kernel
    # freeing them (about 15 ms for mix_small's .bin here).
    [ -z "${2:-}" ] || rm -f "$2.bin" "$2.idx"
    /usr/bin/time -f "%M" -o "$work/time" sqlite3 "$db" <"$work/script" >"$work/out"
    s=$(awk '/^Run Time:/ { s = $4 } END { print s }' "$work/out")
    kb=$(cat "$work/time")
    if faster "$s" "$best_s"; then
      best_s=$s best_kb=$kb
    fi
  done
  echo "$best_s $best_kb"
}

# best_pair_sql: "seconds" of the fastest of $runs runs of SQL in two sqlite3
# shells at once, each run's time the slower shell's: how two independent
# one-thread statements share this machine's cores.
best_pair_sql() {
  local best_s="" s
  write_script "$1"
  for _ in $(seq "$runs"); do
    sqlite3 "$db" <"$work/script" >"$work/out1" &
    sqlite3 "$db" <"$work/script" >"$work/out2"
    wait
    s=$(cat "$work/out1" "$work/out2" | awk '/^Run Time:/ { if ($4 > s) s = $4 } END { print s }')
    if faster "$s" "$best_s"; then
      best_s=$s
    fi
  done
  echo "$best_s"
}

# best_python: the same for the Python loop, timed around the loop.
best_python() {
  local best_s="" best_kb=0 s kb
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%M" -o "$work/time" "$python" -c '
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
db.enable_load_extension(True)
db.load_extension(sys.argv[2])
db.execute("SELECT bp_count(?, ?)", ("x", "bytepiece_80k")).fetchone()
started = time.monotonic()
with open(sys.argv[3], "wb") as out:
    for (blob,) in db.execute("SELECT bp_encode_packed(text, ?, ?) FROM corpus ORDER BY rowid",
                              ("bytepiece_80k", "{\"dtype\":\"uint32\",\"eos\":true}")):
        out.write(blob)
print(time.monotonic() - started)
' "$db" "$extension" "$work/python.bin" >"$work/out"
    s=$(cat "$work/out")
    kb=$(cat "$work/time")
    if faster "$s" "$best_s"; then
      best_s=$s best_kb=$kb
    fi
  done
  echo "$best_s $best_kb"
}

line() { # label seconds megabytes peak_kb one_thread_seconds
  awk -v label="$1" -v s="$2" -v mb="$3" -v kb="$4" -v one="$5" 'BEGIN {
    printf "  %-46s %7.2f s %7.1f MB/s %6.2fx %8.1f MB peak\n", label, s, mb / s, one / s, kb / 1024 }'
}

echo "Exporting tokens (bp_export), bytepiece_80k, uint32, eos; best of $runs runs"
echo "  ($cores cores; load average $(cut -d' ' -f1-3 /proc/loadavg); ratio = one-thread bp_export time / this time)"
for name in mix_small mix_dev; do
  corpus=$shared/corpora/$name.jsonl
  if [ ! -f "$corpus" ]; then
    echo "  $name.jsonl not found in $shared/corpora: skipped"
    continue
  fi
  db=$work/$name.db
  rm -f "$db"
  "$here/../../sql/load_jsonl.sh" "$db" "$corpus" corpus
  read -r rows megabytes < <(sqlite3 -separator ' ' "$db" "SELECT count(*), sum(length(CAST(text AS BLOB))) / 1e6 FROM corpus")
  echo "$name.jsonl: $rows documents, $megabytes MB"
  options="json_object('model', 'bytepiece_80k', 'dtype', 'uint32', 'eos', 1, 'threads', THREADS)"
  export_sql() { # threads prefix
    echo "SELECT bp_export(text, '$2', ${options/THREADS/$1}) FROM (SELECT text FROM corpus ORDER BY rowid);"
  }
  read -r one one_kb < <(best_sql "$(export_sql 1 "$work/t1")" "$work/t1")
  for threads in $thread_counts; do
    if [ "$threads" = 1 ]; then
      s=$one kb=$one_kb
    else
      read -r s kb < <(best_sql "$(export_sql "$threads" "$work/t$threads")" "$work/t$threads")
      cmp -s "$work/t1.bin" "$work/t$threads.bin" || { echo "bench: $threads threads wrote another .bin" >&2; exit 1; }
      cmp -s "$work/t1.idx" "$work/t$threads.idx" || { echo "bench: $threads threads wrote another .idx" >&2; exit 1; }
    fi
    line "bp_export, $threads thread$([ "$threads" = 1 ] || echo s)" "$s" "$megabytes" "$kb" "$one"
  done
  count_sql="SELECT sum(bp_count(text, 'bytepiece_80k')) FROM corpus;"
  read -r s kb < <(best_sql "$count_sql")
  line "SELECT sum(bp_count(...)), 1 thread (no file)" "$s" "$megabytes" "$kb" "$one"
  # What the cores give, whatever the code: if two independent counts at
  # once each take longer than one alone, no 2 threads can reach 2x.
  together=$(best_pair_sql "$count_sql")
  awk -v alone="$s" -v together="$together" 'BEGIN {
    printf "  %-46s %7.2f s: %.2fx one alone, so 2 threads can give at most %.2fx here\n",
      "two such counts at once, in two processes", together, together / alone, 2 * alone / together }'
  read -r s kb < <(best_python)
  cmp -s "$work/t1.bin" "$work/python.bin" || { echo "bench: the Python loop wrote another .bin" >&2; exit 1; }
  line "Python loop over bp_encode_packed, 1 thread" "$s" "$megabytes" "$kb" "$one"
  rm -f "$db" "$work"/*.bin "$work"/*.idx
done
echo "  (load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
