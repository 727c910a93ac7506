"""sqlite_bytepiece.distributed: training, corpus statistics and
pre-tokenization over shards of SQLite files, on a dask.distributed cluster.

    from dask.distributed import Client
    from sqlite_bytepiece import distributed

    client = Client("tcp://scheduler:8786")
    shards = ["/data/docs-0.db", "/data/docs-1.db", ("/data/web.db", "SELECT body FROM pages")]
    model = distributed.train(shards, {"vocab_size": 32000, "min_count": 8}, client=client,
                              checkpoint="/data/train.state", save_to="/data/docs.model")
    distributed.stats(shards, model, client=client)        # the JSON of bp_stats, as a dict
    distributed.pretokenize(shards, model, client=client)  # docs-0.db.ids, docs-0.db.idx, ...

A shard is a SQLite file, whose documents are `column` of `table` (default
docs.body), or a (file, query) pair, whose query returns the documents as its
one column. Every task opens its shard read-only on whichever worker runs it,
so the files are on storage every worker sees, or `workers` says which
worker holds which file.

The work is the SQL protocol of the extension, computed in SQLite on the
workers; this module only moves BLOBs:

- train: the driver makes a state (bp_train_start); each round every shard's
  task computes its partial (bp_train_partial), the partials are added up as
  a tree on the workers (bp_train_combine, in an in-memory SQLite database,
  `split_every` at a time), and the driver merges the one partial left into
  the next state (bp_train_merge), until bp_train_done. The driver never
  holds more than one partial and the state. With `checkpoint`, every state
  is written there (atomically) and a new call resumes from it.
- stats: bp_stats_partial per shard, bp_stats_combine as a tree,
  bp_stats_finish on the driver.
- pretokenize: bp_encode_packed per document, written next to each shard.

A worker that dies mid-round loses only its tasks, which the scheduler runs
again elsewhere; every result is a pure function of the shard and the
state, so the model is the same. Errors a shard causes (not a database, no
such table or column, a failing query) are ShardError naming the shard.
"""
import json
import os
import sqlite3
import struct
import tempfile
import time
import urllib.parse

__all__ = ["ShardError", "train", "stats", "pretokenize"]


class ShardError(Exception):
    """A shard cannot be read: its message names the shard and the problem."""


# ---- On the workers ----------------------------------------------------------


def _extension_path(extension):
    if extension is not None:
        return extension
    from . import loadable_path

    return loadable_path()


def _load(conn, extension):
    conn.enable_load_extension(True)
    try:
        conn.load_extension(_extension_path(extension))
    finally:
        conn.enable_load_extension(False)


def _shard_parts(shard):
    """(path, query or None) of a shard as the caller gave it."""
    if isinstance(shard, (tuple, list)):
        if len(shard) != 2:
            raise ValueError(f"a shard is a file or a (file, query) pair, not {shard!r}")
        return os.fspath(shard[0]), shard[1]
    return os.fspath(shard), None


def _shard_name(shard):
    return _shard_parts(shard)[0]


def _quote(identifier):
    return '"' + identifier.replace('"', '""') + '"'


def _open_shard(shard, table, column, extension):
    """A read-only connection to the shard with the extension loaded, and
    the SQL of its documents, as the CTE `shard(text)`."""
    path, query = _shard_parts(shard)
    if not os.path.isfile(path):
        raise ShardError(f"shard {path}: no such file")
    # mode=ro: a shard is never created or written; a missing file is an
    # error, not an empty database.
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        try:
            conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        except sqlite3.DatabaseError as e:
            raise ShardError(f"shard {path}: not a SQLite database ({e})") from None
        _load(conn, extension)
        if query is None:
            columns = [row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]
            if not columns:
                raise ShardError(f"shard {path}: no table {table}")
            if column not in columns:
                raise ShardError(f"shard {path}: table {table} has no column {column}")
            query = f"SELECT {_quote(column)} FROM {_quote(table)}"
        return conn, f"WITH shard(text) AS ({query}) "
    except BaseException:
        conn.close()
        raise


