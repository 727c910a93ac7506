/*
** analytics.c: token budgets and corpus statistics.
**
**     SELECT bp_truncate(body, 512, 'zh80k') FROM docs;  -- at most 512 tokens
**     SELECT * FROM bp_chunks(body, 256, 'zh80k');       -- see tables.c
**     SELECT lang, bp_stats(body, 'zh80k') FROM docs GROUP BY lang;
**     -- the same statistics in parts, made anywhere and added up:
**     SELECT bp_stats_partial(body, 'zh80k') FROM docs WHERE ...;  -- BLOB
**     SELECT bp_stats_finish(bp_stats_combine(partial)) FROM partials;
**     SELECT bp_stats(body, 'zh80k', '{"threads": 2}') FROM docs;
**
** Both work on the text as it is segmented (NFC for TEXT) and cut it only
** where a token ends and, for TEXT, a character ends, so the pieces are
** valid text. bp_stats and bp_stats_partial count their rows on the ordered
** worker pool of pool.c, so their result is the same for any number of
** threads.
*/
#include "binding.h"
#include "pool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

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

/* ---- bp_stats, bp_stats_partial, bp_stats_combine, bp_stats_finish --------- */

/* Every statistic bp_stats reports is a function of the totals and of the
** multiset of tokens per document, so the statistics of a corpus in parts
** are exact: a partial holds the totals and a histogram of the counts
** (count -> documents), which adds up in any order and grouping. bp_stats
** itself goes through the same histogram, so that finish(combine(partials))
** and bp_stats over all rows are one computation and give the same JSON.
**
** The partial value (a BLOB), little-endian:
**   "BPSTATS\0"  u32 version (1)  32-byte digest of the model (all zero
**   when there are no documents: such a partial combines with any)
**   u32 payload bytes  u32 compressed bytes  u32 CRC-32 of the 52 bytes
**   before it and of the compressed bytes;
** then the payload, zlib-compressed: varints documents, bytes, tokens, the
** number of distinct counts, and for each distinct count in increasing
** order the difference from the previous one (from 0) and its documents. */

#define STATS_MAGIC "BPSTATS\0"
#define STATS_VERSION 1
#define STATS_HEADER_BYTES 56
#define MODEL_MAGIC "BPMODEL\0"

/* One bin of the histogram: `documents` documents of `count` tokens. */
typedef struct stats_bin {
  sqlite3_uint64 count, documents;
} stats_bin;

/* The aggregate context of all four: counts collected by the bp_stats and
** bp_stats_partial steps, or the histogram the combine step adds to. */
typedef struct stats {
  sqlite3_int64 documents, bytes, tokens;
  sqlite3_int64 *counts; /* tokens per document, as the steps see them */
  size_t count_capacity;
  stats_bin *bins; /* increasing counts (combine) */
  size_t bin_count, bin_capacity;
  uint8_t digest[32];
  int has_model; /* digest holds the model of the documents */
  int failed;
  bpsql_pool *pool; /* counts the rows on "threads" threads (pool.c) */
} stats;

static void stats_free(stats *s) {
  bpsql_pool_free(s->pool);
  s->pool = NULL;
  sqlite3_free(s->counts);
  sqlite3_free(s->bins);
}

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
static void count_row(void *context, int worker, bpsql_task *task,
                      const bp_interrupt *interrupt) {
  (void)worker;
  (void)context;
  size_t count = 0;
  task->rc = bp_count(task->model, task->text, task->len, task->input, NULL, interrupt, &count,
                      &task->err);
  task->count = count;
}

