/*
** sql_support.h: SQL argument, result and error helpers shared by every
** file of the binding (sql_support.c). Depends on SQLite and the library's
** public header only.
*/
#ifndef BPSQL_SQL_SUPPORT_H
#define BPSQL_SQL_SUPPORT_H

#include <sqlite3ext.h>
#ifndef SQLITE_CORE
extern const sqlite3_api_routines *sqlite3_api;
#endif

#include "bytepiece.h"

#include <stdbool.h>
#include <stddef.h>

/* Stops long work when sqlite3_interrupt(db) is called: {bpsql_sql_interrupted,
** db} as a bp_interrupt. */
int bpsql_sql_interrupted(void *db);

/* Sets a TEXT (is_text) or BLOB result of len bytes, or, when that is longer
** than the connection's SQLITE_LIMIT_LENGTH, an SQLITE_TOOBIG error saying
** so. `destroy` is called on data either way (SQLITE_TRANSIENT and
** SQLITE_STATIC as SQLite takes them). */
void bpsql_result_bytes(sqlite3_context *ctx, const char *function, const void *data,
                        sqlite3_uint64 len, void (*destroy)(void *), bool is_text);

/* The one way an error is reported: on a function's ctx, or on a virtual
** table (its zErrMsg, the old one freed). Both set a formatted message with
** an SQLite result code, or out of memory for SQLITE_NOMEM or when the
** message cannot be formatted, and return the code set. bpsql_result_error
** reports a library error, prefixed with the function name. */
int bpsql_result_errorf(sqlite3_context *ctx, int code, const char *format, ...);
int bpsql_vtab_error(sqlite3_vtab *vtab, int code, const char *format, ...);
void bpsql_result_error(sqlite3_context *ctx, const char *function, const bp_error *err);

/* Reads an options object (JSON): calls `apply` for each key with its JSON
** type ("true", "integer", "text", ...) and value; `apply` sets *message
** to refuse. Returns SQLITE_OK, or an error code after reporting on ctx. */
typedef int (*bpsql_option_handler)(void *target, const char *key, const char *type,
                                    sqlite3_value *atom, char **message);
int bpsql_read_options(sqlite3_context *ctx, sqlite3_value *json, const char *function,
                       bpsql_option_handler apply, void *target);

/* Sets a library error (code and formatted message) in the binding's own
** work that reports through bp_error (pool.c, export.c); returns code. */
int bpsql_error(bp_error *err, int code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Maps a library result code to an SQLite one. */
int bpsql_sqlite_code(int bp_code);

/* The name of a value's type (of an SQLITE_INTEGER... type code), for
** argument errors. */
const char *bpsql_type_name(sqlite3_value *value);
const char *bpsql_datatype_name(int datatype);

/* How a text argument is taken: TEXT as UTF-8 to normalize, BLOB as bytes.
** Returns 0 for NULL, 1 for an input, -1 (error set) for another type.
** bpsql_text_value says the error in *message instead (to sqlite3_free; NULL
** when out of memory). */
int bpsql_text_value(sqlite3_value *value, const char *function, int position,
                     const char **text, size_t *len, int *input, char **message);
int bpsql_text_argument(sqlite3_context *ctx, sqlite3_value *value, const char *function,
                        int position, const char **text, size_t *len, int *input);

/* Reads SQL alpha and seed arguments (either may be NULL or absent). On
** error returns the SQLite code with *message (to sqlite3_free) set. */
int bpsql_alpha_and_seed(sqlite3_value *alpha, sqlite3_value *seed, const char *function,
                         int position, int *has_alpha, double *alpha_value, int *has_seed,
                         sqlite3_int64 *seed_value, char **message);

/* Seeds *sampler when alpha is given and >= 0 (*sampling = 1); a missing
** seed is drawn from sqlite3_randomness. Negative alpha means Viterbi. */
int bpsql_sampler_from_options(const char *function, int has_alpha, double alpha, int has_seed,
                               sqlite3_int64 seed, bp_sampler *sampler, int *sampling,
                               char **message);

/* Packed ids: little-endian integers of a dtype, as bp_encode_packed
** returns them and bp_export writes them. */
enum { BPSQL_DTYPE_INT32, BPSQL_DTYPE_UINT32, BPSQL_DTYPE_UINT16 };
/* The dtype of a name ("int32", "uint32", "uint16"), or -1. */
int bpsql_dtype_named(const char *name);
const char *bpsql_dtype_name(int dtype);
size_t bpsql_dtype_size(int dtype);
/* NULL when every id of the model fits the dtype; else the reason (to
** sqlite3_free; NULL too when out of memory: *nomem set), naming the
** model as `model_label` says ("model 'zh80k'"). */
char *bpsql_dtype_refuses(int dtype, const bp_model *model, const char *model_label,
                          int *nomem);
/* Writes n ids into out (n * bpsql_dtype_size(dtype) bytes). The ids must
** fit (bpsql_dtype_refuses). */
void bpsql_pack_ids(const int32_t *ids, size_t n, int dtype, uint8_t *out);

#endif /* BPSQL_SQL_SUPPORT_H */
