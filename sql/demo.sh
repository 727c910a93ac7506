#!/usr/bin/env bash
# demo.sh: `make demo`. Trains a BytePiece tokenizer on real text found on
# any Debian or Ubuntu system (the Python standard library's sources, the
# licence texts and the packages' copyright files), plus the Chinese and
# English documentation of ../shared/corpora when it is there; stores it in
# a database; prints what a user looks at (sql/demo.sql), next to the
# built-in bytepiece_80k. Needs no network and no ../shared.
#   sql/demo.sh ./bytepiece.so
set -eu
extension=$(cd "$(dirname "${1:-./bytepiece.so}")" && pwd)/$(basename "${1:-./bytepiece.so}")
here=$(cd "$(dirname "$0")" && pwd)
shared=${SHARED_DATA:-$here/../../shared}
db=${DEMO_DATABASE:-$(mktemp -d)/demo.db}
python_lib=$(ls -d /usr/lib/python3.[0-9]*/ 2>/dev/null | sort -V | tail -n 1)

echo "BytePiece for SQLite: demo (database: $db)"
sqlite3 "$db" <<SQL
CREATE TABLE IF NOT EXISTS docs(id INTEGER PRIMARY KEY, source TEXT, body TEXT);
DELETE FROM docs;
-- Up to 6 MB of Python, the licences, the copyright files: text every
-- Debian and Ubuntu system has.
INSERT INTO docs(source, body)
  SELECT 'python', CAST(data AS TEXT) FROM (
    SELECT data, sum(length(data)) OVER (ORDER BY name) AS running
    FROM fsdir('${python_lib:-/nonexistent}') WHERE name GLOB '*.py' AND name NOT GLOB '*/test*')
  WHERE running < 6e6;
INSERT INTO docs(source, body)
  SELECT 'licences', CAST(data AS TEXT) FROM fsdir('/usr/share/common-licenses') WHERE (mode & 61440) = 32768;
INSERT INTO docs(source, body)
  SELECT DISTINCT 'copyright', CAST(data AS TEXT) FROM fsdir('/usr/share/doc')
  WHERE name GLOB '/usr/share/doc/*/copyright' AND (mode & 61440) = 32768
    AND length(data) < 100000;
SQL
if [ -f "$shared/corpora/mix_small.jsonl" ]; then
  sqlite3 "$db" "DROP TABLE IF EXISTS mix_small"
  "$here/load_jsonl.sh" "$db" "$shared/corpora/mix_small.jsonl" mix_small
  sqlite3 "$db" "INSERT INTO docs(source, body) SELECT 'mix_small', text FROM mix_small; DROP TABLE mix_small;"
fi
# Keep only text that is valid UTF-8, as TEXT must be.
sqlite3 "$db" "DELETE FROM docs WHERE body IS NULL OR length(body) = 0 OR CAST(body AS BLOB) <> CAST(CAST(CAST(body AS BLOB) AS TEXT) AS BLOB)"

sqlite3 "$db" <<SQL
.load $extension
.bail on
DELETE FROM bp_models;
.print
.print Training on every document (vocab_size 8000, min_count 8, 2 threads)...
INSERT INTO bp_models(name, model)
  SELECT 'demo 8k', bp_train(body, '{"vocab_size": 8000, "min_count": 8, "threads": 2, "progress": true}') FROM docs;
.read $here/demo.sql
SQL