/* On SQLite's thread, in row order. */
static int deliver_count(void *context, bpsql_task *task, bp_error *err) {
  stats *s = context;
  if ((size_t)s->documents == s->count_capacity) {
    size_t capacity = s->count_capacity ? s->count_capacity * 2 : 64;
    sqlite3_int64 *counts = sqlite3_realloc64(s->counts, capacity * sizeof *counts);
    if (!counts) return bpsql_error(err, BP_NOMEM, "out of memory");
    s->counts = counts;
    s->count_capacity = capacity;
  }
  s->counts[s->documents++] = (sqlite3_int64)task->count;
  s->bytes += (sqlite3_int64)task->len;
  s->tokens += (sqlite3_int64)task->count;
  return BP_OK;
}

/* The pool of s, made at the first row with the options argument (argv[2])
** of that row; returns 0 after reporting an error. */
static int stats_start_pool(sqlite3_context *ctx, stats *s, const char *function, int argc,
                            sqlite3_value **argv) {
  int threads = 1;
  if (argc > 2 && sqlite3_value_type(argv[2]) != SQLITE_NULL &&
      bpsql_read_options(ctx, argv[2], function, apply_stats_option, &threads) != SQLITE_OK)
    return 0;
  bpsql_pool_settings settings = {
      .work = count_row,
      .deliver = deliver_count,
      .context = s,
      .interrupt = {bpsql_sql_interrupted, sqlite3_context_db_handle(ctx)},
      .max_tasks = (size_t)threads * 64,
      .max_bytes = (size_t)threads << 22,
  };
  bp_error err;
  if (bpsql_pool_new(sqlite3_threadsafe() ? threads : 1, &settings, &s->pool, &err) != BP_OK) {
    bpsql_result_error(ctx, function, &err);
    return 0;
  }
  return 1;
}

/* Waits for every row of s to be counted; returns 0 after reporting an
** error. */
static int stats_drain(sqlite3_context *ctx, stats *s, const char *function) {
  bp_error err;
  if (s->pool && bpsql_pool_drain(s->pool, &err) != BP_OK) {
    bpsql_result_error(ctx, function, &err);
    return 0;
  }
  return 1;
}

/* One row of s, handed to its pool to be counted; returns 0 after
** reporting an error. */
static int stats_add_row(sqlite3_context *ctx, stats *s, const char *function, int argc,
                         sqlite3_value **argv, int same_model) {
  if (!s->pool && !stats_start_pool(ctx, s, function, argc, argv)) return 0;
  const char *text;
  size_t len;
  int input;
  int r = bpsql_text_argument(ctx, argv[0], function, 1, &text, &len, &input);
  if (r <= 0) return r == 0;
  bp_model *model;
  if (bpsql_resolve_model(sqlite3_user_data(ctx), argc > 1 ? argv[1] : NULL, function, ctx,
                          NULL, &model) != SQLITE_OK)
    return 0;
  /* A partial names one model; bp_stats lets each row name its own. */
  if (same_model && s->has_model && memcmp(s->digest, bp_model_digest(model), 32) != 0) {
    bp_model_release(model);
    bpsql_result_errorf(ctx, SQLITE_ERROR, "%s: every row must use the same model", function);
    return 0;
  }
  memcpy(s->digest, bp_model_digest(model), 32);
  s->has_model = 1;
  char *copy = sqlite3_malloc64(len + 1);
  if (!copy) {
    bp_model_release(model);
    sqlite3_result_error_nomem(ctx);
    return 0;
  }
  memcpy(copy, text, len);
  bp_error err;
  if (bpsql_pool_submit(s->pool, copy, len, input, model, &err) != BP_OK) {
    bpsql_result_error(ctx, function, &err);
    return 0;
  }
  return 1;
}

static int compare_counts(const void *a, const void *b) {
  sqlite3_int64 x = *(const sqlite3_int64 *)a, y = *(const sqlite3_int64 *)b;
  return (x > y) - (x < y);
}

