/*
** functions.c: the scalar SQL functions.
**
**     SELECT bp_encode('今天天气不错', 'zh80k');          -- [37037,40950,...]
**     SELECT bp_encode(body, 'zh80k', '{"bos":true,"eos":true}') FROM docs;
**     SELECT bp_encode(body, 'zh80k', 0.1, 42) FROM docs;  -- sampled, seeded
**     SELECT bp_encode_packed(body) FROM docs;           -- int32 LE BLOB
**     SELECT bp_encode_packed(body, 'm', '{"dtype":"uint16"}') FROM docs;
**     SELECT bp_count(body, 'zh80k') FROM docs;
**     SELECT bp_decode('[37037,40950]', 'zh80k');        -- TEXT
**     SELECT bp_decode_bytes(x'..', 'zh80k');            -- exact bytes
**     SELECT bp_model_load('m.zip'), bp_model_save('zh80k', 'm.model');
**     SELECT bp_version();
**
** The model argument is a name in bp_models, a model value, or omitted for
** the default model (registry.c). Text arguments are TEXT (normalized to
** NFC, must be valid UTF-8) or BLOB (raw bytes). NULL text gives NULL.
** Argument 3 is alpha (a number: sampling when >= 0) or an options object
** (JSON, read once per statement when constant); argument 4 is the seed.
*/
#include "binding.h"

#include <stdio.h>
#include <string.h>

SQLITE_EXTENSION_INIT3

/* ---- Options -------------------------------------------------------------- */

/* What the third and fourth arguments of the encoding functions say. */
typedef struct encode_options {
  int bos, eos;
  int has_alpha, has_seed;
  double alpha;
  sqlite3_int64 seed;
  int takes_dtype; /* bp_encode_packed: "dtype" is one of its options */
  int dtype;       /* BPSQL_DTYPE_INT32 unless asked */
} encode_options;

static int apply_encode_option(void *target, const char *key, const char *type,
                               sqlite3_value *atom, char **message) {
  encode_options *o = target;
  int is_integer = strcmp(type, "integer") == 0;
  if (strcmp(key, "bos") == 0 || strcmp(key, "eos") == 0) {
    int *flag = key[0] == 'b' ? &o->bos : &o->eos;
    /* json_object('bos', 1) is how SQL spells true. */
    sqlite3_int64 v = is_integer ? sqlite3_value_int64(atom) : -1;
    if (strcmp(type, "true") == 0 || v == 1)
      *flag = 1;
    else if (strcmp(type, "false") == 0 || v == 0)
      *flag = 0;
    else if (is_integer)
      *message = sqlite3_mprintf("option '%s' must be true or false, not %lld", key, v);
    else
      *message = sqlite3_mprintf("option '%s' must be true or false, not %s", key, type);
  } else if (strcmp(key, "alpha") == 0) {
    if (is_integer || strcmp(type, "real") == 0) {
      o->has_alpha = 1;
      o->alpha = sqlite3_value_double(atom);
    } else {
      *message = sqlite3_mprintf("option 'alpha' must be a number, not %s", type);
    }
  } else if (strcmp(key, "seed") == 0) {
    if (is_integer) {
      o->has_seed = 1;
      o->seed = sqlite3_value_int64(atom);
    } else {
      *message = sqlite3_mprintf("option 'seed' must be an integer, not %s", type);
    }
  } else if (o->takes_dtype && strcmp(key, "dtype") == 0) {
    int dtype = strcmp(type, "text") == 0
                    ? bpsql_dtype_named((const char *)sqlite3_value_text(atom))
                    : -1;
    if (dtype >= 0)
      o->dtype = dtype;
    else
      *message = sqlite3_mprintf("option 'dtype' must be 'int32', 'uint32' or 'uint16'");
  } else if (o->takes_dtype) {
    *message =
        sqlite3_mprintf("unknown option '%s' (expected alpha, seed, bos, eos, dtype)", key);
  } else {
    *message = sqlite3_mprintf("unknown option '%s' (expected alpha, seed, bos, eos)", key);
  }
  return *message != NULL;
}

