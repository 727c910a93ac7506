"""bench_shards.py: the sharded-training part of `make bench-train`.

    python3 bench_shards.py EXTENSION SHARED_DATA [CORPUS...]

For each corpus (default mix_small mix_dev): bp_train in one process (time
and peak memory, measured by /usr/bin/time on a child process), then the
same options through sqlite_bytepiece.distributed on 4 shard files and a
LocalCluster of 2 worker processes with one thread each: the time, the peak
memory of each worker process (its ru_maxrss; an idle Dask worker starts at
about 100 MB), the bytes the workers sent (to each other and to the driver),
and per round the sizes of the partials, of the combined partial and of the
state, and how long counting (the partials and their tree) and the driver's
merge took. The model is checked to be bp_train's, byte for byte.
"""
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

OPTIONS = {"order": 6, "vocab_size": 8000, "min_count": 8}


def main():
    extension, shared = os.path.abspath(sys.argv[1]), sys.argv[2]
    corpora = sys.argv[3:] or ["mix_small", "mix_dev"]
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        print("  (dask not installed: scripts/install-deps.sh installs python3-dask python3-distributed)")
        return
    work = tempfile.mkdtemp(prefix="bench-shards-")
    try:
        # The package as installed, for the workers (PYTHONPATH).
        project = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        package = os.path.join(work, "site", "sqlite_bytepiece")
        os.makedirs(package)
        source = os.path.join(project, "python", "sqlite_bytepiece")
        for name in os.listdir(source):
            if name.endswith(".py"):
                shutil.copy(os.path.join(source, name), package)
        with open(os.path.join(package, "_version.py"), "w") as f:
            f.write('__version__ = "bench"\n')
        shutil.copy(extension, os.path.join(package, "bytepiece.so"))
        extension = os.path.join(package, "bytepiece.so")
        sys.path.insert(0, os.path.dirname(package))
        os.environ["PYTHONPATH"] = os.path.dirname(package)
        from sqlite_bytepiece import distributed

        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                               memory_limit=None, dashboard_address=None)
        client = Client(cluster)
        try:
            for corpus in corpora:
                bench(corpus, shared, work, extension, client, distributed)
        finally:
            client.close()
            cluster.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(corpus, shared, work, extension, client, distributed):
    path = os.path.join(shared, "corpora", corpus + ".jsonl")
    if not os.path.exists(path):
        print(f"  ({path} not found)")
        return
    with open(path, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    union = os.path.join(work, corpus + ".db")
    rng = random.Random(1)
    shards = [os.path.join(work, f"{corpus}-{i}.db") for i in range(4)]
    parts = [[] for _ in shards]
    for t in texts:
        parts[rng.randrange(4)].append(t)
    for file, rows in [(union, texts)] + list(zip(shards, parts)):
        db = sqlite3.connect(file)
        db.execute("CREATE TABLE docs(body TEXT)")
        db.executemany("INSERT INTO docs VALUES(?)", ((t,) for t in rows))
        db.commit()
        db.close()
    options = json.dumps(OPTIONS)
    print(f"{corpus} ({megabytes:.1f} MB), {options}, 4 shards")

    # One process.
    timing = os.path.join(work, "time")
    model_path = os.path.join(work, "one.model")
    script = ("import sqlite3,sys;db=sqlite3.connect(sys.argv[1]);db.enable_load_extension(True);"
              "db.load_extension(sys.argv[2]);"
              "open(sys.argv[4],'wb').write(db.execute('SELECT bp_train(body, ?) FROM docs',"
              "(sys.argv[3],)).fetchone()[0])")
    subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", timing, sys.executable, "-c", script,
                    union, extension, options, model_path], check=True)
    with open(timing) as f:
        seconds, kb = f.read().split()[-2:]
    with open(model_path, "rb") as f:
        expected = f.read()
    print(f"  {'bp_train, one process':44s} {float(seconds):7.1f} s {int(kb) / 1024:6.0f} MB peak")

    # The cluster: fresh workers, so that their peaks are this run's.
    client.restart()
    idle = client.run(lambda: __import__("resource").getrusage(0).ru_maxrss)
    idle = ", ".join(f"{kb / 1024:.0f}" for kb in idle.values())
    sent_before = sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total).values())
    rounds = []
    started = time.perf_counter()
    model = distributed.train(shards, OPTIONS, client=client, extension=extension,
                              on_round=rounds.append)
    elapsed = time.perf_counter() - started
    peaks = client.run(lambda: __import__("resource").getrusage(0).ru_maxrss)
    sent = sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total).values())
    peaks = ", ".join(f"{kb / 1024:.0f}" for kb in peaks.values())
    print(f"  {'distributed.train, 2 workers':44s} {elapsed:7.1f} s  worker peaks {peaks} MB, "
          f"same model: {'yes' if model == expected else 'NO'}")
    print(f"  workers sent {(sent - sent_before) / 1e6:.2f} MB in {len(rounds)} rounds; "
          f"count {sum(r['count_seconds'] for r in rounds):.1f} s, "
          f"merge {sum(r['merge_seconds'] for r in rounds):.1f} s")
    for counted, r in enumerate(rounds, 1):
        print(f"    round {counted:2d}: partials {max(r['partial_bytes']) / 1e3:8.1f} kB max, "
              f"combined {r['combined_bytes'] / 1e3:8.1f} kB, state {r['state_bytes'] / 1e3:8.1f} kB; "
              f"count {r['count_seconds']:5.2f} s, merge {r['merge_seconds']:5.2f} s")


if __name__ == "__main__":
    main()
