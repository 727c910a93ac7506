"""wheel_check.py: the installed wheel, run by wheel_host.sh with the Python
of the fresh virtual environment it was installed into: the package's API
(load, loadable_path, __version__), its metadata, the golden ids of the
built-in model bytepiece_80k and FTS5 through it, extension loading
switched off again after load(), and the error for a connection that cannot
load extensions. Prints "wheel: N passed, N failed, N skipped".

    python wheel_check.py WHEEL_FILE
"""
import importlib.metadata
import os
import sqlite3
import sys

import sqlite_bytepiece

wheel = sys.argv[1]
passed = failed = skipped = 0


def check(name, got, expected):
    global passed, failed
    if got == expected:
        passed += 1
    else:
        failed += 1
        print(f"FAILED wheel {name}\n  expected: {expected!r}\n  got:      {got!r}")


def with_model(conn):
    """True when bytepiece_80k is built into the packaged extension; a
    package without it is a failure, not a skip."""
    global failed
    try:
        conn.execute("SELECT bp_encode('', 'bytepiece_80k')")
        return True
    except sqlite3.OperationalError as e:
        failed += 1
        print(f"FAILED wheel built-in model: {e}")
        return False


path = sqlite_bytepiece.loadable_path()
check("loadable_path in the environment", path,
      os.path.join(sys.prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}",
                   "site-packages", "sqlite_bytepiece", "bytepiece.so"))
check("loadable_path exists", os.path.isfile(path), True)

db = sqlite3.connect(":memory:")
sqlite_bytepiece.load(db)
version = db.execute("SELECT bp_version()").fetchone()[0]
check("__version__", sqlite_bytepiece.__version__, version)
check("wheel file name", os.path.basename(wheel).split("-")[:2], ["sqlite_bytepiece", version])
check("metadata version", importlib.metadata.version("sqlite-bytepiece"), version)
check("metadata licence", importlib.metadata.metadata("sqlite-bytepiece")["License"], "Apache-2.0")
check("tag", os.path.basename(wheel).split("-")[2:4], ["py3", "none"])

# load() switches extension loading off again: SQL cannot load a library.
try:
    db.execute("SELECT load_extension('libm.so.6')")
    check("loading off after load()", "loaded", "not authorized")
except sqlite3.OperationalError as e:
    check("loading off after load()", str(e), "not authorized")
# Loading again into the same connection does nothing.
sqlite_bytepiece.load(db)
check("loaded twice", db.execute("SELECT count(*) FROM bp_models").fetchone()[0], 0)


class NoExtensions:
    """A connection of a Python built without extension loading, as pyenv's:
    sqlite3.Connection there has no enable_load_extension."""


try:
    sqlite_bytepiece.load(NoExtensions())
    check("no extension loading", "loaded", "RuntimeError")
except RuntimeError as e:
    check("no extension loading", str(e),
          "sqlite_bytepiece.load: this Python's sqlite3 module cannot load extensions "
          "(it was built without --enable-loadable-sqlite-extensions); use a Python "
          "that can, such as Debian's or Ubuntu's /usr/bin/python3, or rebuild it with "
          "that option (pyenv: PYTHON_CONFIGURE_OPTS=--enable-loadable-sqlite-extensions)")

if with_model(db):
    text = "今天天气不错 hello world 123"
    ids = "[37037,40950,36144,29161,30241,10177]"
    check("golden ids", db.execute("SELECT bp_encode(?, 'bytepiece_80k')", (text,)).fetchone()[0], ids)
    check("decode", db.execute("SELECT bp_decode(?, 'bytepiece_80k')", (ids,)).fetchone()[0], text)
    db.executescript("""
        CREATE VIRTUAL TABLE notes USING fts5(body, tokenize = 'bytepiece bytepiece_80k');
        INSERT INTO notes(body) VALUES ('今天天气不错，我们去公园散步。'), ('The weather is fine today.');
    """)
    check("fts5", db.execute("SELECT highlight(notes, 0, '[', ']') FROM notes WHERE notes MATCH '天气'").fetchall(),
          [("今天[天气]不错，我们去公园散步。",)])
print(f"wheel: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
