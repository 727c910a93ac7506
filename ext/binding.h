/*
** binding.h: what the files of the SQLite binding share.
**
** The binding: model_cache.c (compiled models shared across connections),
** registry.c (the model store and turning a model argument into a compiled
** bp_model), models_table.c (the bp_models table), these three sharing
** registry.h, with builtin_models.c (the published models built in,
** builtin_models.h) and model_list.c (the bp_model_list table); functions.c
** (the scalar functions), tables.c (the bp_tokens, bp_vocab and bp_chunks
** table-valued functions), train.c (bp_train and bp_model_shrink),
** train_rounds.c (training in rounds: bp_train_start ... bp_train_model),
** train_reading.c (their rows read on worker threads, through pool.c),
** analytics.c (bp_truncate, bp_stats and its parts), export.c (bp_export,
** with the ordered worker pool of pool.c and pool.h), fts5.c (the FTS5
** tokenizer and bp_fts_query), sql_support.c (argument, result and error helpers,
** sql_support.h, which depend on nothing else here), sql_api.h (every SQL
** function, aggregate and module, one row each) and bytepiece.c (the entry
** point, registering those rows). The tokenizer itself is the plain C
** library in ../src.
*/
#ifndef BPSQL_BINDING_H
#define BPSQL_BINDING_H

#include "sql_support.h"
#include "sql_api.h"

/* The implementations registered in sql_api.h. */
#define BPSQL_DECLARE_FUNCTION(name, min_args, max_args, flags, function) \
  void function(sqlite3_context *ctx, int argc, sqlite3_value **argv);
#define BPSQL_DECLARE_AGGREGATE(name, min_args, max_args, flags, step, final) \
  void step(sqlite3_context *ctx, int argc, sqlite3_value **argv);            \
  void final(sqlite3_context *ctx);
#define BPSQL_DECLARE_MODULE(name, module, with_connection) extern const sqlite3_module module;
BPSQL_SQL_API(BPSQL_DECLARE_FUNCTION, BPSQL_DECLARE_AGGREGATE, BPSQL_DECLARE_MODULE)

/* Per-connection state: which compiled model each name resolves to. */
typedef struct bpsql_connection bpsql_connection;

/* The state starts with one reference, the caller's. Every registration
** that carries it (as user data or module aux) holds one more, released by
** the destructor SQLite calls when the registration is replaced, fails, or
** the connection closes; so re-registering, after a load that failed
** partway, never frees state that a registration still uses. */
bpsql_connection *bpsql_connection_new(sqlite3 *db);
bpsql_connection *bpsql_connection_retain(bpsql_connection *connection);
void bpsql_connection_release(void *connection);

/* Resolves a model argument: a model name (TEXT), a model value (BLOB), or,
** when `argument` is NULL, the default model. On success returns SQLITE_OK
** with a reference in *model, to be released with bp_model_release. On
** failure reports the error on `ctx` (prefixed with `function`) or, when
** ctx is NULL, in *message (to free with sqlite3_free), and returns the
** SQLite error code. */
int bpsql_resolve_model(bpsql_connection *connection, sqlite3_value *argument,
                        const char *function, sqlite3_context *ctx, char **message,
                        bp_model **model);

/* The database handle of a connection's state. */
sqlite3 *bpsql_connection_db(bpsql_connection *connection);

/* Keeps `model`, which the binding built and returns as `value` (the
** bytes of bp_model_serialize), so that storing or using those bytes does
** not compile them again (model_cache.c). Takes over the reference;
** `owner` is the connection returning the value: what it keeps is dropped
** when it closes. */
void bpsql_model_cache_keep(const bpsql_connection *owner, bp_model *model,
                            const uint8_t *value, size_t len);

/* How many models this process compiled, and how many it holds now. */
void bpsql_registry_statistics(long *compiled, int *shared);

/* The same for a model name (NULL: the default model); errors in *message. */
int bpsql_resolve_model_name(bpsql_connection *connection, const char *name,
                             const char *function, char **message, bp_model **model);

/* A number that changes whenever bp_models may have changed (a commit by
** any connection, a bp_models write by this one), as noticed by the last
** resolution: what was checked against the store stays true while it is
** the same. */
unsigned bpsql_connection_serial(const bpsql_connection *connection);

/* The name the default model resolves to now, in *name (to free with
** sqlite3_free), or NULL when there is no default model. */
int bpsql_default_model_name(bpsql_connection *connection, char **name);

/* bp_train's options (train.c), which training in rounds (train_rounds.c)
** reads the same way: the library's, and whether to report progress on
** stderr. bpsql_train_options_init sets bp_train's defaults;
** bpsql_apply_train_option is the bpsql_option_handler of its keys. */
typedef struct bpsql_train_options {
  bp_train_options library;
  int progress;
} bpsql_train_options;
void bpsql_train_options_init(bpsql_train_options *o);
int bpsql_apply_train_option(void *target, const char *key, const char *type,
                             sqlite3_value *atom, char **message);

/* The rows of bp_train and bp_train_partial, read into their trainer on
** `threads` worker threads (train_reading.c): start at the first row, add
** every row's text (copied when threads > 1), finish before training
** (the trainer then holds every row's chunks), free in any case. */
#define BPSQL_MAX_READERS 64
typedef struct bpsql_train_reading {
  bp_trainer *trainer;
  struct bpsql_pool *pool; /* NULL: rows go straight to the trainer */
  int reader_count;
  bp_trainer *readers[BPSQL_MAX_READERS]; /* one per worker */
} bpsql_train_reading;
int bpsql_train_reading_start(bpsql_train_reading *r, bp_trainer *trainer, int threads,
                              sqlite3 *db, bp_error *err);
int bpsql_train_reading_add(bpsql_train_reading *r, const char *text, size_t len, int input,
                            bp_error *err);
int bpsql_train_reading_finish(bpsql_train_reading *r, bp_error *err);
void bpsql_train_reading_free(bpsql_train_reading *r);

/* Registers the FTS5 tokenizer "bytepiece" (when SQLite has FTS5);
** returns an SQLite result code. */
int bpsql_register_fts5(sqlite3 *db, bpsql_connection *connection);


#endif /* BPSQL_BINDING_H */
