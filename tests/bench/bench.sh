#!/usr/bin/env bash
# bench.sh: `make bench`. Encoding throughput on mix_small.jsonl (one
# thread): the C library alone and SQL (bp_count) with bytepiece_80k, then
# bytepiece.eu.plus.80k against SentencePiece with the same vocabulary and
# scores (bytepiece.eu.plus.80k.sp.model), and SQL bp_encode (what its JSON
# output costs on top of counting); model compilation time and
# memory; short rows (200,000 rows of 20-60 bytes cut from the corpus), where
# the cost per call counts; and full-text search (bench_search.py: recall,
# precision, index size, indexing MB/s and query latency of the FTS5
# tokenizers on train_zh and mix_small, against unicode61 and trigram).
# Ratios are against SentencePiece, and against the previous release: the
# last tag (git describe --tags --abbrev=0), built once from git archive into
# build/release-TAG-COMMIT and kept there, whose own bench_encode and
# extension run each encoding line right after this version's. With valgrind
# installed, each encoding line also gives instructions per input byte
# (cachegrind: one run subtracted from two, so loading and startup cancel
# out), a figure the machine's load does not move, for both versions;
# BENCH_INSTRUCTIONS=0 skips it, BENCH_RELEASE=0 the previous release.
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

line() { # label seconds megabytes tokens rss reference_seconds [instructions_per_byte]
  awk -v label="$1" -v s="$2" -v mb="$3" -v tok="$4" -v rss="$5" -v ref="$6" -v ipb="${7:-}" 'BEGIN {
    ratio = ref > 0 ? sprintf("%.1fx", ref / s) : "-";
    printf "  %-54s %8.3f s %8.1f MB/s %10d tokens %7.1f MB peak %7s", label, s, mb / s, tok, rss / 1024, ratio;
    if (ipb != "") printf " %6s instr/byte", ipb;
    printf "\n" }'
}

# The previous release: the last tag, built from its own sources once (the
# build is kept under build/, keyed by the tag's commit, so later runs reuse
# it). Sets release_tag, release_bench and release_extension, or leaves
# release_tag empty after saying why there is nothing to compare with.
root=$(cd -P "$here/../.." && pwd)
release_tag=
prepare_release() {
  local tag commit dir
  [ "${BENCH_RELEASE:-1}" != 0 ] || return 0
  if [ "$(git -C "$root" rev-parse --show-toplevel 2>/dev/null)" != "$root" ]; then
    echo "Previous release: $root is not a git clone, so no ratios against it"
    return 0
  fi
  if ! tag=$(git -C "$root" describe --tags --abbrev=0 2>/dev/null); then
    echo "Previous release: this clone has no tag (git describe --tags found none), so no ratios against it"
    return 0
  fi
  commit=$(git -C "$root" rev-parse "$tag^{commit}")
  dir=$root/build/release-$tag-${commit:0:12}
  if [ ! -x "$dir/build/bench_encode" ] || [ ! -f "$dir/bytepiece.so" ]; then
    echo "Previous release: building $tag (commit ${commit:0:12}) in $dir"
    rm -rf "$dir" "$dir.partial"
    mkdir -p "$dir.partial"
    # Its own defaults, not what make bench was given (BUILD= would send the
    # release's objects into this version's build directory).
    if ! { git -C "$root" archive "$commit" | tar -x -C "$dir.partial"; } ||
      ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$dir.partial" -j2 bytepiece.so build/bench_encode \
        >"$dir.partial/build.log" 2>&1; then
      echo "Previous release: $tag did not build (see $dir.partial/build.log), so no ratios against it"
      return 0
    fi
    mv "$dir.partial" "$dir"
  fi
  mkdir -p "$work/release"
  cp "$dir/bytepiece.so" "$work/release/bytepiece.so" # named so that its entry point is found
  release_tag=$tag
  release_bench=$dir/build/bench_encode
  release_extension=$work/release/bytepiece.so
}

# encode LABEL REFERENCE_SECONDS MODE DB MODEL_FILE [ALPHA]: one encoding
# line of bench_encode MODE (lib, sql or json; the extension is added for the
# last two), then the previous release's time as a ratio and its
# instructions per byte. Leaves this version's figures in s mb tok rss.
encode() {
  local label=$1 reference=$2 mode=$3 data=$4 model_file=$5 ipb
  shift 5
  local args=("$mode" "$data" "$model_file") release_args
  release_args=("${args[@]}")
  if [ "$mode" != lib ]; then
    args+=("$extension")
    release_args+=("${release_extension:-}")
  fi
  args+=("$@")
  release_args+=("$@")
  read -r _ s mb tok rss < <("$bench" "${args[@]}")
  ipb=$(count_instructions "$bench" "$mb" "${args[@]}")
  line "$label" "$s" "$mb" "$tok" "$rss" "$reference" "$ipb"
  [ -n "$release_tag" ] || return 0
  local r_s r_tok r_ipb
  if ! read -r _ r_s _ r_tok _ < <("$release_bench" "${release_args[@]}"); then
    printf "  %-54s %s failed on this line\n" "" "$release_tag"
    return 0
  fi
  r_ipb=$(count_instructions "$release_bench" "$mb" "${release_args[@]}")
  awk -v s="$s" -v r="$r_s" -v tag="$release_tag" -v ipb="$r_ipb" -v tok="$tok" -v rtok="$r_tok" 'BEGIN {
    printf "  %-54s %8.2fx %s (its time / this time)", "", r / s, tag;
    if (ipb != "") printf " %6s instr/byte", ipb;
    if (tok != rtok) printf "  TOKENS DIFFER: %d", rtok;
    printf "\n" }'
}

