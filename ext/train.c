/*
** train.c: training in SQL.
**
**     INSERT INTO bp_models(name, model)
**       SELECT 'docs', bp_train(body, json_object('vocab_size', 8000)) FROM docs;
**     SELECT lang, bp_train(body, '{"vocab_size": 4000}') FROM docs GROUP BY lang;
**     SELECT bp_model_shrink('docs', 3000);   -- a smaller vocabulary, derived
**
** bp_train is an aggregate: each row's text goes to a bp_trainer (which
** keeps each distinct chunk once; with threads > 1 the rows are read on
** worker threads, train_reading.c), and the last step trains and returns a
** model value, keeping the model with it (model_cache.c), so that storing
** the value does not compile it again; bp_model_shrink's result likewise.
** Options are the reference's, read from the first row's
** options argument. Training and shrinking check for sqlite3_interrupt() as
** they go; training can report progress on stderr.
*/
#include "binding.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

SQLITE_EXTENSION_INIT3

/* Training spills to temporary files beyond max_memory. Unless told, half
** the machine's physical memory: a corpus that fits comfortably trains at
** full speed, one that does not still spills rather than swaps; 1024 MB
** when the system does not say. */
static uint64_t default_max_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return (uint64_t)1024 << 20;
  return (uint64_t)pages * (uint64_t)page_size / 2;
}

typedef bpsql_train_options train_options;

void bpsql_train_options_init(train_options *o) {
  memset(o, 0, sizeof *o);
  bp_train_options_init(&o->library);
  o->library.max_memory = default_max_memory();
}

enum train_key {
  KEY_ORDER,
  KEY_VOCAB_SIZE,
  KEY_MAX_PIECE_LENGTH,
  KEY_MIN_COUNT,
  KEY_ISOLATE_DIGITS,
  KEY_ENSURE_UNICODE,
  KEY_THREADS,
  KEY_MAX_MEMORY,
  KEY_PROGRESS
};

static const struct {
  const char *name;
  enum train_key key;
  int is_boolean;
  sqlite3_int64 low, high;
} train_keys[] = {
    {"order", KEY_ORDER, 0, 1, 7},
    {"vocab_size", KEY_VOCAB_SIZE, 0, 259, 1 << 30},
    {"max_piece_length", KEY_MAX_PIECE_LENGTH, 0, 1, BP_MAX_PIECE_BYTES},
    {"min_count", KEY_MIN_COUNT, 0, 1, INT64_MAX},
    {"isolate_digits", KEY_ISOLATE_DIGITS, 1, 0, 1},
    {"ensure_unicode", KEY_ENSURE_UNICODE, 1, 0, 1},
    {"threads", KEY_THREADS, 0, 1, 64},
    {"max_memory", KEY_MAX_MEMORY, 0, 0, 1 << 22},
    {"progress", KEY_PROGRESS, 1, 0, 1},
};

int bpsql_apply_train_option(void *target, const char *key, const char *type,
                             sqlite3_value *atom, char **message) {
  train_options *o = target;
  bool integer = strcmp(type, "integer") == 0;
  sqlite3_int64 v = integer ? sqlite3_value_int64(atom) : strcmp(type, "true") == 0;
  /* SQL spells true and false 1 and 0 (json_object('progress', 1)). */
  bool boolean = strcmp(type, "true") == 0 || strcmp(type, "false") == 0 ||
                 (integer && (v == 0 || v == 1));
  size_t k = 0, keys = sizeof train_keys / sizeof train_keys[0];
  while (k < keys && strcmp(train_keys[k].name, key) != 0) k++;
  if (k == keys) {
    *message = sqlite3_mprintf(
        "unknown option '%s' (expected order, vocab_size, "
        "max_piece_length, min_count, isolate_digits, "
        "ensure_unicode, threads, max_memory, progress)",
        key);
    return 1;
  }
  if (train_keys[k].is_boolean ? !boolean : !integer) {
    *message = sqlite3_mprintf("option '%s' must be %s, not %s", key,
                               train_keys[k].is_boolean ? "true or false" : "an integer", type);
    return 1;
  }
  if (v < train_keys[k].low || v > train_keys[k].high) {
    *message = sqlite3_mprintf("option '%s' must be from %lld to %lld, not %lld", key,
                               train_keys[k].low, train_keys[k].high, v);
    return 1;
  }
  switch (train_keys[k].key) {
    case KEY_ORDER: o->library.order = (int)v; break;
    case KEY_VOCAB_SIZE: o->library.vocab_size = (uint32_t)v; break;
    case KEY_MAX_PIECE_LENGTH: o->library.max_piece_length = (int)v; break;
    case KEY_MIN_COUNT: o->library.min_count = (uint64_t)v; break;
    case KEY_ISOLATE_DIGITS: o->library.isolate_digits = (int)v; break;
    case KEY_ENSURE_UNICODE: o->library.ensure_unicode = (int)v; break;
    case KEY_THREADS: o->library.threads = (int)v; break;
    case KEY_MAX_MEMORY: o->library.max_memory = (uint64_t)v << 20; break;
    case KEY_PROGRESS: o->progress = (int)v; break;
  }
  return 0;
}

