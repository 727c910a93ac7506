/*
** train_rounds.c: training in rounds over shards, in SQL.
**
**     SELECT bp_train_start('{"vocab_size": 32000}');                 -- state
**     SELECT bp_train_partial(body, :state) FROM docs WHERE ...;     -- partial
**     SELECT bp_train_combine(partial [, local]) FROM partials;      -- partial
**     SELECT bp_train_merge(:state, partial) FROM partials;          -- next state
**     SELECT bp_train_done(:state), bp_train_model(:state);          -- 1, model
**     SELECT bp_train_info(:state_or_partial);                       -- JSON
**
** The driver loops partial-merge until done; each call is a thin layer over
** the library's rounds (src/train_rounds.c, bytepiece.h): bp_train_partial
** feeds its rows to a trainer made from the first row's state and returns
** its partial; bp_train_combine and bp_train_merge add partials one row at
** a time. Options are bp_train's (train.c): the model-defining ones go to
** bp_train_start, the local ones (threads, max_memory, progress) to each
** bp_train_partial, bp_train_combine and bp_train_merge. A partial over zero rows is the
** empty partial, which fits any state and round. The last merge keeps the
** model it built with its value (model_cache.c), so storing
** bp_train_model's value in that connection does not compile it again.
*/
#include "binding.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

SQLITE_EXTENSION_INIT3

/* Progress on stderr when asked, and sqlite3_interrupt(), as bp_train. */
typedef struct round_progress {
  sqlite3 *db;
  const char *function;
  int report;
  double started;
  const char *last_phase;
} round_progress;

static double seconds_now(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)now.tv_sec + now.tv_nsec * 1e-9;
}

static int round_progress_report(void *context, const char *phase, double done) {
  round_progress *p = context;
  (void)done;
  if (p->report && phase != p->last_phase) {
    p->last_phase = phase;
    fprintf(stderr, "%s: %.1f s: %s\n", p->function, seconds_now() - p->started, phase);
  }
  return bpsql_sql_interrupted(p->db);
}

/* Local options are bp_train's keys that do not change the model. */
static int apply_local_option(void *target, const char *key, const char *type,
                              sqlite3_value *atom, char **message) {
  static const char *const model_keys[] = {"order",     "vocab_size",     "max_piece_length",
                                           "min_count", "isolate_digits", "ensure_unicode"};
  for (size_t k = 0; k < sizeof model_keys / sizeof model_keys[0]; k++)
    if (strcmp(key, model_keys[k]) == 0) {
      *message = sqlite3_mprintf(
          "option '%s' is the state's (give it to bp_train_start); local options are "
          "threads, max_memory and progress",
          key);
      return 1;
    }
  return bpsql_apply_train_option(target, key, type, atom, message);
}

/* Reads local options (argument `value`, may be NULL) into *o with the
** progress callback of *p. */
static int read_local_options(sqlite3_context *ctx, sqlite3_value *value, const char *function,
                              bpsql_train_options *o, round_progress *p) {
  bpsql_train_options_init(o);
  if (value && sqlite3_value_type(value) != SQLITE_NULL &&
      bpsql_read_options(ctx, value, function, apply_local_option, o) != SQLITE_OK)
    return SQLITE_ERROR;
  *p = (round_progress){sqlite3_context_db_handle(ctx), function, o->progress, seconds_now(),
                        NULL};
  o->library.progress = round_progress_report;
  o->library.progress_context = p;
  return SQLITE_OK;
}

/* A state or partial argument: a BLOB. */
static int blob_argument(sqlite3_context *ctx, sqlite3_value *value, const char *function,
                         int position, const char *what, const uint8_t **blob, size_t *len) {
  if (sqlite3_value_type(value) != SQLITE_BLOB) {
    bpsql_result_errorf(ctx, SQLITE_MISMATCH, "%s: argument %d (%s) must be a BLOB, not %s",
                        function, position, what, bpsql_type_name(value));
    return SQLITE_MISMATCH;
  }
  *blob = sqlite3_value_blob(value);
  *len = (size_t)sqlite3_value_bytes(value);
  if (!*blob) *blob = (const uint8_t *)""; /* a zero-length BLOB */
  return SQLITE_OK;
}