def _shard_value(shard, table, column, extension, select, parameters):
    """One value computed over a shard's documents: `select` is the SQL
    after the CTE, reading `text` from `shard`."""
    conn, cte = _open_shard(shard, table, column, extension)
    try:
        try:
            return conn.execute(cte + select, parameters).fetchone()[0]
        except sqlite3.Error as e:
            raise ShardError(f"shard {_shard_name(shard)}: {e}") from None
    finally:
        conn.close()


def _train_partial(shard, table, column, extension, state, local_options):
    if local_options is None:
        return _shard_value(shard, table, column, extension,
                            "SELECT bp_train_partial(text, ?) FROM shard", (state,))
    return _shard_value(shard, table, column, extension,
                        "SELECT bp_train_partial(text, ?, ?) FROM shard", (state, local_options))


def _model_sql(model):
    """The model argument's SQL and parameters: none for the default model
    (a NULL model argument is an error in SQL)."""
    return ("", ()) if model is None else (", ?", (model,))


def _stats_partial(shard, table, column, extension, model):
    sql, parameters = _model_sql(model)
    return _shard_value(shard, table, column, extension,
                        f"SELECT bp_stats_partial(text{sql}) FROM shard", parameters)


def _combine(aggregate, extension, options, *partials):
    """The partials added up by the aggregate (bp_train_combine or
    bp_stats_combine) in an in-memory database; `options`, when not None, is
    the aggregate's second argument (bp_train_combine's local options, so that
    a combine spills past the max_memory a partial was given)."""
    conn = sqlite3.connect(":memory:")
    try:
        _load(conn, extension)
        conn.execute("CREATE TABLE partials(partial BLOB)")
        conn.executemany("INSERT INTO partials VALUES(?)", ((p,) for p in partials))
        if options is None:
            return conn.execute(f"SELECT {aggregate}(partial) FROM partials").fetchone()[0]
        return conn.execute(f"SELECT {aggregate}(partial, ?) FROM partials", (options,)).fetchone()[0]
    finally:
        conn.close()


