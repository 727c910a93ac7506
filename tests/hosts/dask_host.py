"""dask_host.py: sqlite_bytepiece.distributed on a LocalCluster of two worker
processes, run by tests/distributed.test:

    python3 dask_host.py EXTENSION PROJECT_DIR TEMP_DIR

The committed corpus tests/data/mix_2m.jsonl.gz is split at random (seeded)
into 4 shard files; the cluster computes bp_stats, pre-tokenizes and trains
configuration C's model on them; then, on 4 smaller shards (120 documents),
trains with a worker killed in the middle of a round and with a driver
stopped after two rounds and resumed from its checkpoint; each result is compared here with the same SQL over the
union in one connection. Prints one line per check, "NAME RESULT" (RESULT
without spaces, paths written as TEMP), or "skip WHAT: WHY" lines; the Tcl
test asserts each line.
"""
import gzip
import json
import os
import random
import shutil
import sqlite3
import struct
import sys


def main():
    extension, project, temp = (os.path.abspath(a) for a in sys.argv[1:4])
    import importlib.util

    if not (importlib.util.find_spec("dask") and importlib.util.find_spec("distributed")):
        print("skip all: dask or distributed is not installed (scripts/install-deps.sh installs them)")
        return
    # The package as installed: its sources, a _version.py, and the
    # extension under the name SQLite derives the entry point from. The
    # workers import it from PYTHONPATH, which they inherit.
    package = os.path.join(temp, "site", "sqlite_bytepiece")
    os.makedirs(package)
    source = os.path.join(project, "python", "sqlite_bytepiece")
    for name in os.listdir(source):
        if name.endswith(".py"):
            shutil.copy(os.path.join(source, name), package)
    with open(os.path.join(package, "_version.py"), "w") as f:
        f.write('__version__ = "test"\n')
    os.symlink(extension, os.path.join(package, "bytepiece.so"))
    site = os.path.dirname(package)
    sys.path.insert(0, site)
    os.environ["PYTHONPATH"] = site + os.pathsep + os.environ.get("PYTHONPATH", "")

    from dask.distributed import Client, LocalCluster

    import sqlite_bytepiece
    from sqlite_bytepiece import distributed

    def report(name, value):
        print(name, str(value).replace(temp, "TEMP").replace(" ", "_"), flush=True)

    # The union in one connection, and 4 shards of it.
    with gzip.open(os.path.join(project, "tests", "data", "mix_2m.jsonl.gz"), "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    union = sqlite3.connect(":memory:")
    sqlite_bytepiece.load(union)
    union.execute("CREATE TABLE docs(body TEXT)")
    union.executemany("INSERT INTO docs VALUES(?)", ((t,) for t in texts))
    rng = random.Random(20261202)
    shards = [os.path.join(temp, f"docs-{i}.db") for i in range(4)]
    parts = [[] for _ in shards]
    for t in texts:
        parts[rng.randrange(len(shards))].append(t)
    for path, rows in zip(shards, parts):
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT)")
        db.executemany("INSERT INTO docs(body) VALUES(?)", ((t,) for t in rows))
        db.commit()
        db.close()
    report("shards", ",".join(str(len(rows)) for rows in parts))

    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                           memory_limit="768MiB", dashboard_address=None)
    client = Client(cluster)
    try:
        golden = os.path.join(project, "tests", "data", "C.mix_2m.o6.v6000.mc16.mpl12.noeu.model.gz")
        run_checks(client, union, shards, texts, temp, report, distributed, golden)
    finally:
        client.close()
        cluster.close()