/* Reads arguments 3 and 4 of an encoding function into *options: alpha and
** seed, or an options object in argument 3 (parsed once per statement when
** it is constant); "dtype" is an option when `takes_dtype`. Returns 0
** after reporting an error. */
static int encode_options_argument(sqlite3_context *ctx, int argc, sqlite3_value **argv,
                                   const char *function, int takes_dtype,
                                   encode_options *options) {
  memset(options, 0, sizeof *options);
  options->takes_dtype = takes_dtype;
  options->dtype = BPSQL_DTYPE_INT32;
  if (argc < 3) return 1;
  char *message;
  if (sqlite3_value_type(argv[2]) != SQLITE_TEXT) {
    int rc = bpsql_alpha_and_seed(argv[2], argc > 3 ? argv[3] : NULL, function, 3,
                                  &options->has_alpha, &options->alpha, &options->has_seed,
                                  &options->seed, &message);
    if (rc != SQLITE_OK) {
      bpsql_result_errorf(ctx, rc, "%s", message);
      sqlite3_free(message);
      return 0;
    }
    return 1;
  }
  if (argc > 3) {
    bpsql_result_errorf(ctx, SQLITE_ERROR,
                        "%s: with an options object as argument 3, "
                        "give the seed as its \"seed\" key",
                        function);
    return 0;
  }
  const encode_options *cached = sqlite3_get_auxdata(ctx, 2);
  if (cached) {
    *options = *cached;
    return 1;
  }
  if (bpsql_read_options(ctx, argv[2], function, apply_encode_option, options) != SQLITE_OK)
    return 0;
  encode_options *kept = sqlite3_malloc64(sizeof *kept);
  if (kept) {
    *kept = *options;
    sqlite3_set_auxdata(ctx, 2, kept, sqlite3_free); /* may free it at once */
  }
  return 1;
}

/* ---- Encoding ------------------------------------------------------------- */

static void release_model(void *model) { bp_model_release(model); }

/* The model of one call, with a reference for the caller. A model argument
** that is constant in the SQL (a literal name or value) is resolved once per
** statement: the first row's model is kept with the statement as auxiliary
** data (SQLite drops it at the statement's reset or end, and at once for a
** non-constant argument), so the rows after it skip the name lookup and the
** store checks, about 600 instructions a call, a tenth of the time of a
** 40-byte row. A change to bp_models thus takes effect by the next
** statement, as for every other function. */
static int statement_model(sqlite3_context *ctx, int argc, sqlite3_value **argv,
                           const char *function, bp_model **model) {
  if (argc > 1) {
    bp_model *kept = sqlite3_get_auxdata(ctx, 1);
    if (kept) {
      *model = bp_model_retain(kept);
      return 1;
    }
  }
  if (bpsql_resolve_model(sqlite3_user_data(ctx), argc > 1 ? argv[1] : NULL, function, ctx,
                          NULL, model) != SQLITE_OK)
    return 0;
  /* The statement's reference; released at once when SQLite cannot keep it. */
  if (argc > 1) sqlite3_set_auxdata(ctx, 1, bp_model_retain(*model), release_model);
  return 1;
}

/* Whether every id of the model fits the dtype asked for; else reports an
** error naming the model and its size. */
static int dtype_fits(sqlite3_context *ctx, int argc, sqlite3_value **argv,
                      const char *function, int dtype, const bp_model *model) {
  char *label = NULL;
  if (dtype != BPSQL_DTYPE_UINT16 || bp_model_vocab_size(model) <= 65536) return 1;
  if (argc > 1 && sqlite3_value_type(argv[1]) == SQLITE_TEXT)
    label = sqlite3_mprintf("model '%s'", (const char *)sqlite3_value_text(argv[1]));
  else
    label = sqlite3_mprintf(argc > 1 && sqlite3_value_type(argv[1]) == SQLITE_BLOB
                                ? "the model value"
                                : "the default model");
  int nomem = !label;
  char *message = nomem ? NULL : bpsql_dtype_refuses(dtype, model, label, &nomem);
  sqlite3_free(label);
  if (nomem)
    sqlite3_result_error_nomem(ctx);
  else
    bpsql_result_errorf(ctx, SQLITE_ERROR, "%s: %s", function, message);
  sqlite3_free(message);
  return 0;
}

