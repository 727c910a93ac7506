#!/usr/bin/env bash
# demo.sh: tokenizes real text with a published BytePiece model and prints a
# report. Text: ../shared/corpora/mix_small.jsonl when present (Chinese and
# English documentation, Python code), else the licence texts every Debian
# and Ubuntu system has in /usr/share/common-licenses.
#   sql/demo.sh ./bytepiece.so
set -eu
extension=${1:-./bytepiece.so}
here=$(cd "$(dirname "$0")" && pwd)
shared=${SHARED_DATA:-$here/../../shared}
model=$shared/models/bytepiece_80k.zip
if [ ! -f "$model" ]; then
  echo "demo: no model found at $model" >&2
  echo "demo: put the published BytePiece models in ../shared/models (or set SHARED_DATA)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=$work/demo.db

if [ -f "$shared/corpora/mix_small.jsonl" ]; then
  corpus="$shared/corpora/mix_small.jsonl"
  # One line per row: a column separator that JSON text never holds raw.
  load=".separator \"$(printf '\036')\" \"\\n\"
CREATE TABLE lines(line TEXT);
.import '$corpus' lines
CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO docs(body) SELECT json_extract(line, '\$.text') FROM lines;
DROP TABLE lines;"
else
  corpus=/usr/share/common-licenses
  load="CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO docs(body) SELECT CAST(data AS TEXT) FROM fsdir('$corpus')
  WHERE (mode & 61440) = 32768;"
fi

echo "BytePiece for SQLite: demo"
echo "  model:  $model"
echo "  corpus: $corpus"
echo
sqlite3 "$db" <<SQL
.load $extension
$load
INSERT INTO bp_models(name, model) VALUES ('zh80k', bp_model_load('$model'));
.read $here/demo.sql
SQL
