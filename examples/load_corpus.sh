# JSONL, one {"text": "..."} object a line: the text fields into a new
# table corpus(text) (sql/load_jsonl.sh DATABASE FILE.jsonl TABLE).
sql/load_jsonl.sh docs.db corpus.jsonl corpus
# CSV with a header row: a new table notes with the header's columns.
sqlite3 docs.db '.import --csv notes.csv notes'
sqlite3 docs.db '.load ./bytepiece' \
  "SELECT count(*), sum(bp_count(text, 'bytepiece_80k')) FROM corpus" \
  "SELECT title, bp_count(body, 'bytepiece_80k') FROM notes"