/* The aggregate's state. */
typedef struct training {
  bp_trainer *trainer;
  bpsql_train_reading reading; /* the rows into the trainer */
  train_options options;
  sqlite3 *db;
  double started; /* seconds, monotonic */
  const char *last_phase;
  double phase_started, last_report;
  int failed;
} training;

static double seconds_now(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)now.tv_sec + now.tv_nsec * 1e-9;
}

/* Reports the phase, the share of it done and its rate on stderr (at most
** once a second), when asked to; and stops on sqlite3_interrupt(). */
static int training_progress(void *context, const char *phase, double done) {
  training *t = context;
  if (t->options.progress) {
    double now = seconds_now();
    if (phase != t->last_phase) {
      t->last_phase = phase;
      t->phase_started = now;
      t->last_report = now;
      fprintf(stderr, "bp_train: %.1f s: %s\n", now - t->started, phase);
    } else if (now - t->last_report >= 1.0 && now > t->phase_started) {
      t->last_report = now;
      double megabytes = done * (double)bp_trainer_bytes(t->trainer) / 1e6;
      fprintf(stderr, "bp_train: %.1f s: %s %.0f%% (%.1f MB/s)\n", now - t->started, phase,
              100 * done, megabytes / (now - t->phase_started));
    }
  }
  return bpsql_sql_interrupted(t->db);
}

void bpsql_train_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  training *t = sqlite3_aggregate_context(ctx, sizeof *t);
  if (!t) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (t->failed) return;
  if (!t->trainer) {
    bpsql_train_options_init(&t->options);
    if (argc > 1 && sqlite3_value_type(argv[1]) != SQLITE_NULL &&
        bpsql_read_options(ctx, argv[1], "bp_train", bpsql_apply_train_option, &t->options) !=
            SQLITE_OK) {
      t->failed = 1;
      return;
    }
    t->db = sqlite3_context_db_handle(ctx);
    t->started = seconds_now();
    t->options.library.progress = training_progress;
    t->options.library.progress_context = t;
    bp_error err;
    if (bp_trainer_new(&t->options.library, &t->trainer, &err) != BP_OK ||
        bpsql_train_reading_start(&t->reading, t->trainer, t->options.library.threads, t->db,
                                  &err) != BP_OK) {
      bpsql_result_error(ctx, "bp_train", &err);
      t->failed = 1;
      return;
    }
  }
  const char *text;
  size_t len;
  int input;
  int r = bpsql_text_argument(ctx, argv[0], "bp_train", 1, &text, &len, &input);
  if (r < 0) {
    t->failed = 1;
    return;
  }
  if (r == 0) return; /* NULL rows are skipped */
  bp_error err;
  int rc = bpsql_train_reading_add(&t->reading, text, len, input, &err);
  if (rc != BP_OK) {
    if (rc == BP_INTERRUPT)
      sqlite3_result_error_code(ctx, SQLITE_INTERRUPT);
    else
      bpsql_result_error(ctx, "bp_train", &err);
    t->failed = 1;
  }
}

