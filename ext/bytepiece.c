/*
** bytepiece.c: the entry point of the BytePiece SQLite extension.
**
**     .load ./bytepiece
**     INSERT INTO bp_models(name, model) VALUES ('m', bp_model_load('m.zip'));
**     SELECT bp_encode('今天天气不错', 'm');
**
** Routes the library's allocations through SQLite's allocator, creates the
** per-connection state, and registers the bp_models table, the scalar
** functions, the table-valued functions and training.
*/
#include "binding.h"

#include <pthread.h>

SQLITE_EXTENSION_INIT1

static void *sqlite_malloc(size_t n) { return sqlite3_malloc64(n); }
static void *sqlite_realloc(void *p, size_t n) { return sqlite3_realloc64(p, n); }

/* Once per process: connections opened on several threads load the
** extension each. */
static pthread_once_t allocator_once = PTHREAD_ONCE_INIT;
static void use_sqlite_allocator(void) {
  bp_set_allocator(sqlite_malloc, sqlite_realloc, sqlite3_free);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_bytepiece_init(sqlite3 *db, char **error,
                           const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  pthread_once(&allocator_once, use_sqlite_allocator);
  bp_connection *connection = bp_connection_new(db);
  if (!connection) return SQLITE_NOMEM;
  /* The module owns the connection state and frees it when db closes. */
  int rc = bp_register_models_table(db, connection);
  if (rc != SQLITE_OK) {
    *error = sqlite3_mprintf("bytepiece: cannot register bp_models: %s",
                             sqlite3_errmsg(db));
    return rc;
  }
  rc = bp_register_functions(db, connection);
  if (rc == SQLITE_OK) rc = bp_register_tables(db, connection);
  if (rc == SQLITE_OK) rc = bp_register_training(db, connection);
  if (rc == SQLITE_OK) rc = bp_register_analytics(db, connection);
  if (rc == SQLITE_OK) rc = bp_register_fts5(db, connection);
  if (rc != SQLITE_OK)
    *error = sqlite3_mprintf("bytepiece: cannot register functions: %s",
                             sqlite3_errmsg(db));
  return rc;
}