/* Reports a library error: what is wrong with a BLOB argument (BP_FORMAT)
** names the argument; interrupts are SQLite's own error. */
static void round_error(sqlite3_context *ctx, const char *function, int position,
                        const char *what, int rc, const bp_error *err) {
  if (rc == BP_INTERRUPT)
    sqlite3_result_error_code(ctx, SQLITE_INTERRUPT);
  else if (rc == BP_FORMAT && position)
    bpsql_result_errorf(ctx, SQLITE_ERROR, "%s: argument %d (%s) %s", function, position, what,
                        err->message);
  else
    bpsql_result_error(ctx, function, err);
}

static void result_blob(sqlite3_context *ctx, const char *function, uint8_t *blob, size_t len) {
  bpsql_result_bytes(ctx, function, blob, len, bp_free, false);
}

void bpsql_train_start_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  bpsql_train_options o;
  bpsql_train_options_init(&o);
  if (argc > 0 && sqlite3_value_type(argv[0]) != SQLITE_NULL &&
      bpsql_read_options(ctx, argv[0], "bp_train_start", bpsql_apply_train_option, &o) !=
          SQLITE_OK)
    return;
  uint8_t *state;
  size_t len;
  bp_error err;
  int rc = bp_train_start(&o.library, &state, &len, &err);
  if (rc != BP_OK) {
    round_error(ctx, "bp_train_start", 0, NULL, rc, &err);
    return;
  }
  result_blob(ctx, "bp_train_start", state, len);
}

/* ---- bp_train_partial(body, state [, local_options]) ------------------------- */

typedef struct partial_aggregate {
  bp_trainer *trainer;         /* from the first row's state */
  bpsql_train_reading reading; /* the rows into the trainer, as bp_train's */
  bpsql_train_options options;
  round_progress progress;
  int failed;
} partial_aggregate;

void bpsql_train_partial_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  static const char *const function = "bp_train_partial";
  partial_aggregate *a = sqlite3_aggregate_context(ctx, sizeof *a);
  if (!a) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (a->failed) return;
  bp_error err;
  if (!a->trainer) {
    const uint8_t *state;
    size_t len;
    if (read_local_options(ctx, argc > 2 ? argv[2] : NULL, function, &a->options,
                           &a->progress) != SQLITE_OK ||
        blob_argument(ctx, argv[1], function, 2, "state", &state, &len) != SQLITE_OK) {
      a->failed = 1;
      return;
    }
    int rc = bp_trainer_from_state(state, len, &a->options.library, &a->trainer, &err);
    if (rc == BP_OK)
      rc = bpsql_train_reading_start(&a->reading, a->trainer, a->options.library.threads,
                                     sqlite3_context_db_handle(ctx), &err);
    if (rc != BP_OK) {
      round_error(ctx, function, 2, "state", rc, &err);
      a->failed = 1;
      return;
    }
  }
  const char *text;
  size_t len;
  int input;
  int r = bpsql_text_argument(ctx, argv[0], function, 1, &text, &len, &input);
  if (r < 0) {
    a->failed = 1;
    return;
  }
  if (r == 0) return; /* NULL rows are skipped, as bp_train skips them */
  int rc = bpsql_train_reading_add(&a->reading, text, len, input, &err);
  if (rc != BP_OK) {
    round_error(ctx, function, 0, NULL, rc, &err);
    a->failed = 1;
  }
}

