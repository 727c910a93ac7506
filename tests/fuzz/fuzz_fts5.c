/*
** fuzz_fts5.c: libFuzzer target for the FTS5 tokenizer: each input is
** indexed as a document (TEXT, or BLOB when the first byte is odd) in a
** table with the bytepiece tokenizer and one without pieces (pieces 0),
** queried as a phrase, then deleted; FTS5's integrity-check must pass after
** every change.
*/
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_model_file.h"
#include "sqlite3_bytepiece.h"

static sqlite3 *db;

static void run(const char *sql) {
  char *error = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK) {
    fprintf(stderr, "%s: %s\n", sql, error);
    abort();
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  sqlite3_auto_extension((void (*)(void))sqlite3_bytepiece_init);
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) abort();
  char *sql = sqlite3_mprintf(
      "INSERT INTO bp_models(name, model) VALUES ('m', bp_model_load(%Q));"
      "CREATE VIRTUAL TABLE f USING fts5(body, tokenize = 'bytepiece m');"
      "CREATE VIRTUAL TABLE s USING fts5(body, tokenize = 'bytepiece m pieces 0');",
      fuzz_model_path());
  run(sql);
  sqlite3_free(sql);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0 || size > 65536) return 0;
  const char *tables[2] = {"f", "s"};
  for (int t = 0; t < 2; t++) {
    char sql[200];
    sqlite3_stmt *stmt;
    snprintf(sql, sizeof sql, "INSERT INTO %s(rowid, body) VALUES (1, ?1)", tables[t]);
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) abort();
    if (data[0] & 1)
      sqlite3_bind_blob(stmt, 1, data + 1, (int)size - 1, SQLITE_STATIC);
    else
      sqlite3_bind_text(stmt, 1, (const char *)data + 1, (int)size - 1, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE) abort();
    sqlite3_finalize(stmt);
    snprintf(sql, sizeof sql, "INSERT INTO %s(%s) VALUES ('integrity-check')", tables[t],
             tables[t]);
    run(sql);
    /* The document as a phrase query: it may or may not match (FTS5's query
    ** syntax takes some bytes apart), but it must not fail or crash. */
    snprintf(sql, sizeof sql,
             "SELECT rowid, highlight(%s, 0, '[', ']') FROM %s WHERE %s MATCH ?1", tables[t],
             tables[t], tables[t]);
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) abort();
    char *phrase = sqlite3_mprintf("\"%.*w\"", (int)size - 1, (const char *)data + 1);
    sqlite3_bind_text(stmt, 1, phrase, -1, sqlite3_free);
    while (sqlite3_step(stmt) == SQLITE_ROW) {}
    sqlite3_finalize(stmt);
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE rowid = 1", tables[t]);
    run(sql);
    snprintf(sql, sizeof sql, "INSERT INTO %s(%s) VALUES ('integrity-check')", tables[t],
             tables[t]);
    run(sql);
  }
  return 0;
}
