/*
** concurrency_test.c: several threads, each with its own connection to one
** database file, encode with model 'm' while another connection keeps
** replacing 'm' with a different model. Every result must come from the old
** or the new model, never a mix, and nothing may crash; a statement that
** reads a table (its own read transaction) sees one model in every row. The compiled models are shared by the process (compilations stay
** near the number of replacements, not that times the readers) and are freed
** once the last connection using them is gone. bp_export's worker threads
** share one compiled model: its files are the same bytes with 1 and 4
** threads, and the first bad row is the one reported; bp_train's reading
** threads give the model one thread gives. Run under ThreadSanitizer by
** `make test-tsan`. Prints "concurrency: N passed, N failed".
**   concurrency_test DATA_DIRECTORY    (tests/data: small.model)
*/
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqlite3_bytepiece.h"

enum { READERS = 4, WRITES = 40, TEXTS = 3 };

#include "check.h"

static char database[1100];
static const char *texts[TEXTS] = {
    "static int matcher_build(bp_matcher *m) { return 0; }",
    "The model value is compact; pieces are sorted by length and bytes.",
    "今天天气不错 hello world 123"};
/* The ids of each text under the two models, and the models' values. */
static char *expected[2][TEXTS];
static void *model_value[2];
static int model_bytes[2];
static int writer_done;

static sqlite3 *open_database(void) {
  sqlite3 *db;
  if (sqlite3_open(database, &db) != SQLITE_OK) {
    printf("cannot open %s: %s\n", database, sqlite3_errmsg(db));
    exit(1);
  }
  sqlite3_busy_timeout(db, 10000);
  return db;
}

static char *single_text(sqlite3 *db, const char *sql) {
  sqlite3_stmt *stmt;
  char *result = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW)
    result = strdup((const char *)sqlite3_column_text(stmt, 0));
  sqlite3_finalize(stmt);
  return result;
}

static long debug_number(sqlite3 *db, const char *key) {
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT json_extract(bp_debug(), '$.%s')", key);
  char *text = single_text(db, sql);
  long n = text ? atol(text) : -1;
  free(text);
  return n;
}

/* Which model gave these ids for text i: 0, 1, or -1 for neither. */
static int model_of(int i, const char *ids) {
  for (int m = 0; m < 2; m++)
    if (ids && strcmp(ids, expected[m][i]) == 0) return m;
  return -1;
}

typedef struct {
  long statements, mixed, wrong, errors;
  long seen[2];
} reader_result;

static void *reader(void *arg) {
  reader_result *r = arg;
  sqlite3 *db = open_database();
  sqlite3_stmt *stmt;
  if (sqlite3_prepare_v2(db, "SELECT i, bp_encode(t, 'm') FROM texts ORDER BY i", -1, &stmt,
                         NULL) != SQLITE_OK) {
    r->errors++;
    sqlite3_close(db);
    return NULL;
  }
  while (!__atomic_load_n(&writer_done, __ATOMIC_ACQUIRE) || r->statements < 50) {
    int rc, first = -1;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      int m = model_of(sqlite3_column_int(stmt, 0), (const char *)sqlite3_column_text(stmt, 1));
      if (m < 0)
        r->wrong++;
      else if (first < 0)
        r->seen[first = m]++;
      else if (m != first)
        r->mixed++;
    }
    if (rc != SQLITE_DONE) {
      printf("reader: %s\n", sqlite3_errmsg(db));
      r->errors++;
    }
    r->statements++;
    sqlite3_reset(stmt);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return NULL;
}

