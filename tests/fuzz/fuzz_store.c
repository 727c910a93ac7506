/*
** fuzz_store.c: libFuzzer target for databases from anywhere: a stored
** model value, and the bp_model_store table that holds it, as a hostile
** database file could have them. Each input is a flags byte and a value:
**
**   flags & 7     the store's schema: as bp_models creates it, or one of
**                 seven altered schemas (extra or swapped columns, no
**                 constraints, WITHOUT ROWID, another letter case, a view,
**                 a TEXT model column)
**   flags & 8     recompute the value's digest after the fuzzer changed it,
**                 so that validation past the digest is reached
**   flags & 16    also insert the value through bp_models
**   flags & 32    the row gets rowid 0
**   flags & 64    also pass the value as a BLOB model argument
**
** The value is written with plain SQL under the name 'x', beside a valid
** model 'good' that another connection keeps compiled (so a value that
** claims its digest meets the process-wide cache). Then every function that
** reads models runs on 'x'. Any of them may fail, but none may crash, hang
** or use a wrong model: when the library refuses the value, no function may
** succeed with it, and whatever encodes must decode back to its text.
*/
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_model_file.h"
#include "internal.h"
#include "sqlite3_bytepiece.h"

static sqlite3 *keeper;     /* holds 'good' compiled for the whole run */
static uint8_t *good_value; /* its model value */
static size_t good_len;

static const char *const schemas[8] = {
    NULL, /* made by INSERT INTO bp_models */
    "CREATE TABLE bp_model_store(name TEXT PRIMARY KEY NOT NULL, model BLOB NOT NULL, extra)",
    "CREATE TABLE bp_model_store(name, model)",
    "CREATE TABLE bp_model_store(name TEXT PRIMARY KEY, model BLOB) WITHOUT ROWID",
    "CREATE TABLE BP_Model_Store(name TEXT PRIMARY KEY NOT NULL, model BLOB NOT NULL)",
    "CREATE TABLE t(name, model); CREATE VIEW bp_model_store AS SELECT * FROM t",
    "CREATE TABLE bp_model_store(model BLOB, name TEXT UNIQUE)",
    "CREATE TABLE bp_model_store(name TEXT PRIMARY KEY NOT NULL, model TEXT NOT NULL)",
};

/* Runs one statement with an optional BLOB parameter; returns its result
** code. The first column of the last row, as text, goes to *first. */
static int run(sqlite3 *db, const char *sql, const uint8_t *blob, size_t blob_len,
               char **first) {
  sqlite3_stmt *stmt;
  if (first) *first = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
  if (rc != SQLITE_OK) return rc;
  if (blob) sqlite3_bind_blob64(stmt, 1, blob, blob_len, SQLITE_STATIC);
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
    if (first) {
      sqlite3_free(*first);
      const char *text = (const char *)sqlite3_column_text(stmt, 0);
      *first = text ? sqlite3_mprintf("%s", text) : NULL;
    }
  int finalized = sqlite3_finalize(stmt);
  return rc == SQLITE_DONE ? finalized : rc;
}

