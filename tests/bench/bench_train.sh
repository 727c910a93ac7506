#!/usr/bin/env bash
# bench_train.sh: `make bench-train`. Training time, peak memory and the
# resulting compression (bytes per token on the training text) of bp_train
# with config A's options (order 6, min_count 8), side by side with
# SentencePiece's spm_train (unigram and BPE; identity normalization, byte
# fallback) at the same vocabulary size and thread count; then the same
# training in rounds over 4 shards in one process, round by round
# (bench_rounds.tcl), and over 4 shards on a 2-worker Dask cluster
# (bench_shards.py).
#   tests/bench/bench_train.sh EXTENSION [CORPUS...]
#   BENCH_BIG_CORPUS=/tmp/big.db tests/bench/bench_train.sh ...  the rounds
#     on that corpus too (make_big_corpus.sh builds one; about 10 minutes)
set -eu
extension=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
here=$(cd "$(dirname "$0")" && pwd)
shared=${SHARED_DATA:-$here/../../../shared}
python=${PYTHON:-/usr/bin/python3}
corpora=${*:-mix_small mix_dev}
sizes=${BENCH_VOCAB_SIZES:-8000 32000}
threads_list=${BENCH_THREADS:-1 2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy, so that rebuilding during a long run cannot disturb it.
cp "$extension" "$work/bytepiece.so"
extension=$work/bytepiece.so

measure() { # prints "seconds peak_kb" of a command, its output discarded
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || {
    cat "$work/stderr" >&2; return 1; }
  cat "$work/time"
}

row() { # label seconds peak_kb bytes tokens vocab_size
  awk -v l="$1" -v s="$2" -v kb="$3" -v b="$4" -v t="$5" -v v="$6" 'BEGIN {
    printf "  %-40s %7.1f s %6.0f MB peak %7.3f bytes/token  vocab %d\n", l, s, kb / 1024, b / t, v }'
}

# bp_train with `options` on corpus db: prints "seconds peak_kb bytes tokens vocab_size".
train_bytepiece() {
  local db=$1 options=$2
  read -r s kb < <(measure sqlite3 "$db" ".load $extension" \
    "INSERT INTO bp_models(name, model) SELECT 'trained', bp_train(text, '$options') FROM corpus")
  read -r bytes tokens vocab < <(sqlite3 "$db" ".load $extension" \
    "SELECT sum(length(CAST(text AS BLOB))), sum(bp_count(text, 'trained')),
            (SELECT vocab_size FROM bp_models WHERE name = 'trained') FROM corpus;
     DELETE FROM bp_models WHERE name = 'trained';" | tr '|' ' ')
  echo "$s $kb $bytes $tokens $vocab"
}

for corpus in $corpora; do
  jsonl=$shared/corpora/$corpus.jsonl
  [ -f "$jsonl" ] || { echo "bench-train: $jsonl not found" >&2; continue; }
  db=$work/$corpus.db
  "$here/../../sql/load_jsonl.sh" "$db" "$jsonl" corpus
  sqlite3 "$db" "SELECT text FROM corpus" > "$work/$corpus.txt"
  megabytes=$(sqlite3 "$db" "SELECT printf('%.1f', sum(length(CAST(text AS BLOB))) / 1e6) FROM corpus")
  for size in $sizes; do
    for threads in $threads_list; do
      echo "$corpus ($megabytes MB), vocab_size $size, $threads thread(s)"
      options="{\"order\": 6, \"vocab_size\": $size, \"min_count\": 8, \"threads\": $threads}"
      read -r s kb bytes tokens vocab < <(train_bytepiece "$db" "$options")
      row "bytepiece bp_train" "$s" "$kb" "$bytes" "$tokens" "$vocab"
      command -v spm_train >/dev/null ||
        { echo "  (spm_train not installed: apt-get install sentencepiece python3-sentencepiece)"; continue; }
      for type in unigram bpe; do
        prefix=$work/sp_${corpus}_${size}_$type
        read -r s kb < <(measure spm_train --input="$work/$corpus.txt" --model_prefix="$prefix" \
          --vocab_size="$size" --model_type=$type --normalization_rule_name=identity \
          --byte_fallback=true --num_threads="$threads" --max_sentence_length=100000 \
          --minloglevel=2)
        read -r _ bytes tokens < <($python "$here/sp_tokens.py" "$db" "$prefix.model")
        row "SentencePiece spm_train $type" "$s" "$kb" "$bytes" "$tokens" "$size"
      done
    done
  done
  # Within a memory cap: spills to temporary files, the same model.
  cap=${BENCH_MAX_MEMORY:-64}
  size=${sizes%% *}
  echo "$corpus ($megabytes MB), vocab_size $size, 1 thread, max_memory $cap MB"
  options="{\"order\": 6, \"vocab_size\": $size, \"min_count\": 8, \"max_memory\": $cap}"
  read -r s kb bytes tokens vocab < <(train_bytepiece "$db" "$options")
  row "bytepiece bp_train, max_memory $cap" "$s" "$kb" "$bytes" "$tokens" "$vocab"
done
# In rounds over 4 shards: per round, counting against adding up, and the
# sizes of partials and states (tests/bench/bench_rounds.tcl).
echo "training in rounds: 4 shards, one process"
rounds_corpora=()
for corpus in $corpora; do rounds_corpora+=("$shared/corpora/$corpus.jsonl"); done
[ -z "${BENCH_BIG_CORPUS:-}" ] || rounds_corpora+=("$BENCH_BIG_CORPUS")
tclsh "$here/bench_rounds.tcl" "$extension" 4 '{"order": 6, "vocab_size": 8000, "min_count": 8}' \
  "${rounds_corpora[@]}"
# Over shards: 4 shard files on a 2-worker Dask LocalCluster against bp_train
# in one process (tests/bench/bench_shards.py).
echo "sqlite_bytepiece.distributed: 4 shards, LocalCluster of 2 worker processes"
# shellcheck disable=SC2086
"$python" "$here/bench_shards.py" "$extension" "$shared" $corpora
