"""sqlite_bytepiece: the BytePiece SQLite extension, packaged for Python.

    import sqlite3, sqlite_bytepiece
    db = sqlite3.connect("docs.db")
    sqlite_bytepiece.load(db)
    db.execute("SELECT bp_encode('今天天气不错', 'bytepiece_80k')").fetchone()

The wheel carries the loadable extension (bytepiece.so) next to this file;
load() loads it into a connection, loadable_path() gives its path for other
hosts (sqlite-utils --load-extension, apsw, the sqlite3 shell). __version__
is the extension's version, the same as SQL's bp_version().
sqlite_bytepiece.tokens reads the token files bp_export writes (it needs
numpy, so it is imported only when used).
"""
import os

from ._version import __version__

__all__ = ["__version__", "load", "loadable_path", "tokens"]


def __getattr__(name):
    # sqlite_bytepiece.tokens on first use: numpy is needed for it alone.
    if name == "tokens":
        import importlib

        return importlib.import_module(".tokens", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_NO_EXTENSIONS = (
    "sqlite_bytepiece.load: this Python's sqlite3 module cannot load extensions "
    "(it was built without --enable-loadable-sqlite-extensions); use a Python "
    "that can, such as Debian's or Ubuntu's /usr/bin/python3, or rebuild it with "
    "that option (pyenv: PYTHON_CONFIGURE_OPTS=--enable-loadable-sqlite-extensions)"
)


def loadable_path() -> str:
    """The absolute path of the packaged extension, bytepiece.so.

    SQLite derives the entry point (sqlite3_bytepiece_init) from the file
    name, so the path can be given to any SQLite host as it is."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bytepiece.so")


def load(conn) -> None:
    """Loads the extension into conn, a sqlite3.Connection (or any
    connection with enable_load_extension and load_extension, as apsw's).

    Extension loading is switched on only for the load and off again, so
    that SQL run on the connection afterwards cannot load libraries with
    load_extension(). Raises RuntimeError, saying what to do, when this
    Python's sqlite3 module was built without extension loading."""
    if not hasattr(conn, "enable_load_extension"):
        raise RuntimeError(_NO_EXTENSIONS)
    conn.enable_load_extension(True)
    try:
        conn.load_extension(loadable_path())
    finally:
        conn.enable_load_extension(False)
