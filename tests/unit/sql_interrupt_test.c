/*
** sql_interrupt_test.c: sqlite3_interrupt() from another thread stops a
** long bp_train (and a round of bp_train_partial) with SQLITE_INTERRUPT,
** and the connection goes on working;
** it also stops the encoding of one huge text (bp_count, bp_tokens, FTS5
** indexing), bp_chunks cutting a long line, and the compilation of a large
** stored model on its first use, and bp_model_shrink of a large model;
** it stops bp_export on one and two threads, leaving no file behind;
** the time from the interrupt to the return is printed.
** Prints "interrupt: N passed, N failed".
**   sql_interrupt_test EXTENSION
*/
#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static double seconds_now(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)now.tv_sec + now.tv_nsec * 1e-9;
}

static double interrupted_at;

static void *interrupt_soon(void *db) {
  struct timespec pause = {0, 300 * 1000 * 1000};
  nanosleep(&pause, NULL);
  interrupted_at = seconds_now();
  sqlite3_interrupt(db);
  return NULL;
}

/* Runs sql with an interrupt 0.3 s in; returns its result code and prints
** how long after the interrupt it returned. */
static int run_interrupted(sqlite3 *db, const char *sql) {
  pthread_t thread;
  pthread_create(&thread, NULL, interrupt_soon, db);
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  double returned = seconds_now();
  pthread_join(thread, NULL);
  printf("interrupt: %s: stopped %.3f s after the interrupt (code %d, %s)\n", sql,
         returned - interrupted_at, rc, sqlite3_errmsg(db));
  return rc;
}

/* Writes a BytePiece JSON model of the 256 single bytes and `n` distinct
** pieces of random bytes (4 to 8; the first 4 differ between any two) to
** `path`. */
static int write_big_model(const char *path, uint32_t n) {
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  FILE *f = fopen(path, "w");
  if (!f) return 0;
  uint64_t random_state = 88172645463325252ull;
  fputc('{', f);
  for (uint32_t id = 3; id < n + 259; id++) {
    uint8_t bytes[8];
    size_t length;
    if (id < 259) {
      bytes[0] = (uint8_t)(id - 3);
      length = 1;
    } else {
      uint32_t prefix = (id - 259) * 2654435761u; /* odd: a bijection */
      memcpy(bytes, &prefix, 4);
      random_state ^= random_state << 13;
      random_state ^= random_state >> 7;
      random_state ^= random_state << 17;
      length = 4 + random_state % 5;
      for (size_t i = 4; i < length; i++) bytes[i] = (uint8_t)(random_state >> (8 * i));
    }
    char encoded[16];
    size_t e = 0;
    for (size_t i = 0; i < length; i += 3) {
      uint32_t v = (uint32_t)bytes[i] << 16;
      if (i + 1 < length) v |= (uint32_t)bytes[i + 1] << 8;
      if (i + 2 < length) v |= bytes[i + 2];
      encoded[e++] = alphabet[v >> 18];
      encoded[e++] = alphabet[(v >> 12) & 63];
      encoded[e++] = i + 1 < length ? alphabet[(v >> 6) & 63] : '=';
      encoded[e++] = i + 2 < length ? alphabet[v & 63] : '=';
    }
    fprintf(f, "%s\"%.*s\": [%u, \"\", %u]", id > 3 ? ",\n" : "", (int)e, encoded, id,
            1 + id % 1000);
  }
  fputc('}', f);
  return fclose(f) == 0;
}

/* Waits until the process holds more than `threshold` bytes more than at
** `start`, that is until the work to interrupt is under way, then
** interrupts until told to stop. */
typedef struct memory_watch {
  sqlite3 *db;
  sqlite3_int64 start, threshold;
  volatile int done;
  int interrupted;
} memory_watch;

static void *interrupt_when_memory_grows(void *context) {
  memory_watch *w = context;
  while (!w->done && sqlite3_memory_used() - w->start < w->threshold) {}
  if (!w->done) interrupted_at = seconds_now();
  while (!w->done) {
    sqlite3_interrupt(w->db);
    w->interrupted = 1;
    usleep(100);
  }
  return NULL;
}

