/*
** bytepiece.c: the entry point of the BytePiece SQLite extension.
**
**     .load ./bytepiece
**     INSERT INTO bp_models(name, model) VALUES ('m', bp_model_load('m.zip'));
**     SELECT bp_encode('今天天气不错', 'm');
**
** Routes the library's allocations through SQLite's allocator, creates the
** per-connection state, and registers the bp_models table, the scalar
** functions, the table-valued functions and training. Loading it again into
** a connection that has it does nothing.
*/
#include "binding.h"

#include <pthread.h>
#include <string.h>

SQLITE_EXTENSION_INIT1

static void *sqlite_malloc(size_t n) { return sqlite3_malloc64(n); }
static void *sqlite_realloc(void *p, size_t n) { return sqlite3_realloc64(p, n); }

/* Once per process: connections opened on several threads load the
** extension each. */
static pthread_once_t allocator_once = PTHREAD_ONCE_INIT;
static void use_sqlite_allocator(void) {
  bp_set_allocator(sqlite_malloc, sqlite_realloc, sqlite3_free);
}

/* Whether the connection has the extension already (this copy or another
** build). Registering again would replace the bp_models module, whose
** destructor frees the connection state that the registered functions
** still use, and re-registering those functions fails while a statement
** runs (SELECT load_extension(...)). SQLite 3.40 has no client data to
** find the state by, so the mark is a function: compiling a call to
** bp_version() succeeds exactly when it is registered, without reading
** the schema. */
static int already_loaded(sqlite3 *db, int *loaded) {
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(db, "SELECT bp_version()", -1, &stmt, NULL);
  sqlite3_finalize(stmt);
  *loaded = rc == SQLITE_OK;
  if (rc == SQLITE_OK) return SQLITE_OK;
  if (rc == SQLITE_ERROR && strncmp(sqlite3_errmsg(db), "no such function", 16) == 0)
    return SQLITE_OK;
  return rc;
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_bytepiece_init(sqlite3 *db, char **error,
                           const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  pthread_once(&allocator_once, use_sqlite_allocator);
  int loaded, rc = already_loaded(db, &loaded);
  if (rc != SQLITE_OK) {
    *error = sqlite3_mprintf("bytepiece: cannot load: %s", sqlite3_errmsg(db));
    return rc;
  }
  if (loaded) return SQLITE_OK;
  bp_connection *connection = bp_connection_new(db);
  if (!connection) return SQLITE_NOMEM;
  /* The module owns the connection state and frees it when db closes. */
  rc = bp_register_models_table(db, connection);
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
