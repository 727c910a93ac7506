/*
** static.c: BytePiece linked into a C program. From the static release
** archive's folder (libsqlite3_bytepiece.a, sqlite3_bytepiece.h):
**   cc -o static static.c -I. libsqlite3_bytepiece.a -lsqlite3 -lutf8proc -lz -lm -lpthread
*/
#include <sqlite3.h>
#include <stdio.h>

#include "sqlite3_bytepiece.h"

int main(void) {
  /* Every connection opened from here on has the bp_ functions. */
  sqlite3_auto_extension((void (*)(void))sqlite3_bytepiece_init);
  sqlite3 *db;
  sqlite3_stmt *stmt;
  if (sqlite3_open("docs.db", &db) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "SELECT bp_encode('今天天气不错 hello world 123', 'bytepiece_80k')",
                         -1, &stmt, NULL) != SQLITE_OK) {
    fprintf(stderr, "static: %s\n", sqlite3_errmsg(db));
    return 1;
  }
  int found = sqlite3_step(stmt) == SQLITE_ROW;
  if (found) printf("%s\n", (const char *)sqlite3_column_text(stmt, 0));
  else fprintf(stderr, "static: %s\n", sqlite3_errmsg(db));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return found ? 0 : 1;
}