/* The counts the steps collected, sorted into s->bins (the counts are
** freed). SQLITE_OK or SQLITE_NOMEM. */
static int stats_bin_counts(stats *s) {
  if (s->documents == 0) return SQLITE_OK;
  qsort(s->counts, (size_t)s->documents, sizeof *s->counts, compare_counts);
  size_t distinct = 1;
  for (sqlite3_int64 i = 1; i < s->documents; i++) distinct += s->counts[i] != s->counts[i - 1];
  stats_bin *bins = sqlite3_malloc64(distinct * sizeof *bins);
  if (!bins) return SQLITE_NOMEM;
  size_t n = 0;
  for (sqlite3_int64 i = 0; i < s->documents; i++) {
    if (n > 0 && bins[n - 1].count == (sqlite3_uint64)s->counts[i])
      bins[n - 1].documents++;
    else
      bins[n++] = (stats_bin){(sqlite3_uint64)s->counts[i], 1};
  }
  sqlite3_free(s->counts);
  s->counts = NULL;
  sqlite3_free(s->bins);
  s->bins = bins;
  s->bin_count = s->bin_capacity = n;
  return SQLITE_OK;
}

/* The nearest-rank percentile: the smallest count with at least p percent
** of the documents at or below it. */
static sqlite3_uint64 percentile(const stats *s, int p) {
  sqlite3_uint64 rank = ((sqlite3_uint64)s->documents * (sqlite3_uint64)p + 99) / 100;
  sqlite3_uint64 seen = 0;
  for (size_t i = 0; i < s->bin_count; i++) {
    seen += s->bins[i].documents;
    if (seen >= rank) return s->bins[i].count;
  }
  return s->bin_count ? s->bins[s->bin_count - 1].count : 0;
}

/* The JSON of bp_stats from a histogram, as the result of ctx. */
static void stats_result_json(sqlite3_context *ctx, const stats *s) {
  char *json;
  if (s->documents == 0) {
    json = sqlite3_mprintf("{\"documents\":0,\"bytes\":0,\"tokens\":0}");
  } else {
    json = sqlite3_mprintf(
        "{\"documents\":%lld,\"bytes\":%lld,\"tokens\":%lld,\"bytes_per_token\":%.4f,"
        "\"min\":%llu,\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"max\":%llu}",
        s->documents, s->bytes, s->tokens,
        s->tokens ? (double)s->bytes / (double)s->tokens : 0.0, s->bins[0].count,
        percentile(s, 50), percentile(s, 90), percentile(s, 99),
        s->bins[s->bin_count - 1].count);
  }
  if (json)
    sqlite3_result_text(ctx, json, -1, sqlite3_free);
  else
    sqlite3_result_error_nomem(ctx);
}

void bpsql_stats_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  stats *s = sqlite3_aggregate_context(ctx, sizeof *s);
  if (!s) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (!s->failed && !stats_add_row(ctx, s, "bp_stats", argc, argv, 0)) s->failed = 1;
}

void bpsql_stats_final(sqlite3_context *ctx) {
  stats *s = sqlite3_aggregate_context(ctx, 0);
  stats empty = {0};
  if (!s) s = &empty;
  if (!s->failed && stats_drain(ctx, s, "bp_stats")) {
    if (stats_bin_counts(s) != SQLITE_OK)
      sqlite3_result_error_nomem(ctx);
    else
      stats_result_json(ctx, s);
  }
  stats_free(s);
}