/* Returns a model built here as its value, and keeps the model with the
** value (model_cache.c), so that storing or using the value does not
** compile it again. Takes over the model's reference. */
static void result_built_model(sqlite3_context *ctx, const char *function, bp_model *model) {
  bp_error err;
  uint8_t *value;
  size_t len;
  if (bp_model_serialize(model, &value, &len, &err) != BP_OK) {
    bp_model_release(model);
    bpsql_result_error(ctx, function, &err);
    return;
  }
  bpsql_model_cache_keep(sqlite3_user_data(ctx), model, value, len);
  bpsql_result_bytes(ctx, function, value, len, bp_free, false);
}

void bpsql_train_final(sqlite3_context *ctx) {
  training *t = sqlite3_aggregate_context(ctx, 0);
  bp_error err;
  int rc = t && !t->failed ? bpsql_train_reading_finish(&t->reading, &err) : BP_OK;
  if (t) bpsql_train_reading_free(&t->reading);
  if (t && t->failed) {
    bp_trainer_free(t->trainer);
    return; /* the error was reported by the step */
  }
  if (rc != BP_OK) {
    bp_trainer_free(t->trainer);
    if (rc == BP_INTERRUPT)
      sqlite3_result_error_code(ctx, SQLITE_INTERRUPT);
    else
      bpsql_result_error(ctx, "bp_train", &err);
    return;
  }
  if (!t || !t->trainer || bp_trainer_bytes(t->trainer) == 0) {
    if (t) bp_trainer_free(t->trainer);
    bpsql_result_errorf(ctx, SQLITE_ERROR,
                        "bp_train: no text to train on "
                        "(every row was NULL or empty)");
    return;
  }
  bp_model *model;
  rc = bp_trainer_finish(t->trainer, &model, &err);
  bp_trainer_free(t->trainer);
  t->trainer = NULL;
  if (rc != BP_OK) {
    if (rc == BP_INTERRUPT)
      sqlite3_result_error_code(ctx, SQLITE_INTERRUPT);
    else
      bpsql_result_error(ctx, "bp_train", &err);
    return;
  }
  if (t->options.progress)
    fprintf(stderr, "bp_train: %.1f s: done, vocab_size %u\n", seconds_now() - t->started,
            bp_model_vocab_size(model));
  result_built_model(ctx, "bp_train", model);
}

/* Shrinking stops on sqlite3_interrupt(), as training does. */
static int shrink_progress(void *db, const char *phase, double done) {
  (void)phase;
  (void)done;
  return bpsql_sql_interrupted(db);
}

void bpsql_model_shrink_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (sqlite3_value_type(argv[1]) != SQLITE_INTEGER) {
    bpsql_result_errorf(ctx, SQLITE_MISMATCH,
                        "bp_model_shrink: argument 2 "
                        "(vocab_size) must be an INTEGER, not %s",
                        bpsql_type_name(argv[1]));
    return;
  }
  sqlite3_int64 size = sqlite3_value_int64(argv[1]);
  if (size < 259 || size > (1 << 30)) {
    bpsql_result_errorf(ctx, SQLITE_ERROR,
                        "bp_model_shrink: vocab_size must be "
                        "from 259 to %d, not %lld",
                        1 << 30, size);
    return;
  }
  bp_model *model, *smaller;
  if (bpsql_resolve_model(sqlite3_user_data(ctx), argv[0], "bp_model_shrink", ctx, NULL,
                          &model) != SQLITE_OK)
    return;
  bp_error err;
  /* One thread, bp_train's default: bp_model_shrink has no options argument
  ** to ask for more, and a SQL function starts no threads unasked. */
  bp_shrink_options options;
  bp_shrink_options_init(&options);
  options.progress = shrink_progress;
  options.progress_context = sqlite3_context_db_handle(ctx);
  int rc = bp_model_shrink(model, (uint32_t)size, &options, &smaller, &err);
  bp_model_release(model);
  if (rc != BP_OK) {
    bpsql_result_error(ctx, "bp_model_shrink", &err);
    return;
  }
  result_built_model(ctx, "bp_model_shrink", smaller);
}
