#!/bin/sh
# train_shards.sh: trains one model on the documents of several SQLite files
# with nothing but the sqlite3 shell, through the extension's training in
# rounds (bp_train_start, bp_train_partial, bp_train_merge, bp_train_done,
# bp_train_model): the model bp_train gives over all of them.
#
#   examples/train_shards.sh [-j JOBS] [-q QUERY] [-e EXTENSION] OPTIONS MODEL SHARD...
#
#   OPTIONS    bp_train's options as JSON, such as '{"vocab_size": 8000}'
#   MODEL      the model file to write (bp_model_save)
#   SHARD      a SQLite file; QUERY gives its documents as one column
#              (default: SELECT body FROM docs)
#   JOBS       shards counted at once (default 2)
#   EXTENSION  the extension's path (default ./bytepiece.so, or $BYTEPIECE)
#
# The state is kept in MODEL.state.db after every round: run the same
# command again after a crash and training goes on from the last round
# (delete it to start over). Each round writes one partial per shard into
# MODEL.partials/, then merges them into the next state; run the counting
# on other machines by replacing the xargs line with ssh or a job queue.
set -eu
jobs=2
query="SELECT body FROM docs"
extension=${BYTEPIECE:-./bytepiece.so}
while getopts j:q:e: flag; do
  case $flag in
    j) jobs=$OPTARG ;;
    q) query=$OPTARG ;;
    e) extension=$OPTARG ;;
    *) echo "usage: train_shards.sh [-j JOBS] [-q QUERY] [-e EXTENSION] OPTIONS MODEL SHARD..." >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -lt 3 ]; then
  echo "usage: train_shards.sh [-j JOBS] [-q QUERY] [-e EXTENSION] OPTIONS MODEL SHARD..." >&2
  exit 2
fi
options=$1
model=$2
shift 2
# SQL string literals: every ' doubled.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }
state="$model.state.db"
partials="$model.partials"
mkdir -p "$partials"

# The driver's state: one row, replaced atomically by each round's merge.
sqlite3 -bail "$state" ".load $extension" \
  "CREATE TABLE IF NOT EXISTS state(id INTEGER PRIMARY KEY CHECK (id = 1), state BLOB NOT NULL)" \
  "INSERT OR IGNORE INTO state VALUES(1, bp_train_start($(quote "$options")))"

# One shard's partial of this round, into its own file (so that shards can
# be counted anywhere, at the same time). $1: the shard's number, $2: its path.
count_shard() {
  out="$partials/$1.db"
  rm -f "$out.tmp"
  sqlite3 -bail "$2" ".load $extension" \
    "ATTACH $(quote "$state") AS driver" \
    "ATTACH $(quote "$out.tmp") AS out" \
    "CREATE TABLE out.partial(partial BLOB)" \
    "INSERT INTO out.partial WITH shard(text) AS ($query)
       SELECT bp_train_partial(text, (SELECT state FROM driver.state)) FROM shard"
  mv "$out.tmp" "$out"
}

while [ "$(sqlite3 -bail "$state" ".load $extension" "SELECT bp_train_done(state) FROM state")" = 0 ]; do
  rm -f "$partials"/*.db
  # JOBS shards at a time in the background; any failure stops training.
  n=0
  pids=
  for shard in "$@"; do
    n=$((n + 1))
    count_shard "$n" "$shard" &
    pids="$pids $!"
    if [ $((n % jobs)) = 0 ]; then
      for pid in $pids; do wait "$pid"; done
      pids=
    fi
  done
  for pid in $pids; do wait "$pid"; done
  # SQLite attaches at most 10 databases at once: the partials are first
  # copied into one table, which the merge aggregate reads row by row.
  rm -f "$partials/all.db"
  for file in "$partials"/[0-9]*.db; do
    sqlite3 -bail "$partials/all.db" "ATTACH $(quote "$file") AS p" \
      "CREATE TABLE IF NOT EXISTS partials(partial BLOB)" \
      "INSERT INTO partials SELECT partial FROM p.partial"
  done
  sqlite3 -bail "$state" ".load $extension" "ATTACH $(quote "$partials/all.db") AS p" \
    "UPDATE state SET state = (SELECT bp_train_merge((SELECT state FROM state), partial) FROM p.partials)"
done
sqlite3 -bail "$state" ".load $extension" \
  "SELECT bp_model_save(bp_train_model(state), $(quote "$model")) > 0 FROM state" >/dev/null
rm -rf "$partials"
echo "train_shards: $model"
