/*
** analytics.c: token budgets and corpus statistics.
**
**     SELECT bp_truncate(body, 512, 'zh80k') FROM docs;  -- at most 512 tokens
**     SELECT * FROM bp_chunks(body, 256, 'zh80k');       -- see tables.c
**     SELECT lang, bp_stats(body, 'zh80k') FROM docs GROUP BY lang;
**     SELECT bp_stats(body, 'zh80k', '{"threads": 2}') FROM docs;
**
** Both work on the text as it is segmented (NFC for TEXT) and cut it only
** where a token ends and, for TEXT, a character ends, so the pieces are
** valid text. bp_stats counts its rows on the ordered worker pool of
** pool.c, so its result is the same for any number of threads.
*/
#include "binding.h"
#include "pool.h"

#include <stdlib.h>
#include <string.h>

SQLITE_EXTENSION_INIT3

/* ---- bp_truncate ------------------------------------------------------------- */

void bpsql_truncate_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  const char *text;
  size_t len;
  int input;
  if (bpsql_text_argument(ctx, argv[0], "bp_truncate", 1, &text, &len, &input) <= 0) return;
  if (sqlite3_value_type(argv[1]) != SQLITE_INTEGER || sqlite3_value_int64(argv[1]) < 0) {
    bpsql_result_errorf(ctx, SQLITE_MISMATCH,
                        "bp_truncate: argument 2 (max_tokens) must be "
                        "an INTEGER of 0 or more");
    return;
  }
  sqlite3_int64 budget = sqlite3_value_int64(argv[1]);
  bp_model *model;
  if (bpsql_resolve_model(sqlite3_user_data(ctx), argc > 2 ? argv[2] : NULL, "bp_truncate", ctx,
                          NULL, &model) != SQLITE_OK)
    return;
  bp_spans s;
  bp_error err;
  bp_interrupt interrupt = {bpsql_sql_interrupted, sqlite3_context_db_handle(ctx)};
  int rc = bp_encode_spans(model, text, len, input, 0, NULL, &interrupt, &s, &err);
  size_t cut = s.length;
  if (rc == BP_OK && (sqlite3_uint64)s.ids.count > (sqlite3_uint64)budget) {
    /* The end of the last whole token that fits, moved back to where a
    ** character ends. A prefix is segmented on its own, which can take
    ** more tokens than the same bytes did inside the whole text: then
    ** give up one more token. */
    for (size_t keep = (size_t)budget;; keep--) {
      while (keep > 0 && !bp_spans_can_cut(&s, s.ends[keep - 1])) keep--;
      cut = bp_spans_start(&s, keep);
      size_t count;
      rc = bp_count(model, s.text, cut, BP_INPUT_BYTES, NULL, &interrupt, &count, &err);
      if (rc != BP_OK || count <= (size_t)budget || keep == 0) break;
    }
  }
  bp_model_release(model);
  if (rc != BP_OK)
    bpsql_result_error(ctx, "bp_truncate", &err);
  else
    bpsql_result_bytes(ctx, "bp_truncate", s.text, cut, SQLITE_TRANSIENT, s.is_text);
  bp_spans_free(&s);
}

/* ---- bp_stats ---------------------------------------------------------------- */

typedef struct stats {
  sqlite3_int64 documents, bytes, tokens;
  sqlite3_int64 *counts; /* tokens per document */
  size_t capacity;
  int failed;
  bpsql_pool *pool; /* counts the rows on "threads" threads (pool.c) */
} stats;

/* Reads the options object: only "threads". */
static int apply_stats_option(void *target, const char *key, const char *type,
                              sqlite3_value *atom, char **message) {
  int *threads = target;
  sqlite3_int64 v = strcmp(type, "integer") == 0 ? sqlite3_value_int64(atom) : 0;
  if (strcmp(key, "threads") != 0)
    *message = sqlite3_mprintf("unknown option '%s' (expected threads)", key);
  else if (v < 1 || v > 64)
    *message = sqlite3_mprintf("option 'threads' must be an integer from 1 to 64");
  else
    *threads = (int)v;
  return *message != NULL;
}

/* On a worker: the row's count, with its own model. */
static void count_row(void *context, bpsql_task *task, const bp_interrupt *interrupt) {
  (void)context;
  size_t count = 0;
  task->rc = bp_count(task->model, task->text, task->len, task->input, NULL, interrupt, &count,
                      &task->err);
  task->count = count;
}