/* ---- the partial value ---- */

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t put_varint(uint8_t *p, sqlite3_uint64 v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

/* Bytes read, or 0 when the varint is truncated or longer than 64 bits. */
static size_t get_varint(const uint8_t *p, const uint8_t *end, sqlite3_uint64 *v) {
  sqlite3_uint64 result = 0;
  for (size_t n = 0; n < 10 && p + n < end; n++) {
    result |= (sqlite3_uint64)(p[n] & 0x7f) << (7 * n);
    if (!(p[n] & 0x80)) {
      *v = result;
      return n + 1;
    }
  }
  return 0;
}

/* The CRC-32 a partial's header carries: of its first 52 bytes and of the
** compressed payload. */
static uint32_t stats_checksum(const uint8_t *value, const uint8_t *compressed, size_t len) {
  uLong crc = crc32(0L, (const Bytef *)value, STATS_HEADER_BYTES - 4);
  return (uint32_t)crc32(crc, (const Bytef *)compressed, (uInt)len);
}

/* The partial value of a histogram, as the result of ctx. */
static void stats_result_partial(sqlite3_context *ctx, const char *function, const stats *s) {
  /* 4 varints of at most 10 bytes, then at most 20 bytes a bin. */
  sqlite3_uint64 raw_capacity = 40 + 20 * (sqlite3_uint64)s->bin_count;
  uLong bound = compressBound((uLong)raw_capacity);
  if (raw_capacity > 0xffffffffu || bound > 0xffffffffu - STATS_HEADER_BYTES) {
    bpsql_result_errorf(ctx, SQLITE_TOOBIG, "%s: the partial is too large", function);
    return;
  }
  uint8_t *raw = sqlite3_malloc64(raw_capacity);
  uint8_t *value = sqlite3_malloc64(STATS_HEADER_BYTES + (sqlite3_uint64)bound);
  if (!raw || !value) {
    sqlite3_free(raw);
    sqlite3_free(value);
    sqlite3_result_error_nomem(ctx);
    return;
  }
  size_t n = 0;
  n += put_varint(raw + n, (sqlite3_uint64)s->documents);
  n += put_varint(raw + n, (sqlite3_uint64)s->bytes);
  n += put_varint(raw + n, (sqlite3_uint64)s->tokens);
  n += put_varint(raw + n, s->bin_count);
  sqlite3_uint64 previous = 0;
  for (size_t i = 0; i < s->bin_count; i++) {
    n += put_varint(raw + n, s->bins[i].count - previous);
    n += put_varint(raw + n, s->bins[i].documents);
    previous = s->bins[i].count;
  }
  uLongf compressed = bound;
  int zrc = compress2(value + STATS_HEADER_BYTES, &compressed, raw, (uLong)n, Z_BEST_SPEED);
  sqlite3_free(raw);
  if (zrc != Z_OK) {
    sqlite3_free(value);
    sqlite3_result_error_nomem(ctx);
    return;
  }
  memcpy(value, STATS_MAGIC, 8);
  put_u32(value + 8, STATS_VERSION);
  if (s->has_model && s->documents > 0)
    memcpy(value + 12, s->digest, 32);
  else
    memset(value + 12, 0, 32);
  put_u32(value + 44, (uint32_t)n);
  put_u32(value + 48, (uint32_t)compressed);
  put_u32(value + 52, stats_checksum(value, value + STATS_HEADER_BYTES, compressed));
  bpsql_result_bytes(ctx, function, value, STATS_HEADER_BYTES + (sqlite3_uint64)compressed,
                     sqlite3_free, false);
}

/* Reads a partial value into *out (its own bins, to free with stats_free).
** Returns 1, or 0 after reporting an error that names the function and the
** argument. */
static int stats_read_partial(sqlite3_context *ctx, const char *function, sqlite3_value *arg,
                              stats *out) {
  memset(out, 0, sizeof *out);
  if (sqlite3_value_type(arg) != SQLITE_BLOB) {
    bpsql_result_errorf(ctx, SQLITE_MISMATCH,
                        "%s: argument 1 (partial) must be a BLOB from bp_stats_partial, not %s",
                        function, bpsql_type_name(arg));
    return 0;
  }
  const uint8_t *value = sqlite3_value_blob(arg);
  size_t len = (size_t)sqlite3_value_bytes(arg);
  if (len >= 8 && memcmp(value, MODEL_MAGIC, 8) == 0) {
    bpsql_result_errorf(
        ctx, SQLITE_MISMATCH,
        "%s: argument 1 (partial) is a model value, not a bp_stats_partial value", function);
    return 0;
  }
  if (len < 8 || memcmp(value, STATS_MAGIC, 8) != 0) {
    bpsql_result_errorf(ctx, SQLITE_MISMATCH,
                        "%s: argument 1 (partial) is not a bp_stats_partial value", function);
    return 0;
  }
  if (len < STATS_HEADER_BYTES ||
      len < STATS_HEADER_BYTES + (sqlite3_uint64)get_u32(value + 48)) {
    bpsql_result_errorf(
        ctx, SQLITE_CORRUPT, "%s: argument 1 (partial) is truncated: %llu bytes of %llu",
        function, (sqlite3_uint64)len,
        len < STATS_HEADER_BYTES ? (sqlite3_uint64)STATS_HEADER_BYTES
                                 : STATS_HEADER_BYTES + (sqlite3_uint64)get_u32(value + 48));
    return 0;
  }
  uint32_t version = get_u32(value + 8);
  if (version != STATS_VERSION) {
    bpsql_result_errorf(
        ctx, SQLITE_MISMATCH,
        "%s: argument 1 (partial) is of version %u; this build reads version %d", function,
        version, STATS_VERSION);
    return 0;
  }
  size_t compressed = get_u32(value + 48);
  if (len != STATS_HEADER_BYTES + compressed ||
      stats_checksum(value, value + STATS_HEADER_BYTES, compressed) != get_u32(value + 52)) {
    bpsql_result_errorf(ctx, SQLITE_CORRUPT,
                        "%s: argument 1 (partial) is corrupt: its checksum does not match",
                        function);
    return 0;
  }
  /* From here on the value is as a writer made it; a failure is a writer
  ** that wrote something else under this version. */
  uLongf raw_len = get_u32(value + 44);
  uint8_t *raw = sqlite3_malloc64(raw_len ? raw_len : 1);
  if (!raw) {
    sqlite3_result_error_nomem(ctx);
    return 0;
  }
  uLongf got = raw_len;
  int ok = uncompress(raw, &got, value + STATS_HEADER_BYTES, (uLong)compressed) == Z_OK &&
           got == raw_len;
  const uint8_t *p = raw, *end = raw + got;
  sqlite3_uint64 documents = 0, bytes = 0, tokens = 0, bins = 0, sum_documents = 0,
                 sum_tokens = 0, count = 0;
  size_t used;
  ok = ok && (used = get_varint(p, end, &documents)) && (p += used) &&
       (used = get_varint(p, end, &bytes)) && (p += used) &&
       (used = get_varint(p, end, &tokens)) && (p += used) &&
       (used = get_varint(p, end, &bins)) && (p += used) && bins <= (size_t)(end - p) / 2 &&
       documents <= (sqlite3_uint64)INT64_MAX && bytes <= (sqlite3_uint64)INT64_MAX &&
       tokens <= (sqlite3_uint64)INT64_MAX;
  if (ok && bins > 0) {
    out->bins = sqlite3_malloc64(bins * sizeof *out->bins);
    if (!out->bins) {
      sqlite3_free(raw);
      sqlite3_result_error_nomem(ctx);
      return 0;
    }
    out->bin_capacity = (size_t)bins;
  }
  for (sqlite3_uint64 i = 0; ok && i < bins; i++) {
    sqlite3_uint64 step, docs;
    ok = (used = get_varint(p, end, &step)) && (p += used) &&
         (used = get_varint(p, end, &docs)) && (p += used) && (step > 0 || i == 0) &&
         docs > 0 && count + step >= count;
    if (!ok) break;
    count += step;
    out->bins[out->bin_count++] = (stats_bin){count, docs};
    sum_documents += docs;
    sum_tokens += count * docs;
  }
  /* The histogram must add up to the totals. */
  ok = ok && p == end && sum_documents == documents && sum_tokens == tokens;
  sqlite3_free(raw);
  if (!ok) {
    stats_free(out);
    memset(out, 0, sizeof *out);
    bpsql_result_errorf(ctx, SQLITE_CORRUPT,
                        "%s: argument 1 (partial) is corrupt: its contents do not add up",
                        function);
    return 0;
  }
  out->documents = (sqlite3_int64)documents;
  out->bytes = (sqlite3_int64)bytes;
  out->tokens = (sqlite3_int64)tokens;
  static const uint8_t none[32];
  out->has_model = memcmp(value + 12, none, 32) != 0;
  memcpy(out->digest, value + 12, 32);
  return 1;
}

void bpsql_stats_partial_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  stats *s = sqlite3_aggregate_context(ctx, sizeof *s);
  if (!s) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (!s->failed && !stats_add_row(ctx, s, "bp_stats_partial", argc, argv, 1)) s->failed = 1;
}

