"""sentencepiece_parity.py: encodes a corpus with SentencePiece (Debian's
python3-sentencepiece) from a model file that bp_model_save wrote, and with
bp_encode, chunk by chunk (the reference's chunks: a line with its run of
newlines), and prints as JSON how many chunks and documents agree, and why
the others do not:
  order  the same pieces in another order: segmentations that score exactly
         the same, where SentencePiece breaks the tie another way;
  byte   a single byte that is not printable ASCII (or a backslash) is in
         one of them: SentencePiece has it only as a byte piece, which its
         search uses for characters with no piece, at a penalty;
  other  anything else (none is expected).
  sentencepiece_parity.py EXTENSION BYTEPIECE_MODEL SENTENCEPIECE_MODEL CORPUS.jsonl
"""
import json
import re
import sqlite3
import sys
import unicodedata

import sentencepiece

extension, bytepiece_model, sentencepiece_model, corpus = sys.argv[1:5]
sp = sentencepiece.SentencePieceProcessor(model_file=sentencepiece_model)
db = sqlite3.connect(":memory:")
db.enable_load_extension(True)
db.load_extension(extension)
db.execute("INSERT INTO bp_models(name, model) VALUES ('m', bp_model_load(?))", (bytepiece_model,))


def byte_only(token_id):
    byte = token_id - 3
    return 0 <= byte <= 255 and not (0x20 <= byte <= 0x7E and byte != 0x5C)


result = {"documents": 0, "documents_same": 0, "chunks": 0, "same": 0, "order": 0,
          "byte": 0, "other": 0}
for line in open(corpus, encoding="utf-8"):
    text = unicodedata.normalize("NFC", json.loads(line)["text"])
    result["documents"] += 1
    ours = json.loads(db.execute("SELECT bp_encode(?, 'm')", (text,)).fetchone()[0])
    result["documents_same"] += ours == sp.encode(text)
    for chunk in re.findall(r".*\n+|.+", text):
        ours = json.loads(db.execute("SELECT bp_encode(?, 'm')", (chunk,)).fetchone()[0])
        theirs = sp.encode(chunk)
        result["chunks"] += 1
        if ours == theirs:
            result["same"] += 1
        elif sorted(ours) == sorted(theirs):
            result["order"] += 1
        elif any(byte_only(i) for i in ours + theirs):
            result["byte"] += 1
        else:
            result["other"] += 1
print(json.dumps(result))