/* The work shared by the encoding functions: resolves the arguments
** (text, model, alpha or options, seed) and encodes. Returns 1 with ids (or
** just a count when `ids` is NULL), 0 when the text is NULL, -1 after
** reporting an error. */
static int encode_arguments(sqlite3_context *ctx, int argc, sqlite3_value **argv,
                            const char *function, bp_ids *ids, size_t *count, int *dtype) {
  const char *text;
  size_t len;
  int input;
  int r = bpsql_text_argument(ctx, argv[0], function, 1, &text, &len, &input);
  if (r <= 0) return r;
  encode_options options;
  /* Only bp_encode_packed asks for a dtype. */
  if (!encode_options_argument(ctx, argc, argv, function, dtype != NULL, &options)) return -1;
  bp_sampler sampler;
  int sampling;
  char *message;
  int rc =
      bpsql_sampler_from_options(function, options.has_alpha, options.alpha, options.has_seed,
                                 options.seed, &sampler, &sampling, &message);
  if (rc != SQLITE_OK) {
    bpsql_result_errorf(ctx, rc, "%s", message);
    sqlite3_free(message);
    return -1;
  }
  bp_model *model;
  if (!statement_model(ctx, argc, argv, function, &model)) return -1;
  if (dtype) {
    *dtype = options.dtype;
    if (!dtype_fits(ctx, argc, argv, function, options.dtype, model)) {
      bp_model_release(model);
      return -1;
    }
  }
  bp_error err;
  bp_sampler *random = sampling ? &sampler : NULL;
  bp_interrupt interrupt = {bpsql_sql_interrupted, sqlite3_context_db_handle(ctx)};
  rc = BP_OK;
  *count = 0;
  if (ids) {
    if (options.bos && !bp_ids_push(ids, BP_ID_BOS)) rc = err.code = BP_NOMEM;
    if (rc == BP_OK) rc = bp_encode(model, text, len, input, random, &interrupt, ids, &err);
    if (rc == BP_OK && options.eos && !bp_ids_push(ids, BP_ID_EOS)) rc = err.code = BP_NOMEM;
    *count = ids->count;
  } else {
    rc = bp_count(model, text, len, input, random, &interrupt, count, &err);
    *count += (size_t)options.bos + (size_t)options.eos;
  }
  bp_model_release(model);
  if (rc != BP_OK) {
    bpsql_result_error(ctx, function, &err);
    return -1;
  }
  return 1;
}

/* "00" to "99": the writer below turns two digits at a time into text with
** one division by 100 instead of one division by 10 per digit. */
static const char digit_pairs[] =
    "00010203040506070809101112131415161718192021222324"
    "25262728293031323334353637383940414243444546474849"
    "50515253545556575859606162636465666768697071727374"
    "75767778798081828384858687888990919293949596979899";

/* Writes v in decimal at o and returns the end: its length is known first,
** so the digits go straight to their places from the right. The ids of
** today's vocabularies have at most 6 digits; the comparisons are ordered
** for them. */
static char *write_decimal(char *o, uint32_t v) {
  int digits;
  if (v < 10000)
    digits = v < 100 ? (v < 10 ? 1 : 2) : (v < 1000 ? 3 : 4);
  else if (v < 1000000)
    digits = v < 100000 ? 5 : 6;
  else {
    digits = 7;
    for (uint32_t limit = 10000000; digits < 10 && v >= limit; limit *= 10) digits++;
  }
  char *q = o + digits;
  while (v >= 100) {
    uint32_t pair = v % 100;
    v /= 100;
    q -= 2;
    q[0] = digit_pairs[2 * pair];
    q[1] = digit_pairs[2 * pair + 1];
  }
  if (v >= 10) {
    q[-2] = digit_pairs[2 * v];
    q[-1] = digit_pairs[2 * v + 1];
  } else {
    q[-1] = (char)('0' + v);
  }
  return o + digits;
}

static char *format_ids_json(const int32_t *ids, size_t n, size_t *len) {
  /* At most 10 digits and a comma per id, and the brackets. */
  char *json = sqlite3_malloc64((sqlite3_uint64)n * 11 + 3);
  if (!json) return NULL;
  char *o = json;
  *o++ = '[';
  for (size_t i = 0; i < n; i++) {
    if (i) *o++ = ',';
    o = write_decimal(o, (uint32_t)ids[i]);
  }
  *o++ = ']';
  *len = (size_t)(o - json);
  return json;
}

void bpsql_encode_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  bp_ids ids = {0};
  size_t count;
  int r = encode_arguments(ctx, argc, argv, "bp_encode", &ids, &count, NULL);
  if (r > 0) {
    size_t len;
    char *json = format_ids_json(ids.ids, ids.count, &len);
    if (json)
      bpsql_result_bytes(ctx, "bp_encode", json, len, sqlite3_free, true);
    else
      sqlite3_result_error_nomem(ctx);
  }
  bp_ids_free(&ids);
}

void bpsql_encode_packed_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  bp_ids ids = {0};
  size_t count;
  int dtype = BPSQL_DTYPE_INT32;
  int r = encode_arguments(ctx, argc, argv, "bp_encode_packed", &ids, &count, &dtype);
  if (r > 0) {
    sqlite3_uint64 len = (sqlite3_uint64)ids.count * bpsql_dtype_size(dtype);
    uint8_t *packed = sqlite3_malloc64(len + 1);
    if (packed) {
      bpsql_pack_ids(ids.ids, ids.count, dtype, packed);
      bpsql_result_bytes(ctx, "bp_encode_packed", packed, len, sqlite3_free, false);
    } else {
      sqlite3_result_error_nomem(ctx);
    }
  }
  bp_ids_free(&ids);
}

