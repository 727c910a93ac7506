"""SentencePiece encoding throughput on the documents of corpus(text) in an
SQLite database, best of five runs; prints "name seconds megabytes tokens
peak_rss_kb" like bench_encode.

    python3 bench_sentencepiece.py DB MODEL.sp.model [alpha]
"""
import resource
import sqlite3
import sys
import time

import sentencepiece

db, model_path = sys.argv[1], sys.argv[2]
alpha = float(sys.argv[3]) if len(sys.argv) > 3 else None
texts = [row[0] for row in sqlite3.connect(db).execute("SELECT text FROM corpus ORDER BY rowid")]
megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
sp = sentencepiece.SentencePieceProcessor(model_file=model_path)
best, tokens = float("inf"), 0
for _ in range(5):
    start = time.perf_counter()
    if alpha is None:
        tokens = sum(len(sp.encode(t)) for t in texts)
    else:
        tokens = sum(len(sp.encode(t, enable_sampling=True, alpha=alpha, nbest_size=-1)) for t in texts)
    best = min(best, time.perf_counter() - start)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"sentencepiece {best:.6f} {megabytes:.6f} {tokens} {rss}")
