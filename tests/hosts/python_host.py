"""python_host.py: the extension in Python's sqlite3 module. Prints
"hosts: N passed, N failed" for its checks.

    python3 python_host.py EXTENSION MODEL.zip
"""
import sqlite3
import sys

extension, model = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(name, got, expected):
    global passed, failed
    if got == expected:
        passed += 1
    else:
        failed += 1
        print(f"FAILED python {name}\n  expected: {expected!r}\n  got:      {got!r}")


db = sqlite3.connect(":memory:")
db.enable_load_extension(True)
db.load_extension(extension)
db.execute("INSERT INTO bp_models(name, model) VALUES ('zh80k', bp_model_load(?))", (model,))
check("encode", db.execute("SELECT bp_encode('今天天气不错 hello world 123', 'zh80k')").fetchone()[0],
      "[37037,40950,36144,29161,30241,10177]")
packed = db.execute("SELECT bp_encode_packed('今天天气不错', 'zh80k')").fetchone()[0]
check("packed", list(memoryview(packed).cast("i")), [37037, 40950, 36144])
try:
    db.execute("SELECT bp_encode('x', 'nope')")
    check("error", None, "an error")
except sqlite3.OperationalError as e:
    check("error", str(e), "bp_encode: no model named 'nope' in bp_models")
print(f"hosts: {passed} passed, {failed} failed")
