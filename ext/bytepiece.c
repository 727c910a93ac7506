/*
** bytepiece.c: the entry point of the BytePiece SQLite extension.
**
**     .load ./bytepiece
**     INSERT INTO bp_models(name, model) VALUES ('m', bp_model_load('m.zip'));
**     SELECT bp_encode('今天天气不错', 'm');
**
** Routes the library's allocations through SQLite's allocator, creates the
** per-connection state, and registers the FTS5 tokenizer, then every row
** of sql_api.h (functions, aggregates, the bp_models table and the
** table-valued functions) in one loop. Loading it again into a connection that
** has it does nothing.
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
** build): then loading again does nothing, as re-registering functions
** fails while a statement runs (SELECT load_extension(...)). SQLite 3.40
** has no client data to find the state by, so the mark is bp_version(),
** registered last: compiling a call to it succeeds exactly when a load
** completed, without reading the schema. A load that failed part way
** leaves no mark, and the next one registers everything again (each
** registration holds its own reference to the state it replaces). */
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

/* One row of sql_api.h. */
typedef struct sql_entry {
  const char *name;
  void (*function)(sqlite3_context *, int, sqlite3_value **);
  void (*step)(sqlite3_context *, int, sqlite3_value **);
  void (*final)(sqlite3_context *);
  const sqlite3_module *module; /* a module, when not NULL */
  int min_args, max_args, flags;
  int with_connection; /* the module's aux is the connection state */
} sql_entry;

#define AS_FUNCTION(name, min_args, max_args, flags, function) \
  {name, function, NULL, NULL, NULL, min_args, max_args, flags, 0},
#define AS_AGGREGATE(name, min_args, max_args, flags, step, final) \
  {name, NULL, step, final, NULL, min_args, max_args, flags, 0},
#define AS_MODULE(name, module, with_connection) \
  {name, NULL, NULL, NULL, &(module), 0, 0, 0, with_connection},

static const sql_entry sql_api[] = {BPSQL_SQL_API(AS_FUNCTION, AS_AGGREGATE, AS_MODULE)};

/* Registers one row, every argument count of a function. Each registration
** takes its own reference to the connection state; SQLite's destructor
** releases it, also when the registration fails. */
static int register_entry(sqlite3 *db, const sql_entry *e, bpsql_connection *connection) {
  if (e->module)
    return e->with_connection ? sqlite3_create_module_v2(db, e->name, e->module,
                                                         bpsql_connection_retain(connection),
                                                         bpsql_connection_release)
                              : sqlite3_create_module_v2(db, e->name, e->module, NULL, NULL);
  for (int n = e->min_args; n <= e->max_args; n++) {
    int rc = sqlite3_create_function_v2(db, e->name, n, e->flags,
                                        bpsql_connection_retain(connection), e->function,
                                        e->step, e->final, bpsql_connection_release);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

/* The one symbol the extension exports: the build hides everything else. */
#ifdef _WIN32
__declspec(dllexport)
#else
__attribute__((visibility("default")))
#endif
    int sqlite3_bytepiece_init(sqlite3 *db, char **error, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  pthread_once(&allocator_once, use_sqlite_allocator);
  int loaded, rc = already_loaded(db, &loaded);
  if (rc != SQLITE_OK) {
    *error = sqlite3_mprintf("bytepiece: cannot load: %s", sqlite3_errmsg(db));
    return rc;
  }
  if (loaded) return SQLITE_OK;
  bpsql_connection *connection = bpsql_connection_new(db);
  if (!connection) return SQLITE_NOMEM;
  /* The FTS5 tokenizer first, so that the table's last row, the mark, is
  ** registered last of all. */
  const sql_entry *failed = NULL;
  rc = bpsql_register_fts5(db, connection);
  for (size_t i = 0; i < sizeof sql_api / sizeof sql_api[0] && rc == SQLITE_OK; i++)
    if ((rc = register_entry(db, &sql_api[i], connection)) != SQLITE_OK) failed = &sql_api[i];
  if (failed && failed->module == &bpsql_models_module)
    *error = sqlite3_mprintf("bytepiece: cannot register bp_models: %s", sqlite3_errmsg(db));
  else if (rc != SQLITE_OK)
    *error = sqlite3_mprintf("bytepiece: cannot register functions: %s", sqlite3_errmsg(db));
  /* The registrations hold the state now; it is freed with the last. */
  bpsql_connection_release(connection);
  return rc;
}