def _write_atomically(path, chunks):
    """Writes the byte strings of `chunks` to `path` through a temporary file
    in the same folder, renamed when complete: a crash leaves no half file."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _pretokenize_shard(shard, table, column, extension, model, suffix):
    path = _shard_name(shard)
    conn, cte = _open_shard(shard, table, column, extension)
    ids_path, idx_path = path + suffix + ".ids", path + suffix + ".idx"
    offsets = [0]

    def packed():
        try:
            sql, parameters = _model_sql(model)
            for (blob,) in conn.execute(cte + f"SELECT bp_encode_packed(text{sql}) FROM shard "
                                        "WHERE text IS NOT NULL", parameters):
                offsets.append(offsets[-1] + len(blob) // 4)
                yield blob
        except sqlite3.Error as e:
            raise ShardError(f"shard {path}: {e}") from None

    try:
        _write_atomically(ids_path, packed())
    finally:
        conn.close()
    _write_atomically(idx_path, [struct.pack(f"<{len(offsets)}Q", *offsets)])
    return {"shard": path, "ids": ids_path, "idx": idx_path, "documents": len(offsets) - 1,
            "tokens": offsets[-1]}


# ---- On the driver -----------------------------------------------------------


def _client(client):
    """The client given, the current one, or a new local cluster's (closed by
    the caller: the second value)."""
    if client is not None:
        return client, None
    from dask.distributed import Client, get_client

    try:
        return get_client(), None
    except ValueError:
        new = Client(processes=True, dashboard_address=None)
        return new, new


def _submit_per_shard(client, shards, workers, function, *arguments):
    """One task per shard: function(shard, *arguments), on the workers
    `workers` names for its file (a dict of file -> address or list of
    addresses; shards it does not name run anywhere)."""
    futures = []
    for shard in shards:
        where = (workers or {}).get(_shard_name(shard))
        if isinstance(where, str):
            where = [where]
        futures.append(client.submit(function, shard, *arguments, pure=False, workers=where,
                                     allow_other_workers=False))
    return futures


def _tree(client, futures, aggregate, extension, split_every, options=None):
    """Adds the partials of `futures` up on the workers, `split_every` at a
    time, until one future is left; `options` as for _combine."""
    if split_every < 2:
        raise ValueError("split_every must be 2 or more")
    while len(futures) > 1:
        futures = [
            client.submit(_combine, aggregate, extension, options, *futures[i:i + split_every])
            for i in range(0, len(futures), split_every)
        ]
    return futures[0]


def _count_round(client, shards, workers, table, column, extension, state, local_options,
                 split_every, retries):
    """This round's partial over every shard, added up on the workers, and
    the sizes of the shards' partials. The scheduler runs the tasks of a
    worker that died again by itself; what it cannot recover (the last copy
    of the state lost with its worker, too many workers killed by one task)
    fails the round, which is counted again, `retries` times at most.
    Errors of a shard or of SQL are not retried: they would recur."""
    for attempt in range(retries + 1):
        try:
            # One copy of the state per worker, not one per task.
            state_future = client.scatter(state, broadcast=True, hash=False)
            partials = _submit_per_shard(client, shards, workers, _train_partial, table, column,
                                         extension, state_future, local_options)
            # Their sizes, for on_round: a few integers, not the partials.
            sizes = [client.submit(len, p, pure=False) for p in partials]
            partial = _tree(client, partials, "bp_train_combine", extension, split_every,
                            local_options).result()
            return partial, client.gather(sizes)
        except (ShardError, sqlite3.Error, ValueError, TypeError):
            raise
        except Exception:
            if attempt == retries:
                raise


def _local(extension):
    conn = sqlite3.connect(":memory:")
    _load(conn, extension)
    return conn


def _options_text(options):
    if options is None:
        return "{}"
    return options if isinstance(options, str) else json.dumps(options)


def train(shards, options=None, client=None, column="body", table="docs", *, checkpoint=None,
          save_to=None, local_options=None, split_every=8, workers=None, round_retries=2,
          extension=None, driver_extension=None, on_round=None):
    """Trains a model on the documents of every shard and returns its model
    value (bytes): the model bp_train gives over all of them, exactly.

    options: bp_train's options (a dict or JSON text). checkpoint: a file
    the state is kept in after every round; when it exists, training
    resumes from it, with its options (delete it to start over). save_to: a path to write the
    model file to (bp_model_save). local_options: the third argument of
    bp_train_partial and bp_train_combine on the workers, as JSON text (such as
    '{"threads": 2, "max_memory": 512}'). workers: for
    shards that are files of one machine, {file: worker address (or a list
    of them)}; those shards' tasks run only there. round_retries: how many
    times a round the cluster failed (not a shard) is counted again.
    extension: the
    extension's path on the workers (default: the package's own);
    driver_extension the same on the driver. on_round(info): called after
    each merge with bp_train_info of the new state, as a dict, with what
    the round moved and took: partial_bytes (each shard's partial),
    combined_bytes (the partial the driver merged), state_bytes (the new
    state, sent to every worker next round), count_seconds (the partials
    and their tree) and merge_seconds (the driver's merge)."""
    shards = list(shards)
    if not shards:
        raise ValueError("train: no shards")
    if local_options is not None and not isinstance(local_options, str):
        local_options = json.dumps(local_options)
    client, owned = _client(client)
    driver = _local(driver_extension if driver_extension is not None else extension)
    try:
        state = None
        if checkpoint is not None and os.path.exists(checkpoint):
            with open(checkpoint, "rb") as f:
                state = f.read()
            # A damaged checkpoint is an error here, not on every shard: a
            # partial over one empty text reads the whole state.
            try:
                driver.execute("SELECT bp_train_partial('', ?)", (state,)).fetchone()
            except sqlite3.Error as e:
                raise ValueError(f"train: checkpoint {checkpoint} is not a usable state: {e}") from None
        else:
            state = driver.execute("SELECT bp_train_start(?)", (_options_text(options),)).fetchone()[0]
        while not driver.execute("SELECT bp_train_done(?)", (state,)).fetchone()[0]:
            started = time.perf_counter()
            partial, sizes = _count_round(client, shards, workers, table, column, extension, state,
                                          local_options, split_every, round_retries)
            counted = time.perf_counter()
            state = driver.execute("SELECT bp_train_merge(?, ?)", (state, partial)).fetchone()[0]
            if checkpoint is not None:
                _write_atomically(checkpoint, [state])
            if on_round is not None:
                info = json.loads(driver.execute("SELECT bp_train_info(?)", (state,)).fetchone()[0])
                info.update(partial_bytes=sizes, combined_bytes=len(partial), state_bytes=len(state),
                            count_seconds=counted - started,
                            merge_seconds=time.perf_counter() - counted)
                on_round(info)
            del partial
        model = driver.execute("SELECT bp_train_model(?)", (state,)).fetchone()[0]
        if save_to is not None:
            driver.execute("SELECT bp_model_save(?, ?)", (model, os.fspath(save_to))).fetchone()
        return model
    finally:
        driver.close()
        if owned is not None:
            owned.close()


def _model_argument(client, model):
    """A model name as it is; a model value scattered once to every worker."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return client.scatter(bytes(model), broadcast=True, hash=False)
    return model


def stats(shards, model=None, client=None, column="body", table="docs", *, split_every=8,
          workers=None, extension=None, driver_extension=None):
    """The statistics bp_stats gives over the documents of every shard, as a
    dict: bp_stats_partial per shard, combined as a tree on the workers.
    model: a model name (the default model when None) or a model value."""
    shards = list(shards)
    if not shards:
        raise ValueError("stats: no shards")
    client, owned = _client(client)
    try:
        argument = _model_argument(client, model)
        partials = _submit_per_shard(client, shards, workers, _stats_partial, table, column,
                                     extension, argument)
        partial = _tree(client, partials, "bp_stats_combine", extension, split_every).result()
        driver = _local(driver_extension if driver_extension is not None else extension)
        try:
            return json.loads(driver.execute("SELECT bp_stats_finish(?)", (partial,)).fetchone()[0])
        finally:
            driver.close()
    finally:
        if owned is not None:
            owned.close()


def pretokenize(shards, model=None, client=None, column="body", table="docs", *, suffix="",
                workers=None, extension=None):
    """Writes each shard's documents as token ids next to it, one task per
    shard, and returns a list with a dict per shard (shard, ids, idx,
    documents, tokens).

    For shard FILE: FILE.ids holds the ids of every non-NULL document, in
    the order of the shard's query (rowid order for a table), as
    little-endian int32 (bp_encode_packed's bytes, concatenated);
    FILE.idx holds len + 1 little-endian uint64 offsets, counted in ids:
    document i is ids[idx[i]:idx[i + 1]]. With numpy:
    ids = numpy.fromfile(FILE + ".ids", "<i4");
    idx = numpy.fromfile(FILE + ".idx", "<u8"). `suffix` goes between FILE
    and the extensions (for several models). Both files are written
    through a temporary file and renamed, so they are whole or absent."""
    shards = list(shards)
    client, owned = _client(client)
    try:
        argument = _model_argument(client, model)
        futures = _submit_per_shard(client, shards, workers, _pretokenize_shard, table, column,
                                    extension, argument, suffix)
        return client.gather(futures)
    finally:
        if owned is not None:
            owned.close()
