/*
** bench_encode.c: encoding throughput of the C library and of the SQL
** functions, on documents stored in an SQLite table corpus(text).
**
**   bench_encode lib DB MODEL_FILE [ALPHA]
**                          the library alone (bp_count per document); with
**                          ALPHA, sampling, seeded with the document number
**   bench_encode sql DB MODEL_FILE EXTENSION [ALPHA]
**                          SELECT sum(bp_count(text, 'm' [, ALPHA, rowid])) FROM corpus
**   bench_encode json DB MODEL_FILE EXTENSION
**                          SELECT sum(length(bp_encode(text, 'm'))) FROM corpus: the
**                          JSON output's cost on top of sql (its "tokens" are the
**                          characters of JSON)
**   bench_encode compile MODEL_FILE    model value -> compiled model, and its memory
**
** Each prints one line: "name seconds megabytes tokens peak_rss_kb", the best
** of five runs (compile: of twenty). BENCH_RUNS=1 runs each once, for
** counting instructions under cachegrind or callgrind.
*/
#include "bytepiece.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static long peak_rss_kb(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

static void die(const char *what, const char *detail) {
  fprintf(stderr, "bench_encode: %s: %s\n", what, detail);
  exit(1);
}

typedef struct corpus {
  char **texts;
  size_t *lengths;
  size_t count, bytes;
} corpus;

static corpus read_corpus(const char *path) {
  sqlite3 *db;
  sqlite3_stmt *stmt;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT text FROM corpus ORDER BY rowid", -1, &stmt, NULL) !=
          SQLITE_OK)
    die(path, sqlite3_errmsg(db));
  corpus c = {0};
  size_t capacity = 0;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    if (c.count == capacity) {
      capacity = capacity ? capacity * 2 : 1024;
      c.texts = realloc(c.texts, capacity * sizeof *c.texts);
      c.lengths = realloc(c.lengths, capacity * sizeof *c.lengths);
    }
    size_t n = (size_t)sqlite3_column_bytes(stmt, 0);
    c.texts[c.count] = malloc(n + 1);
    memcpy(c.texts[c.count], sqlite3_column_text(stmt, 0), n);
    c.lengths[c.count++] = n;
    c.bytes += n;
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return c;
}

int main(int argc, char **argv) {
  int runs = getenv("BENCH_RUNS") ? atoi(getenv("BENCH_RUNS")) : 5;
  if (runs < 1) runs = 1;
  if (argc < 3) die("usage", "bench_encode lib|sql|compile ...");
  const char *mode = argv[1];
  bp_error err;
  if (strcmp(mode, "compile") == 0) {
    bp_model *m;
    uint8_t *value;
    size_t len;
    if (bp_model_load_file(argv[2], &m, &err) != BP_OK) die(argv[2], err.message);
    if (bp_model_serialize(m, &value, &len, &err) != BP_OK) die("serialize", err.message);
    size_t memory = bp_model_memory(m);
    bp_model_release(m);
    double best = 1e9;
    for (int run = 0; run < 20; run++) {
      double t0 = now();
      if (bp_model_deserialize(value, len, NULL, &m, &err) != BP_OK)
        die("compile", err.message);
      double t = now() - t0;
      if (t < best) best = t;
      bp_model_release(m);
    }
    printf("compile %.6f %.3f %zu %ld\n", best, len / 1e6, memory, peak_rss_kb());
    return 0;
  }
  if (argc < 4) die("usage", "bench_encode lib|sql DB MODEL_FILE [EXTENSION]");
  corpus c = read_corpus(argv[2]);
  const char *alpha =
      strcmp(mode, "lib") == 0 ? (argc > 4 ? argv[4] : NULL) : (argc > 5 ? argv[5] : NULL);
  double best = 1e9;
  long long tokens = 0;
  if (strcmp(mode, "lib") == 0) {
    bp_model *m;
    if (bp_model_load_file(argv[3], &m, &err) != BP_OK) die(argv[3], err.message);
    for (int run = 0; run < runs; run++) {
      tokens = 0;
      double t0 = now();
      for (size_t i = 0; i < c.count; i++) {
        size_t n;
        bp_sampler sampler;
        if (alpha) bp_sampler_init(&sampler, atof(alpha), i + 1);
        if (bp_count(m, c.texts[i], c.lengths[i], BP_INPUT_TEXT, alpha ? &sampler : NULL, NULL,
                     &n, &err) != BP_OK)
          die("encode", err.message);
        tokens += (long long)n;
      }
      double t = now() - t0;
      if (t < best) best = t;
    }
    bp_model_release(m);
  } else if ((strcmp(mode, "sql") == 0 || strcmp(mode, "json") == 0) && argc >= 5) {
    sqlite3 *db;
    char *message = NULL;
    sqlite3_open(argv[2], &db);
    sqlite3_enable_load_extension(db, 1);
    if (sqlite3_load_extension(db, argv[4], NULL, &message) != SQLITE_OK) die(argv[4], message);
    char *sql = sqlite3_mprintf(
        "CREATE TEMP TABLE m AS SELECT 1;"
        "INSERT INTO bp_models(name, model) VALUES ('bench', bp_model_load(%Q))",
        argv[3]);
    if (sqlite3_exec(db, sql, NULL, NULL, &message) != SQLITE_OK) die("load model", message);
    sqlite3_free(sql);
    sqlite3_stmt *stmt;
    if (strcmp(mode, "json") == 0)
      sql = sqlite3_mprintf("SELECT sum(length(bp_encode(text, 'bench'))) FROM corpus");
    else if (alpha)
      sql =
          sqlite3_mprintf("SELECT sum(bp_count(text, 'bench', %s, rowid)) FROM corpus", alpha);
    else
      sql = sqlite3_mprintf("SELECT sum(bp_count(text, 'bench')) FROM corpus");
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
      die("prepare", sqlite3_errmsg(db));
    sqlite3_free(sql);
    for (int run = 0; run < runs; run++) {
      double t0 = now();
      if (sqlite3_step(stmt) != SQLITE_ROW) die("step", sqlite3_errmsg(db));
      tokens = sqlite3_column_int64(stmt, 0);
      sqlite3_reset(stmt);
      double t = now() - t0;
      if (t < best) best = t;
    }
    sqlite3_finalize(stmt);
    /* Leave the database as it was. */
    sqlite3_exec(db, "DELETE FROM bp_models WHERE name = 'bench'", NULL, NULL, NULL);
    sqlite3_close(db);
  } else {
    die("usage", "unknown mode");
  }
  printf("%s %.6f %.6f %lld %ld\n", mode, best, c.bytes / 1e6, tokens, peak_rss_kb());
  return 0;
}
