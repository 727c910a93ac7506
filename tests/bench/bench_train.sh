#!/usr/bin/env bash
# bench_train.sh: `make bench-train`. Training time, peak memory and the
# resulting compression (bytes per token on the training text) of bp_train
# with config A's options (order 6, min_count 8), side by side with
# SentencePiece's spm_train (unigram and BPE; identity normalization, byte
# fallback) at the same vocabulary size and thread count.
#   tests/bench/bench_train.sh EXTENSION [CORPUS...]
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

measure() { # prints "seconds peak_kb" of a command, its output discarded
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || {
    cat "$work/stderr" >&2; return 1; }
  cat "$work/time"
}

row() { # label seconds peak_kb bytes tokens
  awk -v l="$1" -v s="$2" -v kb="$3" -v b="$4" -v t="$5" 'BEGIN {
    printf "  %-34s %8.1f s %8.0f MB %8.3f bytes/token\n", l, s, kb / 1024, b / t }'
}

for corpus in $corpora; do
  jsonl=$shared/corpora/$corpus.jsonl
  [ -f "$jsonl" ] || { echo "bench-train: $jsonl not found" >&2; continue; }
  db=$work/$corpus.db
  sqlite3 "$db" <<SQL
.separator "$(printf '\036')" "\n"
CREATE TABLE lines(line TEXT);
.import '$jsonl' lines
CREATE TABLE corpus(text TEXT);
INSERT INTO corpus SELECT json_extract(line, '\$.text') FROM lines;
DROP TABLE lines;
VACUUM;
SQL
  sqlite3 "$db" "SELECT text FROM corpus" > "$work/$corpus.txt"
  megabytes=$(sqlite3 "$db" "SELECT printf('%.1f', sum(length(CAST(text AS BLOB))) / 1e6) FROM corpus")
  for size in $sizes; do
    for threads in $threads_list; do
      echo "$corpus ($megabytes MB), vocab_size $size, $threads thread(s)"
      options="{\"order\": 6, \"vocab_size\": $size, \"min_count\": 8, \"threads\": $threads}"
      read -r s kb < <(measure sqlite3 "$db" ".load $extension" \
        "INSERT INTO bp_models(name, model) SELECT 'trained', bp_train(text, '$options') FROM corpus")
      read -r bytes tokens < <(sqlite3 "$db" ".load $extension" \
        "SELECT sum(length(CAST(text AS BLOB))), sum(bp_count(text, 'trained')) FROM corpus;
         DELETE FROM bp_models WHERE name = 'trained';" | tr '|' ' ')
      row "bytepiece bp_train" "$s" "$kb" "$bytes" "$tokens"
      for type in unigram bpe; do
        prefix=$work/sp_${corpus}_${size}_$type
        read -r s kb < <(measure spm_train --input="$work/$corpus.txt" --model_prefix="$prefix" \
          --vocab_size="$size" --model_type=$type --normalization_rule_name=identity \
          --byte_fallback=true --num_threads="$threads" --max_sentence_length=100000 \
          --minloglevel=2)
        read -r _ bytes tokens < <($python "$here/sp_tokens.py" "$db" "$prefix.model")
        row "SentencePiece spm_train $type" "$s" "$kb" "$bytes" "$tokens"
      done
    done
  done
done