/* Runs `sql` while a memory_watch interrupts it once the connection holds
** `threshold` bytes more than now; it must stop with SQLITE_INTERRUPT and
** `message`, which comes from the work itself, not from SQLite between
** rows. */
static void expect_interrupted(sqlite3 *db, const char *sql, sqlite3_int64 threshold,
                               const char *message) {
  memory_watch watch = {db, sqlite3_memory_used(), threshold, 0, 0};
  pthread_t thread;
  pthread_create(&thread, NULL, interrupt_when_memory_grows, &watch);
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  double returned = seconds_now();
  watch.done = 1;
  pthread_join(thread, NULL);
  printf("interrupt: %s: stopped %.3f s after the interrupt (code %d, %s)\n", sql,
         watch.interrupted ? returned - interrupted_at : -1.0, rc, sqlite3_errmsg(db));
  CHECK(watch.interrupted);
  CHECK(rc == SQLITE_INTERRUPT);
  CHECK(strcmp(sqlite3_errmsg(db), message) == 0);
}

/* A stored model value of 300,000 pieces is compiled on its first use in a
** connection (here a new one: no other holds it compiled); the
** interrupt stops the compilation, not only the statement after it. */
static void test_interrupted_compilation(const char *extension) {
  char model_path[64], db_path[64];
  snprintf(model_path, sizeof model_path, "/tmp/bp-interrupt-%d.model", (int)getpid());
  snprintf(db_path, sizeof db_path, "/tmp/bp-interrupt-%d.db", (int)getpid());
  unlink(db_path);
  CHECK(write_big_model(model_path, 300000));
  sqlite3 *db;
  char *error = NULL;
  CHECK(sqlite3_open(db_path, &db) == SQLITE_OK);
  sqlite3_enable_load_extension(db, 1);
  CHECK(sqlite3_load_extension(db, extension, NULL, &error) == SQLITE_OK);
  char *insert = sqlite3_mprintf(
      "INSERT INTO bp_models(name, model) VALUES ('big', bp_model_load('%q'))", model_path);
  CHECK(sqlite3_exec(db, insert, NULL, NULL, &error) == SQLITE_OK);
  sqlite3_free(insert);
  sqlite3_int64 value_bytes = 0;
  sqlite3_stmt *stmt;
  CHECK(sqlite3_prepare_v2(db, "SELECT length(model) FROM bp_models WHERE name = 'big'", -1,
                           &stmt, NULL) == SQLITE_OK);
  if (sqlite3_step(stmt) == SQLITE_ROW) value_bytes = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  CHECK(value_bytes > 2000000);
  sqlite3_close(db);

  CHECK(sqlite3_open(db_path, &db) == SQLITE_OK);
  sqlite3_enable_load_extension(db, 1);
  CHECK(sqlite3_load_extension(db, extension, NULL, &error) == SQLITE_OK);
  /* Compiling holds about 40 bytes per piece (12 MB) besides the value;
  ** reading the value alone holds less. */
  expect_interrupted(db, "SELECT bp_count('hello', 'big')", value_bytes + 8000000,
                     "bp_count: interrupted");
  /* The connection still works, and the model compiles when not stopped. */
  sqlite3_int64 count = 0;
  CHECK(sqlite3_prepare_v2(db, "SELECT bp_count('hello', 'big')", -1, &stmt, NULL) ==
        SQLITE_OK);
  if (sqlite3_step(stmt) == SQLITE_ROW) count = sqlite3_column_int64(stmt, 0);
  CHECK(sqlite3_finalize(stmt) == SQLITE_OK);
  CHECK(count == 5);
  sqlite3_close(db);
  unlink(db_path);
  unlink(model_path);
}

