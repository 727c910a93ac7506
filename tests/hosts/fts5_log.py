#!/usr/bin/env python3
"""fts5_log.py: runs SQL on named connections and prints each statement's
result with what the extension wrote to sqlite3_log meanwhile, for the FTS5
tokenizer's lifecycle tests (tests/fts5.test): FTS5 passes no message of a
tokenizer on, so its reasons reach only the log, which Tcl cannot see.

    fts5_log.py EXTENSION < steps

Each line of input is NAME<TAB>URI<TAB>SQL: SQL runs on the connection NAME,
opened on the URI the first time (autocommit, the extension loaded), or
closed when SQL is `close`. For each line it prints `ok: VALUES` (the values
of every row, space-separated) or `error: MESSAGE`, then one `log: MESSAGE`
line per bytepiece message logged (messages of SQLite itself are left out).
"""
import ctypes
import sys

library = ctypes.CDLL("libsqlite3.so.0")
LOG = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)
logged = []
# SQLITE_CONFIG_LOG must be set before SQLite initializes: before sqlite3 is
# imported and a connection opened.
log_callback = LOG(lambda _, code, message: logged.append(message.decode("utf-8", "replace")))
library.sqlite3_config.argtypes = [ctypes.c_int, LOG, ctypes.c_void_p]
if library.sqlite3_config(16, log_callback, None) != 0:
    sys.exit("fts5_log.py: sqlite3_config(SQLITE_CONFIG_LOG) failed")

import sqlite3  # noqa: E402 (after the log is configured)

connections = {}
for line in sys.stdin.read().splitlines():
    if not line.strip():
        continue
    name, uri, sql = line.split("\t", 2)
    del logged[:]
    try:
        if sql == "close":
            connections.pop(name).close()
            print("ok:")
            continue
        if name not in connections:
            db = sqlite3.connect(uri, uri=True, isolation_level=None)
            db.enable_load_extension(True)
            db.load_extension(sys.argv[1])
            connections[name] = db
        rows = connections[name].execute(sql).fetchall()
        print("ok:" + "".join(" " + str(v) for row in rows for v in row))
    except sqlite3.Error as e:
        print("error: " + str(e))
    for message in logged:
        if message.startswith("bytepiece"):
            print("log: " + message)
