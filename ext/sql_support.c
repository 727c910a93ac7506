/*
** sql_support.c: what every SQL function and table of the binding needs to
** take its arguments and give its results and errors.
**
**     bpsql_text_argument(ctx, argv[0], "bp_encode", 1, &text, &len, &input);
**     bpsql_result_errorf(ctx, SQLITE_MISMATCH, "bp_x: argument 2 must be ...");
**     bpsql_result_bytes(ctx, "bp_encode", json, len, sqlite3_free, true);
**
** SQL values in (type names for messages, text arguments, options objects,
** alpha and seed), SQLite results and errors out (result-code mapping, the
** length limit), packed ids in a dtype, and the interrupt check long work
** polls. It uses SQLite
** and the library's public header only, nothing else of ext/, so every
** other file of the binding may use it.
*/
#include "sql_support.h"

#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

SQLITE_EXTENSION_INIT3

/* Asked directly where SQLite can say (3.41 and later), else by running a
** trivial statement, which an interrupt stops. */
int bpsql_sql_interrupted(void *db) {
#if SQLITE_VERSION_NUMBER >= 3041000
  if (sqlite3_libversion_number() >= 3041000) return sqlite3_is_interrupted(db);
#endif
  return sqlite3_exec(db, "SELECT 1", NULL, NULL, NULL) == SQLITE_INTERRUPT;
}

void bpsql_result_bytes(sqlite3_context *ctx, const char *function, const void *data,
                        sqlite3_uint64 len, void (*destroy)(void *), bool is_text) {
  int limit = sqlite3_limit(sqlite3_context_db_handle(ctx), SQLITE_LIMIT_LENGTH, -1);
  if (len > (sqlite3_uint64)limit) {
    bpsql_result_errorf(ctx, SQLITE_TOOBIG,
                        "%s: the result would be %llu bytes, more than "
                        "SQLITE_LIMIT_LENGTH (%d)",
                        function, (unsigned long long)len, limit);
    if (destroy != SQLITE_TRANSIENT && destroy != SQLITE_STATIC) destroy((void *)data);
  } else if (is_text) {
    sqlite3_result_text64(ctx, data, len, destroy, SQLITE_UTF8);
  } else {
    sqlite3_result_blob64(ctx, data, len, destroy);
  }
}

int bpsql_sqlite_code(int bp_code) {
  switch (bp_code) {
    case BP_OK: return SQLITE_OK;
    case BP_NOMEM: return SQLITE_NOMEM;
    case BP_TOOBIG: return SQLITE_TOOBIG;
    case BP_INTERRUPT: return SQLITE_INTERRUPT;
    default: return SQLITE_ERROR;
  }
}

const char *bpsql_datatype_name(int datatype) {
  switch (datatype) {
    case SQLITE_INTEGER: return "INTEGER";
    case SQLITE_FLOAT: return "REAL";
    case SQLITE_TEXT: return "TEXT";
    case SQLITE_BLOB: return "BLOB";
    default: return "NULL";
  }
}

const char *bpsql_type_name(sqlite3_value *value) {
  return bpsql_datatype_name(sqlite3_value_type(value));
}

void bpsql_result_error(sqlite3_context *ctx, const char *function, const bp_error *err) {
  bpsql_result_errorf(ctx, bpsql_sqlite_code(err->code), "%s: %s", function, err->message);
}

int bpsql_result_errorf(sqlite3_context *ctx, int code, const char *format, ...) {
  char *message = NULL;
  if (code != SQLITE_NOMEM) {
    va_list ap;
    va_start(ap, format);
    message = sqlite3_vmprintf(format, ap);
    va_end(ap);
  }
  if (!message) {
    sqlite3_result_error_nomem(ctx);
    return SQLITE_NOMEM;
  }
  sqlite3_result_error(ctx, message, -1);
  sqlite3_result_error_code(ctx, code);
  sqlite3_free(message);
  return code;
}

int bpsql_error(bp_error *err, int code, const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  err->code = code;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): ap is started just above; clang 14's checker misreports it when an earlier file of the same run used va_start
  vsnprintf(err->message, sizeof err->message, format, ap);
  va_end(ap);
  return code;
}

