#!/usr/bin/env bash
# convert-models.sh: turns the published BytePiece models (the zips of
# https://github.com/bojone/bytepiece/tree/main/models) into the files under
# models/ that the build embeds in the extension: each model's value (the
# format bp_model_load returns and bp_models stores), zlib-compressed.
# Run once when the published models change; the output is the same bytes
# on every run (a model value is canonical, and zlib's compress() is
# deterministic), and each value carries the SHA-256 of its payload, which
# the extension checks before compiling it.
#   scripts/convert-models.sh DIRECTORY_OF_ZIPS [EXTENSION]
# needs the sqlite3 shell (its sqlar_compress() is zlib's compress()) and a
# build of the extension (default ./bytepiece.so).
set -eu
zips=$(cd "${1:?usage: convert-models.sh DIRECTORY_OF_ZIPS [EXTENSION]}" && pwd)
extension=${2:-./bytepiece.so}
here=$(cd "$(dirname "$0")/.." && pwd)
for name in bytepiece_80k bytepiece.eu.plus.80k bytepiece.id.eu.plus.80k \
            bytepiece.plus.40k bytepiece.zh.id.eu.40k; do
  out=$here/models/$name.value.z
  rm -f "$out"
  sqlite3 :memory: ".load $extension" \
    "SELECT writefile('$out', sqlar_compress(bp_model_load('$zips/$name.zip'))) > 0;" >/dev/null
  echo "$out: $(wc -c <"$out") bytes"
done