void bpsql_count_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  size_t count;
  if (encode_arguments(ctx, argc, argv, "bp_count", NULL, &count, NULL) > 0)
    sqlite3_result_int64(ctx, (sqlite3_int64)count);
}

/* ---- Decoding ------------------------------------------------------------- */

/* Reads ids from a JSON array of integers or a packed int32 LE BLOB. Returns
** 1 with a new array (sqlite3_free), 0 for NULL, -1 after reporting. */
static int ids_argument(sqlite3_context *ctx, sqlite3_value *value, const char *function,
                        int64_t **ids, size_t *n) {
  *ids = NULL;
  *n = 0;
  int type = sqlite3_value_type(value);
  if (type == SQLITE_NULL) return 0;
  if (type == SQLITE_BLOB) {
    const uint8_t *p = sqlite3_value_blob(value);
    size_t len = (size_t)sqlite3_value_bytes(value);
    if (len % 4) {
      bpsql_result_errorf(ctx, SQLITE_ERROR,
                          "%s: a packed ids BLOB must be a multiple of 4 bytes long, "
                          "not %llu",
                          function, (unsigned long long)len);
      return -1;
    }
    *n = len / 4;
    *ids = sqlite3_malloc64(*n * sizeof **ids + 1);
    if (!*ids) {
      sqlite3_result_error_nomem(ctx);
      return -1;
    }
    for (size_t i = 0; i < *n; i++)
      (*ids)[i] = (int32_t)((uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                            (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24);
    return 1;
  }
  if (type != SQLITE_TEXT) {
    bpsql_result_errorf(ctx, SQLITE_MISMATCH,
                        "%s: argument 1 must be a JSON array of ids (TEXT) or packed "
                        "ids (BLOB), not %s",
                        function, bpsql_type_name(value));
    return -1;
  }
  const char *p = (const char *)sqlite3_value_text(value);
  size_t len = (size_t)sqlite3_value_bytes(value);
  if (!p) {
    sqlite3_result_error_nomem(ctx);
    return -1;
  }
  const char *end = p + len;
  /* At most one id per two characters: "1,". */
  *ids = sqlite3_malloc64((len / 2 + 1) * sizeof **ids);
  if (!*ids) {
    sqlite3_result_error_nomem(ctx);
    return -1;
  }
#define SKIP_SPACE() \
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++
  SKIP_SPACE();
  if (p == end || *p++ != '[') goto malformed;
  SKIP_SPACE();
  if (p < end && *p == ']') {
    p++;
  } else {
    for (;;) {
      SKIP_SPACE();
      int negative = p < end && *p == '-';
      if (negative) p++;
      const char *digits = p;
      uint64_t v = 0;
      while (p < end && *p >= '0' && *p <= '9') {
        if (v > (uint64_t)INT64_MAX / 10) goto malformed;
        v = v * 10 + (uint64_t)(*p++ - '0');
      }
      if (p == digits || v > (uint64_t)INT64_MAX) goto malformed;
      (*ids)[(*n)++] = negative ? -(int64_t)v : (int64_t)v;
      SKIP_SPACE();
      if (p < end && *p == ',') {
        p++;
        continue;
      }
      if (p < end && *p == ']') {
        p++;
        break;
      }
      goto malformed;
    }
  }
  SKIP_SPACE();
  if (p != end) goto malformed;
#undef SKIP_SPACE
  return 1;
malformed:
  sqlite3_free(*ids);
  *ids = NULL;
  bpsql_result_errorf(ctx, SQLITE_ERROR, "%s: argument 1 is not a JSON array of integer ids",
                      function);
  return -1;
}

/* Decodes argv[0] with the model of argv[1]; returns the bytes or NULL. */
static char *decode_arguments(sqlite3_context *ctx, int argc, sqlite3_value **argv,
                              const char *function, size_t *len) {
  int64_t *ids;
  size_t n;
  if (ids_argument(ctx, argv[0], function, &ids, &n) <= 0) return NULL;
  bp_model *model;
  if (bpsql_resolve_model(sqlite3_user_data(ctx), argc > 1 ? argv[1] : NULL, function, ctx,
                          NULL, &model) != SQLITE_OK) {
    sqlite3_free(ids);
    return NULL;
  }
  char *bytes;
  bp_error err;
  int rc = bp_decode(model, ids, n, &bytes, len, &err);
  bp_model_release(model);
  sqlite3_free(ids);
  if (rc != BP_OK) {
    bpsql_result_error(ctx, function, &err);
    return NULL;
  }
  return bytes;
}

void bpsql_decode_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  size_t len;
  char *bytes = decode_arguments(ctx, argc, argv, "bp_decode", &len);
  if (!bytes) return;
  len = bp_utf8_drop_invalid(bytes, len);
  bpsql_result_bytes(ctx, "bp_decode", bytes, len, bp_free, true);
}

void bpsql_decode_bytes_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  size_t len;
  char *bytes = decode_arguments(ctx, argc, argv, "bp_decode_bytes", &len);
  if (bytes) bpsql_result_bytes(ctx, "bp_decode_bytes", bytes, len, bp_free, false);
}

