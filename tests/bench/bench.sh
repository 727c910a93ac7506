#!/usr/bin/env bash
# bench.sh: `make bench`. Encoding throughput on mix_small.jsonl (one
# thread): the C library alone and SQL (bp_count) with bytepiece_80k, then
# bytepiece.eu.plus.80k against SentencePiece with the same vocabulary and
# scores (bytepiece.eu.plus.80k.sp.model), model compilation time and
# memory, and full-text search (bench_search.py: recall, precision, index
# size, indexing MB/s and query latency of the FTS5 tokenizers on train_zh
# and mix_small, against unicode61 and trigram). Ratios are against
# SentencePiece.
#   tests/bench/bench.sh BENCH_BINARY EXTENSION
set -eu
bench=$1
extension=$2
here=$(cd "$(dirname "$0")" && pwd)
shared=${SHARED_DATA:-$here/../../../shared}
python=${PYTHON:-/usr/bin/python3}
corpus=$shared/corpora/mix_small.jsonl
models=$shared/models
[ -f "$corpus" ] || { echo "bench: $corpus not found" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy, so that rebuilding during a run cannot disturb it.
cp "$extension" "$work/bytepiece.so"
extension=$work/bytepiece.so
db=$work/bench.db
"$here/../../sql/load_jsonl.sh" "$db" "$corpus" corpus

line() { # label seconds megabytes tokens rss reference_seconds
  awk -v label="$1" -v s="$2" -v mb="$3" -v tok="$4" -v rss="$5" -v ref="$6" 'BEGIN {
    ratio = ref > 0 ? sprintf("%.1fx", ref / s) : "-";
    printf "  %-54s %8.3f s %8.1f MB/s %10d tokens %7.1f MB peak %7s\n", label, s, mb / s, tok, rss / 1024, ratio }'
}

echo "Encoding $(basename "$corpus"): $(sqlite3 "$db" "SELECT count(*) FROM corpus") documents, one thread, best of 5"
echo "  (ratio = SentencePiece time / this time; peak = peak resident memory of the process)"
sp_model=$models/bytepiece.eu.plus.80k.sp.model
if $python -c "import sentencepiece" 2>/dev/null; then
  read -r _ sp_s sp_mb sp_tok sp_rss < <($python "$here/bench_sentencepiece.py" "$db" "$sp_model")
else
  echo "  (SentencePiece for $python not installed: apt-get install python3-sentencepiece)"
  sp_s=0 sp_mb=0 sp_tok=0 sp_rss=0
fi
for model in bytepiece.eu.plus.80k bytepiece_80k; do
  read -r _ s mb tok rss < <("$bench" lib "$db" "$models/$model.zip")
  line "bytepiece C library, $model" "$s" "$mb" "$tok" "$rss" "$sp_s"
  read -r _ s mb tok rss < <("$bench" sql "$db" "$models/$model.zip" "$extension")
  line "bytepiece SQL bp_count, $model" "$s" "$mb" "$tok" "$rss" "$sp_s"
done
[ "$sp_s" = 0 ] || line "SentencePiece, bytepiece.eu.plus.80k.sp.model" "$sp_s" "$sp_mb" "$sp_tok" "$sp_rss" "$sp_s"

echo
echo "Sampling (alpha 0.1, seeded per document), same corpus; ratio against SentencePiece's sampling"
echo "  (enable_sampling=True, alpha=0.1, nbest_size=-1)"
if [ "$sp_s" != 0 ]; then
  read -r _ sps_s sps_mb sps_tok sps_rss < <($python "$here/bench_sentencepiece.py" "$db" "$sp_model" 0.1)
else
  sps_s=0
fi
model=bytepiece.eu.plus.80k
read -r _ det_s _ _ _ < <("$bench" lib "$db" "$models/$model.zip")
read -r _ s mb tok rss < <("$bench" lib "$db" "$models/$model.zip" 0.1)
line "bytepiece C library, $model" "$s" "$mb" "$tok" "$rss" "$sps_s"
awk -v s="$s" -v d="$det_s" 'BEGIN { printf "  %-54s %8.2fx the deterministic time\n", "", s / d }'
read -r _ s mb tok rss < <("$bench" sql "$db" "$models/$model.zip" "$extension" 0.1)
line "bytepiece SQL bp_count(.., 0.1, rowid), $model" "$s" "$mb" "$tok" "$rss" "$sps_s"
[ "$sps_s" = 0 ] || line "SentencePiece sampling, $model.sp.model" "$sps_s" "$sps_mb" "$sps_tok" "$sps_rss" "$sps_s"

echo
echo "Compiling a stored model value (best of 20)"
for model in bytepiece_80k bytepiece.eu.plus.80k; do
  read -r _ s mb memory rss < <("$bench" compile "$models/$model.zip")
  awk -v m="$model" -v s="$s" -v mb="$mb" -v mem="$memory" 'BEGIN {
    printf "  %-54s %8.1f ms  value %5.2f MB  compiled %5.2f MB\n", m, s * 1000, mb, mem / 1048576 }'
done

echo
for name in train_zh mix_small; do
  search_corpus=$shared/corpora/$name.jsonl
  if [ -f "$search_corpus" ]; then
    $python "$here/bench_search.py" "$extension" "$models/bytepiece_80k.zip" "$search_corpus"
  else
    echo "Search: $search_corpus not found, skipped"
  fi
done
