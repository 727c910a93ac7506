/*
** static_host.c: a C program with the extension linked in statically (built
** with SQLITE_CORE) and registered for every connection through
** sqlite3_auto_extension, with the committed model tests/data/small.zip: the
** sample text's pinned ids (the same as in shell_host.sh, python_host.py,
** node_fts5.js and hosts.test) and back. Prints
** "static: N passed, N failed, 0 skipped" and exits 1 if any check failed.
** The program has functions of its own named as the library's internals
** (bp_encode, bp_free): the static library exports only its entry point, so
** they link without a collision, and each side calls its own; and a
** built-in model, with nothing stored.
**   static_host MODEL.zip
*/
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "sqlite3_bytepiece.h"

static int passed, failed;

/* The host's own, of names the library uses inside. */
const char *bp_encode(const char *text);
const char *bp_encode(const char *text) { return text; }
void bp_free(void *p);
void bp_free(void *p) { (void)p; }

/* Runs a one-row query and compares its single text column. */
static void check(sqlite3 *db, const char *name, const char *sql, const char *expected) {
  sqlite3_stmt *stmt;
  const char *got = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
    failed++;
    printf("FAILED static %s: %s\n", name, sqlite3_errmsg(db));
    return;
  }
  if (sqlite3_step(stmt) == SQLITE_ROW) got = (const char *)sqlite3_column_text(stmt, 0);
  if (got && strcmp(got, expected) == 0)
    passed++;
  else {
    failed++;
    printf("FAILED static %s\n  expected: %s\n  got:      %s\n", name, expected,
           got ? got : sqlite3_errmsg(db));
  }
  sqlite3_finalize(stmt);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: static_host MODEL.zip\n");
    return 2;
  }
  sqlite3_auto_extension((void (*)(void))sqlite3_bytepiece_init);
  sqlite3 *db;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
    printf("FAILED static open: %s\n", sqlite3_errmsg(db));
    return 1;
  }
  char *sql = sqlite3_mprintf(
      "INSERT INTO bp_models(name, model) VALUES ('small', bp_model_load(%Q))", argv[1]);
  if (sql && sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
    passed++;
  else {
    failed++;
    printf("FAILED static load: %s\n", sqlite3_errmsg(db));
  }
  sqlite3_free(sql);
  const char *ids =
      "[792,113,306,108,46,46,720,69,83,98,82,78,553,232,167,172,233,179,151,262,50]";
  check(
      db, "encode",
      "SELECT bp_encode('  for (size_t i = 0; i < n; i++) return BP_OK; /* 天气 */', 'small')",
      ids);
  check(db, "decode",
        "SELECT "
        "bp_decode('[792,113,306,108,46,46,720,69,83,98,82,78,553,232,167,172,233,179,151,262,"
        "50]', 'small')",
        "  for (size_t i = 0; i < n; i++) return BP_OK; /* 天气 */");
  check(db, "builtin", "SELECT bp_encode('今天天气不错 hello world 123', 'bytepiece_80k')",
        "[37037,40950,36144,29161,30241,10177]");
  bp_free(NULL);
  if (strcmp(bp_encode("the host's"), "the host's") == 0)
    passed++;
  else {
    failed++;
    printf("FAILED static host_symbol: the host's bp_encode is not its own\n");
  }
  sqlite3_close(db);
  printf("static: %d passed, %d failed, 0 skipped\n", passed, failed);
  return failed != 0;
}
