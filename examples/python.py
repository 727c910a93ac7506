# The wheel's extension in Python's sqlite3 module (pip install sqlite_bytepiece-*.whl).
import sqlite3

import sqlite_bytepiece

db = sqlite3.connect("docs.db")
sqlite_bytepiece.load(db)
text = "今天天气不错 hello world 123"
print(db.execute("SELECT bp_encode(?, 'bytepiece_80k')", (text,)).fetchone()[0])
print(db.execute("SELECT bp_count(?, 'bytepiece_80k')", (text,)).fetchone()[0])
# Packed ids (int32, little-endian) for a training pipeline, without JSON.
packed = db.execute("SELECT bp_encode_packed(?, 'bytepiece_80k')", (text,)).fetchone()[0]
print(list(memoryview(packed).cast("i")))