static void must(sqlite3 *db, const char *sql, const uint8_t *blob, size_t blob_len) {
  if (run(db, sql, blob, blob_len, NULL) != SQLITE_OK) {
    fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
    abort();
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  sqlite3_auto_extension((void (*)(void))sqlite3_bytepiece_init);
  if (sqlite3_open(":memory:", &keeper) != SQLITE_OK) abort();
  char *sql =
      sqlite3_mprintf("INSERT INTO bp_models(name, model) VALUES ('good', bp_model_load(%Q))",
                      fuzz_model_path());
  must(keeper, sql, NULL, 0);
  sqlite3_free(sql);
  must(keeper, "SELECT bp_count('a', 'good')", NULL, 0);
  sqlite3_stmt *stmt;
  if (sqlite3_prepare_v2(keeper, "SELECT model FROM bp_model_store", -1, &stmt, NULL) !=
          SQLITE_OK ||
      sqlite3_step(stmt) != SQLITE_ROW)
    abort();
  good_len = (size_t)sqlite3_column_bytes(stmt, 0);
  good_value = malloc(good_len);
  if (!good_value) abort();
  memcpy(good_value, sqlite3_column_blob(stmt, 0), good_len);
  sqlite3_finalize(stmt);
  return 0;
}

/* The statements that read the model 'x'; each may fail. */
static const char *const readers[] = {
    "SELECT name, vocab_size, length(model) FROM bp_models",
    "SELECT bp_count('hello world 今天天气不错', 'x')",
    "SELECT bp_encode('hello world', 'x', 0.5, 7)",
    "SELECT bp_encode('hello world', 'x', 1e300, 7)",
    "SELECT count(*), sum(count), max(score) FROM bp_vocab('x')",
    "SELECT * FROM bp_tokens('hello', 'x')",
    "SELECT * FROM bp_chunks('one two three' || char(10) || 'four', 3, 'x', 1)",
    "SELECT bp_truncate('hello world', 2, 'x')",
    "SELECT bp_stats(t, 'x') FROM (SELECT 'a b' AS t UNION ALL SELECT 'c')",
    "SELECT length(bp_model_shrink('x', 300))",
    "SELECT bp_count('hello')",
    "CREATE VIRTUAL TABLE f USING fts5(b, tokenize = 'bytepiece x')",
    "INSERT INTO f VALUES ('hello world')",
    "SELECT rowid FROM f WHERE f MATCH 'hello'",
    "DROP TABLE IF EXISTS f",
    "UPDATE bp_models SET name = 'z' WHERE name = 'x'",
    "DELETE FROM bp_models WHERE name IN ('x', 'z')",
    "SELECT name FROM bp_models",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (1 << 20)) return 0;
  int flags = data[0];
  size_t len = size - 1;
  uint8_t *value = malloc(len ? len : 1);
  if (!value) abort();
  memcpy(value, data + 1, len);
  if ((flags & 8) && len >= BP_VALUE_HEADER_BYTES)
    bp_sha256(value + BP_VALUE_HEADER_BYTES, len - BP_VALUE_HEADER_BYTES,
              value + BP_VALUE_DIGEST_OFFSET);

  /* What the library says of the value on its own. */
  bp_model *direct;
  bp_error err;
  int valid = bp_model_deserialize(value, len, NULL, &direct, &err) == BP_OK;
  if (valid) bp_model_release(direct);

  sqlite3 *db;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) abort();
  const char *schema = schemas[flags & 7];
  if (schema) {
    must(db, schema, NULL, 0);
    run(db, "INSERT INTO bp_model_store(name, model) VALUES ('good', ?1)", good_value, good_len,
        NULL);
  } else {
    must(db, "INSERT INTO bp_models(name, model) VALUES ('good', ?1)", good_value, good_len);
  }
  run(db,
      (flags & 32) ? "INSERT INTO bp_model_store(rowid, name, model) VALUES (0, 'x', ?1)"
                   : "INSERT INTO bp_model_store(name, model) VALUES ('x', ?1)",
      value, len, NULL);
  if (flags & 16)
    run(db, "INSERT INTO bp_models(name, model) VALUES ('y', ?1)", value, len, NULL);

  for (size_t i = 0; i < sizeof readers / sizeof readers[0]; i++) {
    char *first;
    int rc = run(db, readers[i], NULL, 0, &first);
    /* A model the library refuses is never used under its name. */
    if (i == 1 && rc == SQLITE_OK && !valid) {
      sqlite3_stmt *stmt;
      int found =
          sqlite3_prepare_v2(db, "SELECT model = ?1 FROM bp_model_store WHERE name = 'x'", -1,
                             &stmt, NULL) == SQLITE_OK &&
          (sqlite3_bind_blob64(stmt, 1, value, len, SQLITE_STATIC), 1) &&
          sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_int(stmt, 0) == 1;
      sqlite3_finalize(stmt);
      if (found) {
        fprintf(stderr, "bp_count used a value the library refuses: %s\n", err.message);
        abort();
      }
    }
    sqlite3_free(first);
  }
  /* Whatever encodes decodes back. */
  char *decoded;
  if (run(db, "SELECT bp_decode(bp_encode('abc xyz 天气', 'good'), 'good')", NULL, 0,
          &decoded) == SQLITE_OK &&
      (!decoded || strcmp(decoded, "abc xyz 天气") != 0))
    abort();
  sqlite3_free(decoded);
  if (flags & 64) {
    char *first;
    int rc = run(db, "SELECT bp_decode(bp_encode('abc xyz', ?1), ?1)", value, len, &first);
    if (rc == SQLITE_OK && !valid) abort();
    if (rc == SQLITE_OK && (!first || strcmp(first, "abc xyz") != 0)) abort();
    sqlite3_free(first);
  }
  if (sqlite3_close(db) != SQLITE_OK) abort();
  free(value);
  return 0;
}