static void *writer(void *arg) {
  long *errors = arg;
  sqlite3 *db = open_database();
  sqlite3_stmt *stmt;
  sqlite3_prepare_v2(db, "INSERT INTO bp_models(name, model) VALUES ('m', ?1)", -1, &stmt,
                     NULL);
  for (int w = 0; w < WRITES; w++) {
    int m = (w + 1) % 2;
    sqlite3_bind_blob(stmt, 1, model_value[m], model_bytes[m], SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
      printf("writer: %s\n", sqlite3_errmsg(db));
      (*errors)++;
    }
    sqlite3_reset(stmt);
    usleep(5000);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  __atomic_store_n(&writer_done, 1, __ATOMIC_RELEASE);
  return NULL;
}

/* The whole content of a file (malloc), or NULL. */
static char *read_file(const char *path, long *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *len = ftell(f);
  rewind(f);
  char *data = malloc((size_t)*len + 1);
  if (data && fread(data, 1, (size_t)*len, f) != (size_t)*len) {
    free(data);
    data = NULL;
  }
  fclose(f);
  return data;
}

/* open_database's, with a temporary table rows(i, t) of 3000 numbered rows
** cut from its texts. */
static sqlite3 *open_database_with_rows(void) {
  sqlite3 *db = open_database();
  CHECK(sqlite3_exec(db,
                     "CREATE TEMP TABLE rows(i INTEGER PRIMARY KEY, t TEXT);"
                     "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE "
                     "i < 3000) INSERT INTO rows SELECT i, printf('row %d: %s', i, "
                     "(SELECT t FROM texts WHERE i = c.i % 3)) FROM c;",
                     NULL, NULL, NULL) == SQLITE_OK);
  return db;
}

/* bp_export of 3000 rows with 1 and 4 threads: the same files; a bad row
** among them is reported by its number with 4 threads too. */
static void check_export(const char *directory) {
  sqlite3 *db = open_database_with_rows();
  char *data[2][2] = {{NULL, NULL}, {NULL, NULL}};
  long lengths[2][2] = {{0, 0}, {0, 0}};
  for (int k = 0; k < 2; k++) {
    char *sql = sqlite3_mprintf(
        "SELECT bp_export(t, '%q/export%d', json_object('model', 'a', 'eos', 1, 'threads', "
        "%d)) "
        "FROM rows ORDER BY i",
        directory, k, k ? 4 : 1);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_free(sql);
    for (int f = 0; f < 2; f++) {
      char path[1200];
      snprintf(path, sizeof path, "%s/export%d.%s", directory, k, f ? "idx" : "bin");
      data[k][f] = read_file(path, &lengths[k][f]);
      CHECK(data[k][f] != NULL);
      unlink(path);
    }
  }
  for (int f = 0; f < 2; f++) {
    CHECK(lengths[0][f] > 0 && lengths[0][f] == lengths[1][f]);
    CHECK(data[0][f] && data[1][f] &&
          memcmp(data[0][f], data[1][f], (size_t)lengths[0][f]) == 0);
    free(data[0][f]);
    free(data[1][f]);
  }
  char *message = NULL;
  char *sql = sqlite3_mprintf(
      "SELECT bp_export(CASE WHEN i IN (2000, 2500) THEN CAST(x'ff' AS TEXT) ELSE t END, "
      "'%q/bad', '{\"model\":\"a\",\"threads\":4}') FROM rows ORDER BY i",
      directory);
  CHECK(sqlite3_exec(db, sql, NULL, NULL, &message) == SQLITE_ERROR);
  CHECK(message &&
        strcmp(message, "bp_export: document 2000: invalid UTF-8 at byte offset 0") == 0);
  sqlite3_free(message);
  sqlite3_free(sql);
  sqlite3_close(db);
}

/* The value of the one-row result of sql, in a new sqlite3_malloc'd
** buffer (NULL on error, with the message in *message). */
static char *result_blob(sqlite3 *db, const char *sql, int *length, char **message) {
  sqlite3_stmt *stmt;
  char *copy = NULL;
  *message = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) return NULL;
  if (sqlite3_step(stmt) == SQLITE_ROW) {
    *length = sqlite3_column_bytes(stmt, 0);
    copy = sqlite3_malloc(*length + 1);
    if (copy) memcpy(copy, sqlite3_column_blob(stmt, 0), (size_t)*length);
  } else {
    *message = sqlite3_mprintf("%s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(stmt);
  return copy;
}

/* bp_train reading 3000 rows on 1 and 4 worker threads, and on 4 with a
** memory cap that makes the readers spill: the same model value; a bad row
** among them is reported with 4 threads too. */
static void check_train_reading(void) {
  sqlite3 *db = open_database_with_rows();
  static const char *const options[3] = {
      "{\"vocab_size\": 300, \"threads\": 1}", "{\"vocab_size\": 300, \"threads\": 4}",
      "{\"vocab_size\": 300, \"threads\": 4, \"max_memory\": 1}"};
  char *models[3];
  int lengths[3] = {0, 0, 0};
  for (int k = 0; k < 3; k++) {
    char *message;
    char *sql = sqlite3_mprintf("SELECT bp_train(t, '%s') FROM rows ORDER BY i", options[k]);
    models[k] = sql ? result_blob(db, sql, &lengths[k], &message) : NULL;
    CHECK(models[k] != NULL);
    sqlite3_free(message);
    sqlite3_free(sql);
  }
  for (int k = 1; k < 3; k++)
    CHECK(models[0] && models[k] && lengths[k] == lengths[0] &&
          memcmp(models[0], models[k], (size_t)lengths[0]) == 0);
  for (int k = 0; k < 3; k++) sqlite3_free(models[k]);
  char *message;
  int length;
  char *model =
      result_blob(db,
                  "SELECT bp_train(CASE WHEN i = 2000 THEN CAST(x'ff' AS TEXT) ELSE t "
                  "END, '{\"threads\": 4}') FROM rows ORDER BY i",
                  &length, &message);
  CHECK(model == NULL && message &&
        strcmp(message, "bp_train: invalid UTF-8 at byte offset 0") == 0);
  sqlite3_free(model);
  sqlite3_free(message);
  sqlite3_close(db);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  char directory[] = "/tmp/bp-concurrency-XXXXXX";
  if (!mkdtemp(directory)) return 2;
  snprintf(database, sizeof database, "%s/test.db", directory);
  sqlite3_auto_extension((void (*)(void))sqlite3_bytepiece_init);

  /* Two different models: the small test model and a 400-piece shrink of it. */
  sqlite3 *db = open_database();
  char *sql = sqlite3_mprintf(
      "PRAGMA journal_mode = WAL;"
      "CREATE TABLE texts(i INTEGER PRIMARY KEY, t TEXT);"
      "INSERT INTO bp_models(name, model) VALUES ('a', bp_model_load('%q/small.model'));"
      "INSERT INTO bp_models(name, model) VALUES ('b', bp_model_shrink('a', 400));"
      "INSERT INTO bp_models(name, model) SELECT 'm', model FROM bp_models WHERE name = 'a';",
      argv[1]);
  CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_free(sql);
  for (int m = 0; m < 2; m++) {
    sqlite3_stmt *stmt;
    sqlite3_prepare_v2(db, "SELECT model FROM bp_models WHERE name = ?1", -1, &stmt, NULL);
    sqlite3_bind_text(stmt, 1, m ? "b" : "a", -1, SQLITE_STATIC);
    CHECK(sqlite3_step(stmt) == SQLITE_ROW);
    model_bytes[m] = sqlite3_column_bytes(stmt, 0);
    model_value[m] = malloc((size_t)model_bytes[m]);
    memcpy(model_value[m], sqlite3_column_blob(stmt, 0), (size_t)model_bytes[m]);
    sqlite3_finalize(stmt);
    for (int i = 0; i < TEXTS; i++) {
      char *q = sqlite3_mprintf("SELECT bp_encode(%Q, %Q)", texts[i], m ? "b" : "a");
      expected[m][i] = single_text(db, q);
      sqlite3_free(q);
    }
  }
  for (int i = 0; i < TEXTS; i++) {
    CHECK(strcmp(expected[0][i], expected[1][i]) != 0);
    char *insert = sqlite3_mprintf("INSERT INTO texts VALUES (%d, %Q)", i, texts[i]);
    CHECK(sqlite3_exec(db, insert, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_free(insert);
  }
  sqlite3_close(db);

  pthread_t readers[READERS], writer_thread;
  reader_result results[READERS];
  memset(results, 0, sizeof results);
  long writer_errors = 0;
  for (int t = 0; t < READERS; t++) pthread_create(&readers[t], NULL, reader, &results[t]);
  pthread_create(&writer_thread, NULL, writer, &writer_errors);
  pthread_join(writer_thread, NULL);
  long statements = 0, mixed = 0, wrong = 0, errors = writer_errors, seen[2] = {0, 0};
  for (int t = 0; t < READERS; t++) {
    pthread_join(readers[t], NULL);
    statements += results[t].statements;
    mixed += results[t].mixed;
    wrong += results[t].wrong;
    errors += results[t].errors;
    seen[0] += results[t].seen[0];
    seen[1] += results[t].seen[1];
  }
  printf(
      "concurrency: %ld statements by %d readers during %d replacements: %ld from the "
      "first model, %ld from the second\n",
      statements, READERS, WRITES, seen[0], seen[1]);
  CHECK(errors == 0);
  CHECK(wrong == 0);
  CHECK(mixed == 0);
  CHECK(seen[0] > 0 && seen[1] > 0);

  /* One compilation per model value in use, shared by all connections; none
  ** left once every connection is closed. Counted before the export below,
  ** whose connections compile the model again. */
  db = open_database();
  long compiled = debug_number(db, "models_compiled");
  printf("concurrency: %ld compilations in all\n", compiled);
  CHECK(compiled >= 2 && compiled <= WRITES + 4);
  CHECK(debug_number(db, "models_in_memory") == 0);
  sqlite3_close(db);

  check_export(directory);
  check_train_reading();

  for (int m = 0; m < 2; m++) {
    free(model_value[m]);
    for (int i = 0; i < TEXTS; i++) free(expected[m][i]);
  }
  char path[1200];
  const char *suffixes[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s%s", database, suffixes[i]);
    unlink(path);
  }
  rmdir(directory);
  printf("concurrency: %d passed, %d failed\n", passed, failed);
  return failed != 0;
}
