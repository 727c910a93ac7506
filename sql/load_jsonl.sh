#!/usr/bin/env bash
# load_jsonl.sh: loads the "text" field of each line of a JSONL file into a
# new table TABLE(text) of an SQLite database (the demo and the benchmarks
# use it for ../shared/corpora).
#   sql/load_jsonl.sh DATABASE FILE.jsonl TABLE
set -eu
database=$1
jsonl=$2
table=$3
# One line per row: a column separator that JSON text never holds raw.
sqlite3 "$database" <<SQL
.separator "$(printf '\036')" "\n"
CREATE TEMP TABLE lines(line TEXT);
.import '$jsonl' lines
CREATE TABLE $table(text TEXT);
INSERT INTO $table SELECT json_extract(line, '\$.text') FROM lines;
SQL
