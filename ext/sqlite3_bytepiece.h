/*
** sqlite3_bytepiece.h: for programs that link the BytePiece extension in
** (libsqlite3_bytepiece.a) instead of loading it:
**
**     #include <sqlite3.h>
**     #include <sqlite3_bytepiece.h>
**     sqlite3_auto_extension((void (*)(void))sqlite3_bytepiece_init);
**
** Every connection opened afterwards has the bp_ functions, tables and the
** bytepiece FTS5 tokenizer. Link with -lsqlite3 -lutf8proc -lz -lm -lpthread.
*/
#ifndef SQLITE3_BYTEPIECE_H
#define SQLITE3_BYTEPIECE_H

#include <sqlite3.h>

int sqlite3_bytepiece_init(sqlite3 *db, char **error, const sqlite3_api_routines *api);

#endif /* SQLITE3_BYTEPIECE_H */
