/*
** static_host.c: a C program with the extension linked in statically (built
** with SQLITE_CORE) and registered for every connection through
** sqlite3_auto_extension. Prints "hosts: N passed, N failed".
**   static_host MODEL.zip
*/
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "sqlite3_bytepiece.h"

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int passed = 0, failed = 0;
  sqlite3_auto_extension((void (*)(void))sqlite3_bytepiece_init);
  sqlite3 *db;
  sqlite3_open(":memory:", &db);
  char *sql = sqlite3_mprintf(
      "INSERT INTO bp_models(name, model) VALUES ('zh80k', bp_model_load(%Q))", argv[1]);
  if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK) passed++;
  else {
    failed++;
    printf("FAILED static load: %s\n", sqlite3_errmsg(db));
  }
  sqlite3_free(sql);
  sqlite3_stmt *stmt;
  sqlite3_prepare_v2(db, "SELECT bp_encode('今天天气不错 hello world 123', 'zh80k')", -1, &stmt, NULL);
  const char *expected = "[37037,40950,36144,29161,30241,10177]";
  if (sqlite3_step(stmt) == SQLITE_ROW &&
      strcmp((const char *)sqlite3_column_text(stmt, 0), expected) == 0)
    passed++;
  else {
    failed++;
    printf("FAILED static encode: %s\n", sqlite3_errmsg(db));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  printf("hosts: %d passed, %d failed\n", passed, failed);
  return failed != 0;
}
