/*
** fuzz_train.c: libFuzzer target for training on arbitrary small corpora
** with arbitrary options, through SQL as users call it. The input's first
** line is the options argument of bp_train; the rest, cut at NUL bytes, are
** the documents. Training either fails with an error or gives a model that
** encodes every document and decodes it back byte for byte.
*/
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite3_bytepiece.h"

static sqlite3 *db;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  sqlite3_auto_extension((void (*)(void))sqlite3_bytepiece_init);
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) abort();
  if (sqlite3_exec(db, "CREATE TABLE docs(t)", NULL, NULL, NULL) != SQLITE_OK) abort();
  return 0;
}

static void run(const char *sql) {
  if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  const uint8_t *end = data + size, *line = memchr(data, '\n', size);
  if (!line) return 0;
  run("DELETE FROM docs");
  sqlite3_stmt *insert;
  if (sqlite3_prepare_v2(db, "INSERT INTO docs VALUES (?1)", -1, &insert, NULL) != SQLITE_OK)
    abort();
  for (const uint8_t *doc = line + 1; doc < end;) {
    const uint8_t *stop = memchr(doc, 0, (size_t)(end - doc));
    if (!stop) stop = end;
    /* Valid UTF-8 goes in as TEXT (normalized), anything else as BLOB. */
    sqlite3_bind_text(insert, 1, (const char *)doc, (int)(stop - doc), SQLITE_TRANSIENT);
    sqlite3_step(insert);
    sqlite3_reset(insert);
    doc = stop + 1;
  }
  sqlite3_finalize(insert);
  sqlite3_stmt *train;
  if (sqlite3_prepare_v2(db, "SELECT bp_train(t, ?1) FROM docs", -1, &train, NULL) != SQLITE_OK)
    abort();
  sqlite3_bind_text(train, 1, (const char *)data, (int)(line - data), SQLITE_STATIC);
  if (sqlite3_step(train) == SQLITE_ROW && sqlite3_column_type(train, 0) == SQLITE_BLOB) {
    sqlite3_stmt *check;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM docs WHERE bp_decode_bytes(bp_encode(CAST(t "
                           "AS BLOB), ?1), ?1)"
                           " IS NOT CAST(t AS BLOB) AND length(t) > 0",
                           -1, &check, NULL) != SQLITE_OK)
      abort();
    sqlite3_bind_value(check, 1, sqlite3_column_value(train, 0));
    if (sqlite3_step(check) != SQLITE_ROW || sqlite3_column_int(check, 0) != 0) abort();
    sqlite3_finalize(check);
  }
  sqlite3_finalize(train);
  return 0;
}