/* bp_model_shrink of a model of 300,000 pieces, already compiled, to
** 150,000 (most of a second of re-splitting): the interrupt comes once
** shrinking holds its copy of the pieces (about 10 MB, 32 bytes a piece),
** and stops the re-splitting. */
static void test_interrupted_shrink(const char *extension) {
  char model_path[64];
  snprintf(model_path, sizeof model_path, "/tmp/bp-interrupt-shrink-%d.model", (int)getpid());
  CHECK(write_big_model(model_path, 300000));
  sqlite3 *db;
  char *error = NULL;
  CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
  sqlite3_enable_load_extension(db, 1);
  CHECK(sqlite3_load_extension(db, extension, NULL, &error) == SQLITE_OK);
  char *insert = sqlite3_mprintf(
      "INSERT INTO bp_models(name, model) VALUES ('big', bp_model_load('%q'));"
      "SELECT bp_count('hello', 'big');",
      model_path);
  CHECK(sqlite3_exec(db, insert, NULL, NULL, &error) == SQLITE_OK);
  sqlite3_free(insert);
  expect_interrupted(db, "SELECT length(bp_model_shrink('big', 150000))", 8000000,
                     "bp_model_shrink: interrupted");
  CHECK(sqlite3_exec(db, "SELECT bp_count('still works', 'big')", NULL, NULL, &error) ==
        SQLITE_OK);
  sqlite3_close(db);
  unlink(model_path);
}