void bpsql_stats_partial_final(sqlite3_context *ctx) {
  stats *s = sqlite3_aggregate_context(ctx, 0);
  stats empty = {0};
  if (!s) s = &empty;
  if (!s->failed && stats_drain(ctx, s, "bp_stats_partial")) {
    if (stats_bin_counts(s) != SQLITE_OK)
      sqlite3_result_error_nomem(ctx);
    else
      stats_result_partial(ctx, "bp_stats_partial", s);
  }
  stats_free(s);
}

/* Adds the histogram of `part` into `s` (both in increasing counts).
** SQLITE_OK or SQLITE_NOMEM. */
static int stats_add(stats *s, const stats *part) {
  if (part->bin_count > 0) {
    size_t capacity = s->bin_count + part->bin_count;
    stats_bin *bins = sqlite3_malloc64(capacity * sizeof *bins);
    if (!bins) return SQLITE_NOMEM;
    size_t i = 0, j = 0, n = 0;
    while (i < s->bin_count || j < part->bin_count) {
      if (j == part->bin_count || (i < s->bin_count && s->bins[i].count < part->bins[j].count))
        bins[n++] = s->bins[i++];
      else if (i == s->bin_count || part->bins[j].count < s->bins[i].count)
        bins[n++] = part->bins[j++];
      else {
        bins[n] = s->bins[i++];
        bins[n++].documents += part->bins[j++].documents;
      }
    }
    sqlite3_free(s->bins);
    s->bins = bins;
    s->bin_count = n;
    s->bin_capacity = capacity;
  }
  s->documents += part->documents;
  s->bytes += part->bytes;
  s->tokens += part->tokens;
  if (part->has_model) {
    memcpy(s->digest, part->digest, 32);
    s->has_model = 1;
  }
  return SQLITE_OK;
}