void bpsql_train_partial_final(sqlite3_context *ctx) {
  static const char *const function = "bp_train_partial";
  partial_aggregate *a = sqlite3_aggregate_context(ctx, 0);
  uint8_t *partial;
  size_t len;
  bp_error err;
  int rc = a && !a->failed ? bpsql_train_reading_finish(&a->reading, &err) : BP_OK;
  if (a) bpsql_train_reading_free(&a->reading);
  if (a && a->failed) {
    bp_trainer_free(a->trainer);
    return; /* reported by the step */
  }
  if (rc != BP_OK) {
    /* A row failed on a worker. */
    bp_trainer_free(a->trainer);
    a->trainer = NULL;
  } else if (!a || !a->trainer) {
    /* No rows: no state seen, and nothing counted. */
    rc = bp_train_empty_partial(&partial, &len, &err);
  } else {
    rc = bp_trainer_partial(a->trainer, &partial, &len, &err);
    bp_trainer_free(a->trainer);
    a->trainer = NULL;
  }
  if (rc != BP_OK) {
    round_error(ctx, function, 0, NULL, rc, &err);
    return;
  }
  result_blob(ctx, function, partial, len);
}

/* ---- bp_train_combine(partial [, local_options]) ----------------------------- */

typedef struct combine_aggregate {
  bp_train_combiner *combiner;
  bpsql_train_options options;
  round_progress progress;
  int failed;
} combine_aggregate;

void bpsql_train_combine_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  static const char *const function = "bp_train_combine";
  combine_aggregate *a = sqlite3_aggregate_context(ctx, sizeof *a);
  if (!a) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (a->failed) return;
  bp_error err;
  int rc = BP_OK;
  if (!a->combiner) {
    if (read_local_options(ctx, argc > 1 ? argv[1] : NULL, function, &a->options,
                           &a->progress) != SQLITE_OK) {
      a->failed = 1;
      return;
    }
    rc = bp_train_combiner_new(&a->options.library, &a->combiner, &err);
  }
  const uint8_t *partial;
  size_t len;
  if (rc == BP_OK &&
      blob_argument(ctx, argv[0], function, 1, "partial", &partial, &len) != SQLITE_OK) {
    a->failed = 1;
    return;
  }
  if (rc == BP_OK) rc = bp_train_combiner_add(a->combiner, partial, len, &err);
  if (rc != BP_OK) {
    round_error(ctx, function, 1, "partial", rc, &err);
    a->failed = 1;
  }
}

void bpsql_train_combine_final(sqlite3_context *ctx) {
  static const char *const function = "bp_train_combine";
  combine_aggregate *a = sqlite3_aggregate_context(ctx, 0);
  uint8_t *partial;
  size_t len;
  bp_error err;
  int rc = BP_OK;
  if (a && a->failed) {
    bp_train_combiner_free(a->combiner);
    return;
  }
  if (!a || !a->combiner) {
    rc = bp_train_empty_partial(&partial, &len, &err);
  } else {
    rc = bp_train_combiner_finish(a->combiner, &partial, &len, &err);
    bp_train_combiner_free(a->combiner);
    a->combiner = NULL;
  }
  if (rc != BP_OK) {
    round_error(ctx, function, 0, NULL, rc, &err);
    return;
  }
  result_blob(ctx, function, partial, len);
}

/* ---- bp_train_merge(state, partial [, local_options]) ------------------------ */

typedef struct merge_aggregate {
  bp_train_merger *merger; /* of the first row's state */
  bpsql_train_options options;
  round_progress progress;
  int failed;
} merge_aggregate;

void bpsql_train_merge_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  static const char *const function = "bp_train_merge";
  merge_aggregate *a = sqlite3_aggregate_context(ctx, sizeof *a);
  if (!a) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (a->failed) return;
  bp_error err;
  if (!a->merger) {
    const uint8_t *state;
    size_t len;
    if (read_local_options(ctx, argc > 2 ? argv[2] : NULL, function, &a->options,
                           &a->progress) != SQLITE_OK ||
        blob_argument(ctx, argv[0], function, 1, "state", &state, &len) != SQLITE_OK) {
      a->failed = 1;
      return;
    }
    int rc = bp_train_merger_new(state, len, &a->options.library, &a->merger, &err);
    if (rc != BP_OK) {
      round_error(ctx, function, 1, "state", rc, &err);
      a->failed = 1;
      return;
    }
  }
  const uint8_t *partial;
  size_t len;
  if (blob_argument(ctx, argv[1], function, 2, "partial", &partial, &len) != SQLITE_OK) {
    a->failed = 1;
    return;
  }
  int rc = bp_train_merger_add(a->merger, partial, len, &err);
  if (rc != BP_OK) {
    round_error(ctx, function, 2, "partial", rc, &err);
    a->failed = 1;
  }
}