# count_instructions BENCH_BINARY MEGABYTES ARGS...: instructions per byte
# of one run of that bench_encode.
count_instructions() {
  if [ "${BENCH_INSTRUCTIONS:-1}" = 0 ] || ! command -v valgrind >/dev/null; then return; fi
  local binary=$1 data=$2 one two
  shift 2
  one=$(BENCH_RUNS=1 valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        "$binary" "$@" 2>&1 >/dev/null | awk '/I +refs/ { gsub(",", "", $4); print $4 }')
  two=$(BENCH_RUNS=2 valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        "$binary" "$@" 2>&1 >/dev/null | awk '/I +refs/ { gsub(",", "", $4); print $4 }')
  awk -v a="$one" -v b="$two" -v mb="$data" 'BEGIN { printf "%.1f", (b - a) / (mb * 1e6) }'
}

prepare_release
echo "Encoding $(basename "$corpus"): $(sqlite3 "$db" "SELECT count(*) FROM corpus") documents, one thread, best of 5"
echo "  (ratio = SentencePiece time / this time; peak = peak resident memory of the process)"
[ -z "$release_tag" ] ||
  echo "  (under each line: $release_tag's time / this time, and $release_tag's instructions per byte)"
sp_model=$models/bytepiece.eu.plus.80k.sp.model
if $python -c "import sentencepiece" 2>/dev/null; then
  read -r _ sp_s sp_mb sp_tok sp_rss < <($python "$here/bench_sentencepiece.py" "$db" "$sp_model")
else
  echo "  (SentencePiece for $python not installed: apt-get install python3-sentencepiece)"
  sp_s=0 sp_mb=0 sp_tok=0 sp_rss=0
fi
for model in bytepiece.eu.plus.80k bytepiece_80k; do
  encode "bytepiece C library, $model" "$sp_s" lib "$db" "$models/$model.zip"
  encode "bytepiece SQL bp_count, $model" "$sp_s" sql "$db" "$models/$model.zip"
done
# bp_encode's JSON ids on top of counting ("tokens" here are JSON characters).
model=bytepiece.eu.plus.80k
encode "bytepiece SQL bp_encode (JSON text), $model" "$sp_s" json "$db" "$models/$model.zip"
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
encode "bytepiece C library, $model" "$sps_s" lib "$db" "$models/$model.zip" 0.1
awk -v s="$s" -v d="$det_s" 'BEGIN { printf "  %-54s %8.2fx the deterministic time\n", "", s / d }'
encode "bytepiece SQL bp_count(.., 0.1, rowid), $model" "$sps_s" sql "$db" "$models/$model.zip" 0.1
[ "$sps_s" = 0 ] || line "SentencePiece sampling, $model.sp.model" "$sps_s" "$sps_mb" "$sps_tok" "$sps_rss" "$sps_s"

echo
echo "Short rows: 200,000 rows of 20-60 bytes cut from the same corpus; ratio against SentencePiece"
short=$work/short.db
# Pieces of 20-60 bytes in corpus order, cut at character boundaries
# (a fixed seed, so every run encodes the same rows).
$python - "$db" "$short" <<'PY'
import random, sqlite3, sys
random.seed(1)
data = "".join(row[0] for row in sqlite3.connect(sys.argv[1]).execute(
    "SELECT text FROM corpus ORDER BY rowid")).encode("utf-8")
out = sqlite3.connect(sys.argv[2])
out.execute("CREATE TABLE corpus(text TEXT)")
rows, at = [], 0
while len(rows) < 200000:
    n = random.randint(20, 60)
    rows.append((data[at:at + n].decode("utf-8", "ignore"),))
    at = (at + n) % (len(data) - 100)
out.executemany("INSERT INTO corpus VALUES (?)", rows)
out.commit()
PY
if [ "$sp_s" != 0 ]; then
  read -r _ shs_s shs_mb shs_tok shs_rss < <($python "$here/bench_sentencepiece.py" "$short" "$sp_model")
else
  shs_s=0
fi
for model in bytepiece.eu.plus.80k bytepiece_80k; do
  encode "bytepiece C library, $model" "$shs_s" lib "$short" "$models/$model.zip"
  encode "bytepiece SQL bp_count, $model" "$shs_s" sql "$short" "$models/$model.zip"
  awk -v s="$s" 'BEGIN { printf "  %-54s %8.2f microseconds per row\n", "", s / 200000 * 1e6 }'
done
[ "$shs_s" = 0 ] || line "SentencePiece, bytepiece.eu.plus.80k.sp.model" "$shs_s" "$shs_mb" "$shs_tok" "$shs_rss" "$shs_s"

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