void bpsql_stats_combine_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  stats *s = sqlite3_aggregate_context(ctx, sizeof *s);
  if (!s) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (s->failed) return;
  /* NULL rows are skipped, as the other aggregates skip them. */
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
  stats part;
  if (!stats_read_partial(ctx, "bp_stats_combine", argv[0], &part)) {
    s->failed = 1;
    return;
  }
  if (s->has_model && part.has_model && memcmp(s->digest, part.digest, 32) != 0) {
    bpsql_result_errorf(ctx, SQLITE_MISMATCH,
                        "bp_stats_combine: the partials were made with different models");
    s->failed = 1;
  } else if (stats_add(s, &part) != SQLITE_OK) {
    sqlite3_result_error_nomem(ctx);
    s->failed = 1;
  }
  stats_free(&part);
}

void bpsql_stats_combine_final(sqlite3_context *ctx) {
  stats *s = sqlite3_aggregate_context(ctx, 0);
  stats empty = {0};
  if (!s) s = &empty;
  if (!s->failed) stats_result_partial(ctx, "bp_stats_combine", s);
  stats_free(s);
}

void bpsql_stats_finish_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  stats s;
  if (!stats_read_partial(ctx, "bp_stats_finish", argv[0], &s)) return;
  stats_result_json(ctx, &s);
  stats_free(&s);
}