void bpsql_train_merge_final(sqlite3_context *ctx) {
  static const char *const function = "bp_train_merge";
  merge_aggregate *a = sqlite3_aggregate_context(ctx, 0);
  if (a && a->failed) {
    bp_train_merger_free(a->merger);
    return;
  }
  if (!a || !a->merger) {
    bpsql_result_errorf(ctx, SQLITE_ERROR,
                        "%s: no partials to merge (zero rows; a shard with no rows "
                        "has a partial too, the empty partial)",
                        function);
    return;
  }
  uint8_t *state;
  size_t len;
  bp_model *model;
  bp_error err;
  int rc = bp_train_merger_finish(a->merger, &state, &len, &model, &err);
  bp_train_merger_free(a->merger);
  a->merger = NULL;
  if (rc != BP_OK) {
    round_error(ctx, function, 0, NULL, rc, &err);
    return;
  }
  if (model) {
    /* bp_train_model's value of this state is these bytes: keep the model
    ** with them, as bp_train does; without the value, it is just freed. */
    uint8_t *value;
    size_t value_len;
    if (bp_train_state_model(state, len, &value, &value_len, &err) == BP_OK) {
      bpsql_model_cache_keep(sqlite3_user_data(ctx), model, value, value_len);
      bp_free(value);
    } else {
      bp_model_release(model);
    }
  }
  result_blob(ctx, function, state, len);
}

/* ---- Reading states ----------------------------------------------------------- */

void bpsql_train_done_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
  const uint8_t *state;
  size_t len;
  if (blob_argument(ctx, argv[0], "bp_train_done", 1, "state", &state, &len) != SQLITE_OK)
    return;
  bp_train_info_data info;
  bp_error err;
  int rc = bp_train_info(state, len, &info, &err);
  if (rc == BP_OK && info.kind != BP_TRAIN_STATE) {
    rc = BP_FORMAT;
    snprintf(err.message, sizeof err.message, "is a partial, not a state");
  }
  if (rc != BP_OK) {
    round_error(ctx, "bp_train_done", 1, "state", rc, &err);
    return;
  }
  sqlite3_result_int(ctx, info.done);
}

void bpsql_train_model_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
  const uint8_t *state;
  size_t len;
  if (blob_argument(ctx, argv[0], "bp_train_model", 1, "state", &state, &len) != SQLITE_OK)
    return;
  uint8_t *value;
  size_t value_len;
  bp_error err;
  int rc = bp_train_state_model(state, len, &value, &value_len, &err);
  if (rc != BP_OK) {
    round_error(ctx, "bp_train_model", 1, "state", rc, &err);
    return;
  }
  result_blob(ctx, "bp_train_model", value, value_len);
}

void bpsql_train_info_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
  const uint8_t *blob;
  size_t len;
  if (blob_argument(ctx, argv[0], "bp_train_info", 1, "state or partial", &blob, &len) !=
      SQLITE_OK)
    return;
  bp_train_info_data info;
  bp_error err;
  int rc = bp_train_info(blob, len, &info, &err);
  if (rc != BP_OK) {
    round_error(ctx, "bp_train_info", 1, "state or partial", rc, &err);
    return;
  }
  char *json =
      sqlite3_mprintf("{\"kind\":\"%s\",\"round\":%d,\"rounds\":%d,\"done\":%d,\"bytes\":%llu}",
                      info.kind == BP_TRAIN_STATE ? "state" : "partial", info.round,
                      info.rounds, info.done, (unsigned long long)info.bytes);
  if (!json) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, json, -1, sqlite3_free);
}