/* ---- Model files ---------------------------------------------------------- */

static const char *path_argument(sqlite3_context *ctx, sqlite3_value *value,
                                 const char *function, int position) {
  if (sqlite3_value_type(value) != SQLITE_TEXT) {
    if (sqlite3_value_type(value) != SQLITE_NULL)
      bpsql_result_errorf(ctx, SQLITE_MISMATCH,
                          "%s: argument %d must be a file path "
                          "(TEXT), not %s",
                          function, position, bpsql_type_name(value));
    return NULL;
  }
  const char *path = (const char *)sqlite3_value_text(value);
  if (!path) sqlite3_result_error_nomem(ctx);
  return path;
}

void bpsql_model_load_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const char *path = path_argument(ctx, argv[0], "bp_model_load", 1);
  if (!path) return;
  bp_model *model;
  bp_error err;
  uint8_t *value;
  size_t len;
  if (bp_model_load_file(path, &model, &err) != BP_OK) {
    bpsql_result_error(ctx, "bp_model_load", &err);
    return;
  }
  int rc = bp_model_serialize(model, &value, &len, &err);
  bp_model_release(model);
  if (rc != BP_OK) {
    bpsql_result_error(ctx, "bp_model_load", &err);
    return;
  }
  bpsql_result_bytes(ctx, "bp_model_load", value, len, bp_free, false);
}

void bpsql_model_save_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  const char *path = path_argument(ctx, argv[1], "bp_model_save", 2);
  if (!path) return;
  int format = BP_FILE_BYTEPIECE;
  if (argc > 2) {
    const char *name = sqlite3_value_type(argv[2]) == SQLITE_TEXT
                           ? (const char *)sqlite3_value_text(argv[2])
                           : NULL;
    if (name && strcmp(name, "sentencepiece") == 0) {
      format = BP_FILE_SENTENCEPIECE;
    } else if (!name || strcmp(name, "bytepiece") != 0) {
      bpsql_result_errorf(ctx, SQLITE_ERROR,
                          "bp_model_save: argument 3 (format) must be "
                          "'bytepiece' or 'sentencepiece'");
      return;
    }
  }
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
    bpsql_result_errorf(ctx, SQLITE_MISMATCH,
                        "bp_model_save: argument 1 must be a "
                        "model name or a model value, not NULL");
    return;
  }
  bp_model *model;
  if (bpsql_resolve_model(sqlite3_user_data(ctx), argv[0], "bp_model_save", ctx, NULL,
                          &model) != SQLITE_OK)
    return;
  bp_error err;
  size_t written;
  int rc = bp_model_save_file(model, path, format, &written, &err);
  bp_model_release(model);
  if (rc != BP_OK) {
    bpsql_result_error(ctx, "bp_model_save", &err);
    return;
  }
  sqlite3_result_int64(ctx, (sqlite3_int64)written);
}

void bpsql_version_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_text(ctx, BP_VERSION, -1, SQLITE_STATIC);
}

/* A JSON object describing the build and the compiled-model cache. */
void bpsql_debug_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  long compiled;
  int shared;
  bpsql_registry_statistics(&compiled, &shared);
  char *json = sqlite3_mprintf(
      "{\"version\":\"%s\",\"sqlite\":\"%s\",\"utf8proc\":\"%s\","
      "\"models_compiled\":%ld,\"models_in_memory\":%d}",
      BP_VERSION, sqlite3_libversion(), bp_unicode_library_version(), compiled, shared);
  if (json)
    sqlite3_result_text(ctx, json, -1, sqlite3_free);
  else
    sqlite3_result_error_nomem(ctx);
}