int bpsql_vtab_error(sqlite3_vtab *vtab, int code, const char *format, ...) {
  if (code == SQLITE_NOMEM) return code;
  va_list ap;
  va_start(ap, format);
  char *message = sqlite3_vmprintf(format, ap);
  va_end(ap);
  if (!message) return SQLITE_NOMEM;
  sqlite3_free(vtab->zErrMsg);
  vtab->zErrMsg = message;
  return code;
}

int bpsql_text_value(sqlite3_value *value, const char *function, int position,
                     const char **text, size_t *len, int *input, char **message) {
  *message = NULL;
  switch (sqlite3_value_type(value)) {
    case SQLITE_NULL: return 0;
    case SQLITE_TEXT:
      *text = (const char *)sqlite3_value_text(value);
      *input = BP_INPUT_TEXT;
      break;
    case SQLITE_BLOB:
      *text = (const char *)sqlite3_value_blob(value);
      *input = BP_INPUT_BYTES;
      break;
    default:
      *message = sqlite3_mprintf("%s: argument %d must be TEXT or BLOB, not %s", function,
                                 position, bpsql_type_name(value));
      return -1;
  }
  *len = (size_t)sqlite3_value_bytes(value);
  if (!*text && *len == 0) *text = "";
  return *text ? 1 : -1; /* no text and no message: out of memory */
}

int bpsql_text_argument(sqlite3_context *ctx, sqlite3_value *value, const char *function,
                        int position, const char **text, size_t *len, int *input) {
  char *message;
  int r = bpsql_text_value(value, function, position, text, len, input, &message);
  if (r >= 0) return r; /* no message to free */
  if (message)
    bpsql_result_errorf(ctx, SQLITE_MISMATCH, "%s", message);
  else
    sqlite3_result_error_nomem(ctx);
  sqlite3_free(message);
  return r;
}

/* ---- Options and sampling ------------------------------------------------- */

int bpsql_read_options(sqlite3_context *ctx, sqlite3_value *json, const char *function,
                       bpsql_option_handler apply, void *target) {
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  sqlite3_stmt *stmt;
  int rc = sqlite3_prepare_v2(
      db, "SELECT key, type, atom FROM json_each(?1) WHERE json_type(?1) = 'object'", -1, &stmt,
      NULL);
  if (rc != SQLITE_OK) {
    bpsql_result_errorf(ctx, rc, "%s: %s", function, sqlite3_errmsg(db));
    return rc;
  }
  sqlite3_bind_value(stmt, 1, json);
  char *message = NULL;
  int rows = 0;
  while (!message && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    rows++;
    const char *key = (const char *)sqlite3_column_text(stmt, 0);
    const char *type = (const char *)sqlite3_column_text(stmt, 1);
    if (!key || !type) {
      rc = SQLITE_NOMEM;
      break;
    }
    apply(target, key, type, sqlite3_column_value(stmt, 2), &message);
  }
  if (!message && rc == SQLITE_ERROR)
    message = sqlite3_mprintf("options are not valid JSON");
  else if (!message && rc == SQLITE_DONE && rows == 0) {
    /* Either {} or not an object at all. */
    sqlite3_finalize(stmt);
    rc = sqlite3_prepare_v2(db, "SELECT json_type(?1) = 'object'", -1, &stmt, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_value(stmt, 1, json);
      rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW && !sqlite3_column_int(stmt, 0))
        message = sqlite3_mprintf("options must be a JSON object");
      else if (rc == SQLITE_ROW)
        rc = SQLITE_DONE;
    }
  }
  sqlite3_finalize(stmt);
  if (message) {
    bpsql_result_errorf(ctx, SQLITE_ERROR, "%s: %s", function, message);
    sqlite3_free(message);
    return SQLITE_ERROR;
  }
  if (rc != SQLITE_DONE) {
    if (rc == SQLITE_NOMEM)
      sqlite3_result_error_nomem(ctx);
    else
      bpsql_result_errorf(ctx, rc, "%s: %s", function, sqlite3_errmsg(db));
    return rc;
  }
  return SQLITE_OK;
}

