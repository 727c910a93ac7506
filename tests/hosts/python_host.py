"""python_host.py: the extension in Python's sqlite3 module, with the committed
model tests/data/small.zip: the sample text's pinned ids (the same as in
shell_host.sh, static_host.c, node_fts5.js and hosts.test), read back from the
model file itself without the extension, the packed form and an error message.
Prints "python: N passed, N failed, N skipped"; a Python whose sqlite3 cannot
load extensions is one skip, saying so.

    python3 python_host.py EXTENSION MODEL.zip
"""
import base64
import json
import sqlite3
import sys
import zipfile

extension, model = sys.argv[1], sys.argv[2]
passed = failed = 0
TEXT = "  for (size_t i = 0; i < n; i++) return BP_OK; /* 天气 */"
IDS = [792, 113, 306, 108, 46, 46, 720, 69, 83, 98, 82, 78, 553, 232, 167, 172, 233, 179, 151, 262, 50]


def check(name, got, expected):
    global passed, failed
    if got == expected:
        passed += 1
    else:
        failed += 1
        print(f"FAILED python {name}\n  expected: {expected!r}\n  got:      {got!r}")


if not hasattr(sqlite3.Connection, "enable_load_extension"):
    print(f"skipped python host: {sys.executable}'s sqlite3 module cannot load extensions")
    print("python: 0 passed, 0 failed, 1 skipped")
    sys.exit(0)

# The pinned ids spell the text in the model file's own pieces.
with zipfile.ZipFile(model) as archive:
    pieces = json.loads(archive.read(archive.namelist()[0]))
piece_bytes = {entry[0]: base64.b64decode(key) for key, entry in pieces.items()}
check("ids spell the text", b"".join(piece_bytes[i] for i in IDS), TEXT.encode())

db = sqlite3.connect(":memory:")
db.enable_load_extension(True)
db.load_extension(extension)
db.execute("INSERT INTO bp_models(name, model) VALUES ('small', bp_model_load(?))", (model,))
check("encode", db.execute("SELECT bp_encode(?, 'small')", (TEXT,)).fetchone()[0],
      json.dumps(IDS, separators=(",", ":")))
check("decode", db.execute("SELECT bp_decode(?, 'small')", (json.dumps(IDS),)).fetchone()[0], TEXT)
packed = db.execute("SELECT bp_encode_packed(?, 'small')", (TEXT,)).fetchone()[0]
check("packed", list(memoryview(packed).cast("i")), IDS)
try:
    db.execute("SELECT bp_encode('x', 'nope')")
    check("error", None, "an error")
except sqlite3.OperationalError as e:
    check("error", str(e), "bp_encode: no model named 'nope' in bp_models")
print(f"python: {passed} passed, {failed} failed, 0 skipped")
sys.exit(1 if failed else 0)
