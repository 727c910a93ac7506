/*
** sql_interrupt_test.c: sqlite3_interrupt() from another thread stops a
** long bp_train with SQLITE_INTERRUPT, and the connection goes on working;
** it also stops the encoding of one huge text (bp_count, bp_tokens, FTS5
** indexing) and bp_chunks cutting a long line, and the time from the
** interrupt to the return is printed.
** Prints "interrupt: N passed, N failed".
**   sql_interrupt_test EXTENSION
*/
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  sqlite3 *db;
  char *error = NULL;
  CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
  sqlite3_enable_load_extension(db, 1);
  CHECK(sqlite3_load_extension(db, argv[1], NULL, &error) == SQLITE_OK);
  /* 2,000 documents, 17 MB of varied lines: read in a moment, trained on
  ** for seconds, so the interrupt comes while training. */
  CHECK(sqlite3_exec(db,
      "CREATE TABLE docs(body TEXT);"
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)"
      "INSERT INTO docs SELECT group_concat(printf('line %d: the %x quick %o brown fox %d jumps ',"
      "  i, i * 7, i * 13, i % 977) || hex(randomblob(20)), char(10)) FROM n GROUP BY i / 100;",
      NULL, NULL, &error) == SQLITE_OK);
  CHECK(run_interrupted(db, "SELECT bp_train(body, '{\"vocab_size\": 5000}') FROM docs") ==
        SQLITE_INTERRUPT);
  CHECK(strcmp(sqlite3_errmsg(db), "interrupted") == 0);
  /* Nothing stored, and the connection still works. */
  CHECK(sqlite3_exec(db, "SELECT count(*) FROM bp_models", NULL, NULL, &error) == SQLITE_OK);
  CHECK(sqlite3_exec(db,
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
  /* One 600 KB line, segmented in a moment, cut into chunks of 100,000
  ** tokens that each start one token after the previous one: the chunks
  ** come one by one, so the interrupt stops them. */
  CHECK(sqlite3_exec(db,
      "CREATE TABLE line AS SELECT replace(group_concat(body, ' '), char(10), ' ') AS t"
      "  FROM docs WHERE rowid <= 70;",
      NULL, NULL, &error) == SQLITE_OK);
  CHECK(run_interrupted(db, "SELECT sum(length(c.text)) FROM line,"
                            " bp_chunks(line.t, 100000, 'm', 99999) AS c") == SQLITE_INTERRUPT);
  CHECK(sqlite3_exec(db, "SELECT count(*) FROM f", NULL, NULL, &error) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "SELECT bp_count('still works', 'm')", NULL, NULL, &error) == SQLITE_OK);
  sqlite3_close(db);
  printf("interrupt: %d passed, %d failed\n", passed, failed);
  return failed != 0;
}