int bpsql_sampler_from_options(const char *function, int has_alpha, double alpha, int has_seed,
                               sqlite3_int64 seed, bp_sampler *sampler, int *sampling,
                               char **message) {
  *sampling = 0;
  *message = NULL;
  if (!has_alpha || alpha < 0) return SQLITE_OK; /* the Viterbi result */
  /* Any finite alpha: the largest sample the Viterbi path (encode.c). */
  if (!(alpha <= DBL_MAX)) {
    *message = sqlite3_mprintf("%s: alpha must be a finite number", function);
    return *message ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  uint64_t fresh;
  if (!has_seed) sqlite3_randomness(sizeof fresh, &fresh);
  bp_sampler_init(sampler, alpha, has_seed ? (uint64_t)seed : fresh);
  *sampling = 1;
  return SQLITE_OK;
}

int bpsql_alpha_and_seed(sqlite3_value *alpha, sqlite3_value *seed, const char *function,
                         int position, int *has_alpha, double *alpha_value, int *has_seed,
                         sqlite3_int64 *seed_value, char **message) {
  *message = NULL;
  *has_alpha = *has_seed = 0;
  if (alpha && sqlite3_value_type(alpha) != SQLITE_NULL) {
    int type = sqlite3_value_type(alpha);
    if (type != SQLITE_INTEGER && type != SQLITE_FLOAT) {
      *message = sqlite3_mprintf("%s: argument %d (alpha) must be a number, not %s", function,
                                 position, bpsql_type_name(alpha));
      return *message ? SQLITE_MISMATCH : SQLITE_NOMEM;
    }
    *has_alpha = 1;
    *alpha_value = sqlite3_value_double(alpha);
  }
  if (seed && sqlite3_value_type(seed) != SQLITE_NULL) {
    if (sqlite3_value_type(seed) != SQLITE_INTEGER) {
      *message = sqlite3_mprintf("%s: argument %d (seed) must be an INTEGER, not %s", function,
                                 position + 1, bpsql_type_name(seed));
      return *message ? SQLITE_MISMATCH : SQLITE_NOMEM;
    }
    *has_seed = 1;
    *seed_value = sqlite3_value_int64(seed);
  }
  return SQLITE_OK;
}

/* ---- Packed ids ------------------------------------------------------------ */

static const char *const dtype_names[] = {"int32", "uint32", "uint16"};

int bpsql_dtype_named(const char *name) {
  for (int d = 0; d < 3; d++)
    if (name && strcmp(name, dtype_names[d]) == 0) return d;
  return -1;
}

const char *bpsql_dtype_name(int dtype) { return dtype_names[dtype]; }

size_t bpsql_dtype_size(int dtype) { return dtype == BPSQL_DTYPE_UINT16 ? 2 : 4; }

char *bpsql_dtype_refuses(int dtype, const bp_model *model, const char *model_label,
                          int *nomem) {
  *nomem = 0;
  /* Ids are 0 .. vocab_size - 1; int32 and uint32 hold every vocabulary a
  ** model can have (at most 2^30 ids). */
  uint32_t vocab_size = bp_model_vocab_size(model);
  if (dtype != BPSQL_DTYPE_UINT16 || vocab_size <= 65536) return NULL;
  char *message = sqlite3_mprintf(
      "dtype 'uint16' holds ids up to 65535, but %s has %u ids (ids up to %u); "
      "use 'uint32'",
      model_label, vocab_size, vocab_size - 1);
  if (!message) *nomem = 1;
  return message;
}

void bpsql_pack_ids(const int32_t *ids, size_t n, int dtype, uint8_t *out) {
  if (dtype == BPSQL_DTYPE_UINT16) {
    for (size_t i = 0; i < n; i++) {
      uint32_t v = (uint32_t)ids[i];
      out[2 * i] = (uint8_t)v;
      out[2 * i + 1] = (uint8_t)(v >> 8);
    }
    return;
  }
  for (size_t i = 0; i < n; i++) {
    uint32_t v = (uint32_t)ids[i];
    out[4 * i] = (uint8_t)v;
    out[4 * i + 1] = (uint8_t)(v >> 8);
    out[4 * i + 2] = (uint8_t)(v >> 16);
    out[4 * i + 3] = (uint8_t)(v >> 24);
  }
}
