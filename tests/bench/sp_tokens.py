"""Bytes per token of SentencePiece models on the documents of corpus(text):
prints "model bytes tokens" for each model given.

    python3 sp_tokens.py DB MODEL.model [MODEL.model ...]
"""
import sqlite3
import sys

import sentencepiece

texts = [row[0] for row in sqlite3.connect(sys.argv[1]).execute("SELECT text FROM corpus")]
size = sum(len(t.encode("utf-8")) for t in texts)
for path in sys.argv[2:]:
    sp = sentencepiece.SentencePieceProcessor(model_file=path)
    print(path, size, sum(len(ids) for ids in sp.encode(texts)))
