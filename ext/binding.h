/*
** binding.h: what the files of the SQLite binding share.
**
** The binding has six parts: registry.c (the bp_models table, the store
** behind it, and turning a model argument into a compiled bp_model, shared
** across connections), functions.c (the scalar functions), tables.c (the
** bp_tokens, bp_vocab and bp_chunks table-valued functions), train.c
** (bp_train and bp_model_shrink), analytics.c (bp_truncate, bp_stats) and
** bytepiece.c (the entry point). The tokenizer itself
** is the plain C library in ../src.
*/
#ifndef BYTEPIECE_BINDING_H
#define BYTEPIECE_BINDING_H

#include <sqlite3ext.h>
#ifndef SQLITE_CORE
extern const sqlite3_api_routines *sqlite3_api;
#endif

#include "bytepiece.h"

#include <stdbool.h>

/* Per-connection state: which compiled model each name resolves to. */
typedef struct bp_connection bp_connection;

bp_connection *bp_connection_new(sqlite3 *db);
void bp_connection_free(void *connection);

/* Resolves a model argument: a model name (TEXT), a model value (BLOB), or,
** when `argument` is NULL, the default model. On success returns SQLITE_OK
** with a reference in *model, to be released with bp_model_release. On
** failure reports the error on `ctx` (prefixed with `function`) or, when
** ctx is NULL, in *message (to free with sqlite3_free), and returns the
** SQLite error code. */
int bp_resolve_model(bp_connection *connection, sqlite3_value *argument,
                     const char *function, sqlite3_context *ctx,
                     char **message, bp_model **model);

/* Sets a TEXT (is_text) or BLOB result of len bytes, or, when that is longer
** than the connection's SQLITE_LIMIT_LENGTH, an SQLITE_TOOBIG error saying
** so. `destroy` is called on data either way (SQLITE_TRANSIENT and
** SQLITE_STATIC as SQLite takes them). */
void bp_result_bytes(sqlite3_context *ctx, const char *function, const void *data,
                     sqlite3_uint64 len, void (*destroy)(void *), bool is_text);

/* The database handle of a connection's state. */
sqlite3 *bp_connection_db(bp_connection *connection);

/* Stops long work when sqlite3_interrupt(db) is called: {bp_sql_interrupted,
** db} as a bp_interrupt. */
int bp_sql_interrupted(void *db);

/* How many models this process compiled, and how many it holds now. */
void bp_registry_statistics(long *compiled, int *shared);

/* Text as it is segmented (the NFC form of TEXT), its tokens, and where
** each token ends: what bp_truncate and bp_chunks cut. */
typedef struct bp_segmented {
  const char *bytes;  /* the segmented text */
  size_t length;
  char *normalized;   /* owned, when NFC changed the text */
  int is_text;
  bp_ids ids;
  size_t *ends;       /* ends[i]: the byte offset where token i ends */
} bp_segmented;
int bp_segment_text(const bp_model *model, const char *text, size_t len, int input,
                    const bp_interrupt *interrupt, bp_segmented *s, bp_error *err);
/* True where text may be cut: a character boundary (any byte of a BLOB). */
bool bp_segmented_can_cut(const bp_segmented *s, size_t offset);
void bp_segmented_free(bp_segmented *s);

/* The same for a model name (NULL: the default model); errors in *message. */
int bp_resolve_model_name(bp_connection *connection, const char *name,
                          const char *function, char **message, bp_model **model);

/* Registration, each returning an SQLite result code. */
int bp_register_models_table(sqlite3 *db, bp_connection *connection);
int bp_register_functions(sqlite3 *db, bp_connection *connection);
int bp_register_tables(sqlite3 *db, bp_connection *connection);
int bp_register_training(sqlite3 *db, bp_connection *connection);
int bp_register_analytics(sqlite3 *db, bp_connection *connection);
int bp_register_fts5(sqlite3 *db, bp_connection *connection);

/* Reports an error on ctx: a library error prefixed with the function name,
** or a formatted message with an SQLite result code. */
void bp_result_error(sqlite3_context *ctx, const char *function,
                     const bp_error *err);
void bp_result_errorf(sqlite3_context *ctx, int code, const char *format, ...);

/* Reads an options object (JSON): calls `apply` for each key with its JSON
** type ("true", "integer", "text", ...) and value; `apply` sets *message
** to refuse. Returns SQLITE_OK, or an error code after reporting on ctx. */
typedef int (*bp_option_handler)(void *target, const char *key, const char *type,
                                 sqlite3_value *atom, char **message);
int bp_read_options(sqlite3_context *ctx, sqlite3_value *json,
                    const char *function, bp_option_handler apply,
                    void *target);

/* Maps a library result code to an SQLite one. */
int bp_sqlite_code(int bp_code);

/* The name of a value's type, for argument errors. */
const char *bp_type_name(sqlite3_value *value);

/* How a text argument is taken: TEXT as UTF-8 to normalize, BLOB as bytes.
** Returns 0 for NULL, 1 for an input, -1 (error set) for another type. */
int bp_text_argument(sqlite3_context *ctx, sqlite3_value *value,
                     const char *function, int position, const char **text,
                     size_t *len, int *input);

/* Reads SQL alpha and seed arguments (either may be NULL or absent). On
** error returns the SQLite code with *message (to sqlite3_free) set. */
int bp_alpha_and_seed(sqlite3_value *alpha, sqlite3_value *seed,
                      const char *function, int position, int *has_alpha,
                      double *alpha_value, int *has_seed,
                      sqlite3_int64 *seed_value, char **message);

/* Seeds *sampler when alpha is given and >= 0 (*sampling = 1); a missing
** seed is drawn from sqlite3_randomness. Negative alpha means Viterbi. */
int bp_sampler_from_options(const char *function, int has_alpha, double alpha,
                            int has_seed, sqlite3_int64 seed,
                            bp_sampler *sampler, int *sampling, char **message);

#endif /* BYTEPIECE_BINDING_H */