def run_checks(client, union, shards, texts, temp, report, distributed, golden):
    # ---- stats ----
    expected = json.loads(union.execute("SELECT bp_stats(body, 'bytepiece_80k') FROM docs").fetchone()[0])
    got = distributed.stats(shards, "bytepiece_80k", client=client)
    report("stats.same", int(got == expected))
    report("stats.documents", got["documents"])
    # No model: the default one (bytepiece_80k, with nothing stored).
    report("stats.default", int(distributed.stats(shards, client=client) == expected))
    # Each shard on a worker of its own (as files local to one machine are).
    addresses = sorted(client.scheduler_info()["workers"])
    placement = {path: addresses[i % 2] for i, path in enumerate(shards)}
    got = distributed.stats(shards, "bytepiece_80k", client=client, workers=placement)
    report("stats.placed", int(got == expected))
    # One shard given as a (file, query) pair: the first 10 of its rows.
    got = distributed.stats([(shards[0], "SELECT body FROM docs WHERE id <= 10")], "bytepiece_80k",
                            client=client, split_every=2)
    report("stats.query", got["documents"])

    # ---- pretokenize ----
    results = distributed.pretokenize(shards, "bytepiece_80k", client=client)
    same = 1
    for path, result in zip(shards, results):
        with open(path + ".ids", "rb") as f:
            ids = f.read()
        with open(path + ".idx", "rb") as f:
            idx = f.read()
        db = sqlite3.connect(path)
        bodies = [row[0] for row in db.execute("SELECT body FROM docs ORDER BY id")]
        db.close()
        packed = [union.execute("SELECT bp_encode_packed(?, 'bytepiece_80k')", (b,)).fetchone()[0]
                  for b in bodies]
        offsets = [0]
        for p in packed:
            offsets.append(offsets[-1] + len(p) // 4)
        same &= ids == b"".join(packed)
        same &= idx == struct.pack(f"<{len(offsets)}Q", *offsets)
        same &= result == {"shard": path, "ids": path + ".ids", "idx": path + ".idx",
                           "documents": len(bodies), "tokens": offsets[-1]}
    report("pretokenize.same", int(same))
    # A model value (bytes) instead of a name: tests/data/small.model's.
    small = os.path.join(os.path.dirname(golden), "small.model")
    value = union.execute("SELECT bp_model_load(?)", (small,)).fetchone()[0]
    results = distributed.pretokenize(shards[:1], value, client=client, suffix=".small")
    with open(shards[0] + ".small.ids", "rb") as f:
        ids = f.read()
    db = sqlite3.connect(shards[0])
    bodies = [row[0] for row in db.execute("SELECT body FROM docs ORDER BY id")]
    db.close()
    expected_ids = b"".join(union.execute("SELECT bp_encode_packed(?, ?)", (b, value)).fetchone()[0] for b in bodies)
    report("pretokenize.value", int(ids == expected_ids and results[0]["tokens"] == len(ids) // 4))

    # ---- shard errors ----
    bad = os.path.join(temp, "not-a-db.db")
    with open(bad, "wb") as f:
        f.write(b"this is a text file, not a database\n" * 100)
    nocol = os.path.join(temp, "no-column.db")
    db = sqlite3.connect(nocol)
    db.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, text TEXT)")
    db.execute("INSERT INTO docs(text) VALUES('hello')")
    db.commit()
    db.close()
    notable = os.path.join(temp, "no-table.db")
    db = sqlite3.connect(notable)
    db.execute("CREATE TABLE other(body TEXT)")
    db.commit()
    db.close()
    cases = [
        ("error.not_a_database", [shards[0], bad]),
        ("error.no_column", [nocol, shards[1]]),
        ("error.no_table", [notable]),
        ("error.no_file", [os.path.join(temp, "missing.db")]),
        ("error.query", [(shards[0], "SELECT nosuch FROM docs")]),
    ]
    for name, these in cases:
        try:
            distributed.stats(these, "bytepiece_80k", client=client)
            print(name, "no error")
        except distributed.ShardError as e:
            print(name, type(e).__name__ + ": " + str(e).replace(temp, "TEMP"), flush=True)
    # The missing file was not created by the attempt to open it.
    report("error.no_file_created", int(not os.path.exists(os.path.join(temp, "missing.db"))))
    try:
        distributed.pretokenize([bad], "bytepiece_80k", client=client)
        print("error.pretokenize no error")
    except distributed.ShardError as e:
        print("error.pretokenize", type(e).__name__ + ": " + str(e).replace(temp, "TEMP"), flush=True)

    # ---- train ----
    has_rounds = union.execute(
        "SELECT count(*) FROM pragma_function_list WHERE name = 'bp_train_start'").fetchone()[0]
    if not has_rounds:
        print("skip train: this build has no bp_train_start (training in rounds)")
        return
    options = {"order": 6, "vocab_size": 6000, "min_count": 16, "max_piece_length": 12,
               "isolate_digits": False, "ensure_unicode": False}
    expected = union.execute("SELECT bp_train(body, ?) FROM docs", (json.dumps(options),)).fetchone()[0]
    # Combined two at a time, and saved as a file: configuration C of the
    # reference, byte for byte (tests/data holds it). Partials and combines
    # on the workers get a 1 MB max_memory and 2 threads, so that spilling
    # and reading on threads are part of the run.
    rounds = []
    saved = os.path.join(temp, "C.model")
    model = distributed.train(shards, options, client=client, on_round=rounds.append,
                              save_to=saved, split_every=2,
                              local_options={"threads": 2, "max_memory": 1})
    report("train.same", int(model == expected))
    report("train.rounds", len(rounds))
    with open(saved, "rb") as f, gzip.open(golden, "rb") as g:
        report("train.saved_golden", int(f.read() == g.read()))

    # A worker process that dies in the middle of a round: the first shard
    # task of round 2 kills its worker (a marker file makes it happen once);
    # the scheduler runs the lost tasks again, on the worker left or on the
    # one the nanny starts again. The fault is put into _shard_value, which
    # the task function looks up when it runs (the task function itself is
    # cached by the workers once unpickled).
    marker = os.path.join(temp, "killed")

    def install_fault(marker):
        from sqlite_bytepiece import distributed as module

        original = module._shard_value

        def dying(shard, table, column, extension, select, parameters):
            if "bp_train_partial" in select:
                conn = sqlite3.connect(":memory:")
                module._load(conn, extension)
                info = json.loads(conn.execute("SELECT bp_train_info(?)", (parameters[0],)).fetchone()[0])
                conn.close()
                if info["round"] == 2:
                    try:
                        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                        os._exit(1)
                    except FileExistsError:
                        pass
            return original(shard, table, column, extension, select, parameters)

        module._shard_value = dying
        return True

    client.run(install_fault, marker)
    # Smaller shards from here on (the first 120 documents, 4 ways), so
    # that the test stays short: bp_train on their union is the reference.
    small_shards = []
    for i in range(4):
        path = os.path.join(temp, f"small-{i}.db")
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT)")
        db.executemany("INSERT INTO docs(body) VALUES(?)", ((t,) for t in texts[i:120:4]))
        db.commit()
        db.close()
        small_shards.append(path)
    shards = small_shards
    options = dict(options, min_count=8)
    expected = union.execute("SELECT bp_train(body, ?) FROM (SELECT body FROM docs WHERE rowid <= 120)",
                             (json.dumps(options),)).fetchone()[0]
    report("train.small_vocab", union.execute("SELECT count(*) FROM bp_vocab(?)", (expected,)).fetchone()[0])
    model = distributed.train(shards, options, client=client)
    report("train.killed", int(os.path.exists(marker)))
    report("train.killed_same", int(model == expected))

    # A driver that stops after its second round, then resumes from the
    # checkpoint with the rounds left.
    checkpoint = os.path.join(temp, "train.state")

    class Crash(Exception):
        pass

    def crash_after_two(info):
        if info["round"] == 3:  # rounds 1 and 2 merged
            raise Crash()

    try:
        distributed.train(shards, options, client=client, checkpoint=checkpoint, on_round=crash_after_two)
    except Crash:
        pass
    resumed = []
    model = distributed.train(shards, options, client=client, checkpoint=checkpoint, on_round=resumed.append)
    report("train.resumed_rounds", f"{len(resumed)}_of_{len(rounds)}")
    report("train.resumed_same", int(model == expected))
    # A damaged checkpoint stops the driver before any shard is counted.
    with open(checkpoint, "rb") as f:
        state = f.read()
    with open(checkpoint, "wb") as f:
        f.write(state[:-3])
    try:
        distributed.train(shards, options, client=client, checkpoint=checkpoint)
        print("train.bad_checkpoint no error")
    except ValueError as e:
        print("train.bad_checkpoint", str(e).replace(temp, "TEMP"), flush=True)


if __name__ == "__main__":
    main()