/* On SQLite's thread, in row order. */
static int add_row(void *context, bpsql_task *task, bp_error *err) {
  stats *s = context;
  if ((size_t)s->documents == s->capacity) {
    size_t capacity = s->capacity ? s->capacity * 2 : 64;
    sqlite3_int64 *counts = sqlite3_realloc64(s->counts, capacity * sizeof *counts);
    if (!counts) {
      return bpsql_error(err, BP_NOMEM, "out of memory");
    }
    s->counts = counts;
    s->capacity = capacity;
  }
  s->counts[s->documents++] = (sqlite3_int64)task->count;
  s->bytes += (sqlite3_int64)task->len;
  s->tokens += (sqlite3_int64)task->count;
  return BP_OK;
}

void bpsql_stats_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  stats *s = sqlite3_aggregate_context(ctx, sizeof *s);
  if (!s) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (s->failed) return;
  bp_error err;
  if (!s->pool) {
    int threads = 1;
    if (argc > 2 && sqlite3_value_type(argv[2]) != SQLITE_NULL &&
        bpsql_read_options(ctx, argv[2], "bp_stats", apply_stats_option, &threads) !=
            SQLITE_OK) {
      s->failed = 1;
      return;
    }
    bpsql_pool_settings settings = {
        .work = count_row,
        .deliver = add_row,
        .context = s,
        .interrupt = {bpsql_sql_interrupted, sqlite3_context_db_handle(ctx)},
        .max_tasks = (size_t)threads * 64,
        .max_bytes = (size_t)threads << 22,
    };
    if (bpsql_pool_new(sqlite3_threadsafe() ? threads : 1, &settings, &s->pool, &err) !=
        BP_OK) {
      bpsql_result_error(ctx, "bp_stats", &err);
      s->failed = 1;
      return;
    }
  }
  const char *text;
  size_t len;
  int input;
  int r = bpsql_text_argument(ctx, argv[0], "bp_stats", 1, &text, &len, &input);
  if (r < 0) s->failed = 1;
  if (r <= 0) return;
  bp_model *model;
  if (bpsql_resolve_model(sqlite3_user_data(ctx), argc > 1 ? argv[1] : NULL, "bp_stats", ctx,
                          NULL, &model) != SQLITE_OK) {
    s->failed = 1;
    return;
  }
  char *copy = sqlite3_malloc64(len + 1);
  if (!copy) {
    bp_model_release(model);
    sqlite3_result_error_nomem(ctx);
    s->failed = 1;
    return;
  }
  memcpy(copy, text, len);
  if (bpsql_pool_submit(s->pool, copy, len, input, model, &err) != BP_OK) {
    bpsql_result_error(ctx, "bp_stats", &err);
    s->failed = 1;
  }
}

static int compare_counts(const void *a, const void *b) {
  sqlite3_int64 x = *(const sqlite3_int64 *)a, y = *(const sqlite3_int64 *)b;
  return (x > y) - (x < y);
}

/* The nearest-rank percentile: the smallest count with at least p percent
** of the documents at or below it. */
static sqlite3_int64 percentile(const sqlite3_int64 *sorted, sqlite3_int64 n, int p) {
  sqlite3_int64 rank = (n * p + 99) / 100;
  return sorted[rank > 0 ? rank - 1 : 0];
}

void bpsql_stats_final(sqlite3_context *ctx) {
  stats *s = sqlite3_aggregate_context(ctx, 0);
  bp_error err;
  if (s && !s->failed && s->pool && bpsql_pool_drain(s->pool, &err) != BP_OK) {
    bpsql_result_error(ctx, "bp_stats", &err);
    s->failed = 1;
  }
  if (s) bpsql_pool_free(s->pool);
  if (s && s->failed) {
    sqlite3_free(s->counts);
    return;
  }
  char *json;
  if (!s || s->documents == 0) {
    json = sqlite3_mprintf("{\"documents\":0,\"bytes\":0,\"tokens\":0}");
  } else {
    qsort(s->counts, (size_t)s->documents, sizeof *s->counts, compare_counts);
    json = sqlite3_mprintf(
        "{\"documents\":%lld,\"bytes\":%lld,\"tokens\":%lld,\"bytes_per_token\":%.4f,"
        "\"min\":%lld,\"p50\":%lld,\"p90\":%lld,\"p99\":%lld,\"max\":%lld}",
        s->documents, s->bytes, s->tokens,
        s->tokens ? (double)s->bytes / (double)s->tokens : 0.0, s->counts[0],
        percentile(s->counts, s->documents, 50), percentile(s->counts, s->documents, 90),
        percentile(s->counts, s->documents, 99), s->counts[s->documents - 1]);
  }
  if (s) sqlite3_free(s->counts);
  if (json)
    sqlite3_result_text(ctx, json, -1, sqlite3_free);
  else
    sqlite3_result_error_nomem(ctx);
}