/* Entries in directory other than . and .. */
static int files_in(const char *directory) {
  DIR *d = opendir(directory);
  if (!d) return -1;
  int n = 0;
  for (const struct dirent *e; (e = readdir(d)) != NULL;)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

/* bp_export with model m of rows cut from table big, 1 MB and 6.5 MB in
** turn: with two threads at most 8 MB are in flight, so each 1 MB row after
** a 6.5 MB one waits for room, and SQLite's thread encodes the 6.5 MB row
** itself while the worker is still on the 1 MB one before it: the
** interrupt comes mostly while SQLite's thread encodes. Nothing is left in
** the directory. */
static void test_interrupted_export(sqlite3 *db) {
  char directory[] = "/tmp/bp_interrupt_XXXXXX";
  char *error = NULL;
  CHECK(mkdtemp(directory) != NULL);
  CHECK(sqlite3_exec(db,
                     "CREATE TABLE parts AS SELECT substr(t, 2000000 * i + 1,"
                     "                                    CASE i % 2 WHEN 0 THEN 1000000"
                     "                                    ELSE 6500000 END) AS t"
                     "  FROM big, (WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1"
                     "             FROM n WHERE i < 29) SELECT i FROM n) ORDER BY i",
                     NULL, NULL, &error) == SQLITE_OK);
  for (int threads = 1; threads <= 2; threads++) {
    char *sql = sqlite3_mprintf(
        "SELECT bp_export(t, '%q/stopped', json_object('model', 'm', "
        "'threads', %d)) FROM parts",
        directory, threads);
    CHECK(run_interrupted(db, sql) == SQLITE_INTERRUPT);
    CHECK(strcmp(sqlite3_errmsg(db), "interrupted") == 0);
    CHECK(files_in(directory) == 0);
    sqlite3_free(sql);
  }
  CHECK(sqlite3_exec(db, "DROP TABLE parts", NULL, NULL, &error) == SQLITE_OK);
  rmdir(directory);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  sqlite3 *db;
  char *error = NULL;
  CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
  sqlite3_enable_load_extension(db, 1);
  CHECK(sqlite3_load_extension(db, argv[1], NULL, &error) == SQLITE_OK);
  /* 2,000 documents, 17 MB of varied lines: read in a moment, trained on
  ** for seconds, so the interrupt comes while training. */
  CHECK(sqlite3_exec(
            db,
            "CREATE TABLE docs(body TEXT);"
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)"
            "INSERT INTO docs SELECT group_concat(printf('line %d: the %x quick %o brown fox "
            "%d jumps ',"
            "  i, i * 7, i * 13, i % 977) || hex(randomblob(20)), char(10)) FROM n GROUP BY i "
            "/ 100;",
            NULL, NULL, &error) == SQLITE_OK);
  CHECK(run_interrupted(db, "SELECT bp_train(body, '{\"vocab_size\": 5000}') FROM docs") ==
        SQLITE_INTERRUPT);
  CHECK(strcmp(sqlite3_errmsg(db), "interrupted") == 0);
  /* With the rows read on worker threads: stopped while training, and while
  ** reading (the workers' chunks 2 MB in), the workers stopped and freed. */
  CHECK(run_interrupted(
            db, "SELECT bp_train(body, '{\"vocab_size\": 5000, \"threads\": 2}') FROM docs") ==
        SQLITE_INTERRUPT);
  CHECK(strcmp(sqlite3_errmsg(db), "interrupted") == 0);
  expect_interrupted(
      db, "SELECT bp_train(body, '{\"vocab_size\": 5000, \"threads\": 2}') FROM docs", 2000000,
      "interrupted");
  /* A round of training in rounds stops too: the piece round of an order-2
  ** training, segmenting every chunk in bp_train_partial's last step. */
  CHECK(sqlite3_exec(db,
                     "CREATE TABLE st AS SELECT bp_train_start('{\"order\": 2}') AS s;"
                     "UPDATE st SET s = (SELECT bp_train_merge((SELECT s FROM st), p) FROM"
                     "  (SELECT bp_train_partial(body, (SELECT s FROM st)) AS p FROM docs));",
                     NULL, NULL, &error) == SQLITE_OK);
  CHECK(run_interrupted(db,
                        "SELECT bp_train_partial(body, (SELECT s FROM st), "
                        "'{\"threads\": 2}') FROM docs") == SQLITE_INTERRUPT);
  CHECK(strcmp(sqlite3_errmsg(db), "interrupted") == 0);
  /* Nothing stored, and the connection still works. */
  CHECK(sqlite3_exec(db, "SELECT count(*) FROM bp_models", NULL, NULL, &error) == SQLITE_OK);
  CHECK(sqlite3_exec(
            db,
            "INSERT INTO bp_models(name, model)"
            "  SELECT 'm', bp_train(body, '{\"vocab_size\": 300}') FROM docs WHERE rowid < 100;"
            /* One 70 MB text: seconds of encoding. */
            "CREATE TABLE big AS SELECT group_concat(body, '') AS t"
            "  FROM (SELECT body FROM docs UNION ALL SELECT body FROM docs"
            "        UNION ALL SELECT body FROM docs UNION ALL SELECT body FROM docs);"
            "CREATE VIRTUAL TABLE f USING fts5(t, tokenize = 'bytepiece m');",
            NULL, NULL, &error) == SQLITE_OK);
  CHECK(run_interrupted(db, "SELECT bp_count(t, 'm') FROM big") == SQLITE_INTERRUPT);
  CHECK(run_interrupted(db, "SELECT count(*) FROM big, bp_tokens(big.t, 'm')") ==
        SQLITE_INTERRUPT);
  CHECK(run_interrupted(db, "INSERT INTO f SELECT t FROM big") == SQLITE_INTERRUPT);
  test_interrupted_export(db);
  /* One 600 KB line, segmented in a moment, cut into chunks of 100,000
  ** tokens that each start one token after the previous one: the chunks
  ** come one by one, so the interrupt stops them. */
  CHECK(sqlite3_exec(
            db,
            "CREATE TABLE line AS SELECT replace(group_concat(body, ' '), char(10), ' ') AS t"
            "  FROM docs WHERE rowid <= 70;",
            NULL, NULL, &error) == SQLITE_OK);
  CHECK(run_interrupted(db,
                        "SELECT sum(length(c.text)) FROM line,"
                        " bp_chunks(line.t, 100000, 'm', 99999) AS c") == SQLITE_INTERRUPT);
  CHECK(sqlite3_exec(db, "SELECT count(*) FROM f", NULL, NULL, &error) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "SELECT bp_count('still works', 'm')", NULL, NULL, &error) ==
        SQLITE_OK);
  sqlite3_close(db);
  test_interrupted_compilation(argv[1]);
  test_interrupted_shrink(argv[1]);
  printf("interrupt: %d passed, %d failed\n", passed, failed);
  return failed != 0;
}
