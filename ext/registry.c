/*
** registry.c: model resolution and the model store.
**
**     SELECT bp_encode('text', 'zh');       -- a name in bp_models
**     SELECT bp_encode('text');             -- the default model
**
** bp_models (models_table.c) keeps its rows in an ordinary table,
** main.bp_model_store(name, model), created by the first INSERT; so models
** persist in the database file and travel with it. This file turns a model
** argument (a name, a model value, or none for the default model) into a
** compiled model from the store, through the compiled models the process
** shares (model_cache.c). A name that nothing stored holds may name a
** built-in model (builtin_models.c): a stored model of the same name takes
** precedence, and when nothing at all is stored the default model is the
** built-in BPSQL_BUILTIN_DEFAULT.
**
** A database may come from anywhere, so the store is trusted only after a
** look at its schema (bpsql_store_check): a rowid table with exactly the columns
** name (TEXT affinity) and model, and a UNIQUE index on name alone with
** BINARY collation. Anything else is refused on every path, with the same
** message. The verdict is kept until the schema version changes.
**
** Each connection remembers which compiled model each name resolved to,
** with the header and length of the stored value. The memory is trusted
** while the database's data version (changed by every commit, by this
** connection or another) and this connection's own bp_models writes are
** unchanged; when either changes, every remembered name is confirmed
** against the store once (a header read), and a name that is gone or holds
** another value is forgotten, its model released. So a change takes effect
** by the next statement, and deleted or replaced models do not stay in
** memory. A name resolved to a built-in model stays so while nothing stored
** takes it over. The few most recent model values passed as arguments are also
** remembered (MAX_VALUE_ENTRIES).
*/
#include "builtin_models.h"

#include <string.h>

SQLITE_EXTENSION_INIT3

#define NOT_A_STORE "main." BPSQL_STORE_TABLE " is not a model store: "
#define MAX_VALUE_ENTRIES 4

/* ---- Per-connection resolution --------------------------------------------- */

typedef struct resolved {
  char *name;   /* a model name; NULL for the default model or a value */
  int is_value; /* resolved from a model value given as argument */
  int builtin;  /* resolved to a built-in model: nothing stored had the name */
  uint8_t header[BP_VALUE_HEADER_BYTES]; /* of the value resolved to */
  sqlite3_int64 length;                  /* and its length */
  bp_model *model;                       /* shared */
  unsigned serial;                       /* the connection's serial when last confirmed */
  sqlite3_uint64 used;
} resolved;

bpsql_connection *bpsql_connection_new(sqlite3 *db) {
  bpsql_connection *c = sqlite3_malloc64(sizeof *c);
  if (!c) return NULL;
  memset(c, 0, sizeof *c);
  c->db = db;
  c->references = 1;
  return c;
}

bpsql_connection *bpsql_connection_retain(bpsql_connection *c) {
  c->references++;
  return c;
}

static void entry_clear(resolved *e) {
  sqlite3_free(e->name);
  bpsql_model_cache_release(e->model);
  memset(e, 0, sizeof *e);
}

void bpsql_connection_release(void *connection) {
  bpsql_connection *c = connection;
  if (!c || --c->references > 0) return;
  bpsql_model_cache_forget(c);
  for (int i = 0; i < c->count; i++) entry_clear(&c->entries[i]);
  sqlite3_free(c->entries);
  sqlite3_free(c->store_problem);
  sqlite3_free(c);
}

sqlite3 *bpsql_connection_db(bpsql_connection *c) { return c->db; }

/* Notes whether bp_models may have changed since the last look, advancing
** the serial if so. The pager's data version is current only inside a read
** transaction, so this is called inside one. */
static void connection_observe(bpsql_connection *c) {
  unsigned version = 0;
  sqlite3_file_control(c->db, "main", SQLITE_FCNTL_DATA_VERSION, &version);
  if (!c->observed || version != c->data_version || c->writes != c->observed_writes) {
    c->observed = 1;
    c->data_version = version;
    c->observed_writes = c->writes;
    c->serial++;
  }
}

void bpsql_connection_note_write(bpsql_connection *c) { c->writes++; }

static resolved *find_name(bpsql_connection *c, const char *name) {
  for (int i = 0; i < c->count; i++) {
    resolved *e = &c->entries[i];
    if (!e->is_value && (name == NULL) == (e->name == NULL) &&
        (!name || strcmp(name, e->name) == 0))
      return e;
  }
  return NULL;
}

static resolved *find_value(bpsql_connection *c, const uint8_t *header, sqlite3_int64 length) {
  for (int i = 0; i < c->count; i++) {
    resolved *e = &c->entries[i];
    if (e->is_value && e->length == length &&
        memcmp(e->header, header, BP_VALUE_HEADER_BYTES) == 0)
      return e;
  }
  return NULL;
}

static resolved *new_entry(bpsql_connection *c, const char *name, int is_value) {
  if (is_value) {
    /* Keep only the few most recently used model values. */
    int values = 0, oldest = -1;
    for (int i = 0; i < c->count; i++)
      if (c->entries[i].is_value) {
        values++;
        if (oldest < 0 || c->entries[i].used < c->entries[oldest].used) oldest = i;
      }
    if (values >= MAX_VALUE_ENTRIES) {
      entry_clear(&c->entries[oldest]);
      c->entries[oldest].is_value = 1;
      return &c->entries[oldest];
    }
  }
  if (c->count == c->capacity) {
    int capacity = c->capacity ? c->capacity * 2 : 8;
    resolved *grown = sqlite3_realloc64(c->entries, (sqlite3_uint64)capacity * sizeof *grown);
    if (!grown) return NULL;
    c->entries = grown;
    c->capacity = capacity;
  }
  resolved *e = &c->entries[c->count];
  memset(e, 0, sizeof *e);
  if (name && !(e->name = sqlite3_mprintf("%s", name))) return NULL;
  e->is_value = is_value;
  c->count++;
  return e;
}

/* Forgets an entry (moving the last one into its place). */
static void remove_entry(bpsql_connection *c, resolved *e) {
  entry_clear(e);
  *e = c->entries[--c->count];
}

/* Forgets what a name (and the default model, which may be the same row)
** resolved to, releasing the compiled models. */
void bpsql_connection_forget_name(bpsql_connection *c, const char *name) {
  for (int i = c->count - 1; i >= 0; i--) {
    resolved *e = &c->entries[i];
    if (!e->is_value && (!e->name || (name && strcmp(e->name, name) == 0))) remove_entry(c, e);
  }
}

/* Forgets every name, or only those resolved from the store (keeping the
** built-in models, still what their names resolve to when nothing is
** stored). */
static void forget_names(bpsql_connection *c, int keep_builtin) {
  for (int i = c->count - 1; i >= 0; i--)
    if (!c->entries[i].is_value && !(keep_builtin && c->entries[i].builtin))
      remove_entry(c, &c->entries[i]);
    else if (c->entries[i].builtin)
      c->entries[i].serial = c->serial;
}

/* Remembers a model just stored under `name` (to be confirmed at the next
** use, as the transaction may still roll back). */
void bpsql_connection_remember(bpsql_connection *c, const char *name, sqlite3_value *model,
                               bp_model *compiled) {
  resolved *e = find_name(c, name);
  if (!e && !(e = new_entry(c, name, 0))) {
    bpsql_model_cache_release(compiled); /* only remembering failed: not an error */
    return;
  }
  bpsql_model_cache_release(e->model);
  e->model = compiled;
  e->builtin = 0;
  memcpy(e->header, sqlite3_value_blob(model), BP_VALUE_HEADER_BYTES);
  e->length = sqlite3_value_bytes(model);
  e->serial = 0;
}

/* ---- The store ------------------------------------------------------------- */

/* Opens a read transaction on main, unless one is open, for the time of a
** look at the store, and reads the schema version: a PRAGMA stepped to its
** row holds its transaction until it is finalized. */
int bpsql_store_snapshot(sqlite3 *db, sqlite3_stmt **snapshot, int *schema_version) {
  int rc = sqlite3_prepare_v2(db, "PRAGMA main.schema_version", -1, snapshot, NULL);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(*snapshot);
  if (rc == SQLITE_ROW) {
    *schema_version = sqlite3_column_int(*snapshot, 0);
    return SQLITE_OK;
  }
  rc = sqlite3_finalize(*snapshot);
  *snapshot = NULL;
  return rc != SQLITE_OK ? rc : SQLITE_ERROR;
}

/* Runs a query of one row and one column; *found says whether it gave one.
** The text of the column, when asked for, is copied into *text. */
static int query_one(sqlite3 *db, const char *sql, int *found, char **text,
                     sqlite3_int64 *number) {
  sqlite3_stmt *stmt;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(stmt);
  *found = rc == SQLITE_ROW;
  if (*found) {
    if (number) *number = sqlite3_column_int64(stmt, 0);
    if (text) {
      const char *t = (const char *)sqlite3_column_text(stmt, 0);
      *text = sqlite3_mprintf("%s", t ? t : "");
      if (!*text) {
        sqlite3_finalize(stmt);
        return SQLITE_NOMEM;
      }
    }
  }
  int finalize_rc = sqlite3_finalize(stmt);
  return *found || rc == SQLITE_DONE ? finalize_rc : (finalize_rc ? finalize_rc : rc);
}

/* The affinity SQLite gives a declared column type: TEXT or not. */
static int text_affinity(const char *type) {
  char upper[64];
  size_t n = 0;
  for (; type[n] && n + 1 < sizeof upper; n++)
    upper[n] = (char)(type[n] >= 'a' && type[n] <= 'z' ? type[n] - 32 : type[n]);
  upper[n] = 0;
  if (strstr(upper, "INT")) return 0;
  return strstr(upper, "CHAR") || strstr(upper, "CLOB") || strstr(upper, "TEXT");
}

/* Looks at main.bp_model_store's schema: *state is BP_STORE_ABSENT,
** BP_STORE_VALID or BP_STORE_INVALID with *problem saying why. */
static int store_inspect(sqlite3 *db, int *state, char **problem) {
  *problem = NULL;
  int found;
  char *type = NULL;
  sqlite3_int64 rootpage = 0;
  /* Names are case-insensitive: BP_Model_Store is the store too. */
  int rc = query_one(db,
                     "SELECT type FROM main.sqlite_schema WHERE name = '" BPSQL_STORE_TABLE
                     "' COLLATE NOCASE"
                     " AND type IN ('table', 'view', 'index')",
                     &found, &type, NULL);
  if (rc != SQLITE_OK) return rc;
  if (!found) {
    *state = BP_STORE_ABSENT;
    return SQLITE_OK;
  }
  *state = BP_STORE_INVALID;
  if (strcmp(type, "table") != 0) {
    *problem =
        sqlite3_mprintf(NOT_A_STORE "it is %s %s", strcmp(type, "index") ? "a" : "an", type);
    sqlite3_free(type);
    return *problem ? SQLITE_OK : SQLITE_NOMEM;
  }
  sqlite3_free(type);
  rc = query_one(db,
                 "SELECT rootpage FROM main.sqlite_schema WHERE type = 'table'"
                 " AND name = '" BPSQL_STORE_TABLE "' COLLATE NOCASE",
                 &found, NULL, &rootpage);
  if (rc != SQLITE_OK) return rc;
  if (rootpage == 0) {
    *problem = sqlite3_mprintf(NOT_A_STORE "it is a virtual table");
    return *problem ? SQLITE_OK : SQLITE_NOMEM;
  }

  /* Exactly the columns name and model, neither generated. */
  sqlite3_stmt *stmt;
  rc = sqlite3_prepare_v2(
      db, "SELECT name, type, hidden FROM pragma_table_xinfo('" BPSQL_STORE_TABLE "', 'main')",
      -1, &stmt, NULL);
  if (rc != SQLITE_OK) return rc;
  int has_name = 0, has_model = 0, bad = 0;
  while (!bad && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const char *column = (const char *)sqlite3_column_text(stmt, 0);
    const char *declared = (const char *)sqlite3_column_text(stmt, 1);
    if (!column || !declared) {
      rc = SQLITE_NOMEM;
      break;
    }
    int is_name = sqlite3_stricmp(column, "name") == 0;
    int is_model = sqlite3_stricmp(column, "model") == 0;
    bad = 1;
    if (!is_name && !is_model)
      *problem =
          sqlite3_mprintf(NOT_A_STORE "it has a column %s besides name and model", column);
    else if (sqlite3_column_int(stmt, 2) != 0)
      *problem = sqlite3_mprintf(NOT_A_STORE "its column %s is generated", column);
    else if (is_name && !text_affinity(declared))
      *problem = sqlite3_mprintf(NOT_A_STORE "its column name is %s, not TEXT",
                                 declared[0] ? declared : "untyped");
    else
      bad = 0;
    if (!bad && is_name) has_name = 1;
    if (!bad && is_model) has_model = 1;
  }
  int finalize_rc = sqlite3_finalize(stmt);
  if (bad) return *problem ? SQLITE_OK : SQLITE_NOMEM;
  if (rc != SQLITE_DONE) return finalize_rc ? finalize_rc : rc;
  if (finalize_rc != SQLITE_OK) return finalize_rc;
  if (!has_name || !has_model) {
    *problem = sqlite3_mprintf(NOT_A_STORE "it has no column %s", has_name ? "model" : "name");
    return *problem ? SQLITE_OK : SQLITE_NOMEM;
  }

  /* Rows are read by rowid (sqlite3_blob_open). With only the columns
  ** name and model, "rowid" fails to compile only in a WITHOUT ROWID table. */
  rc = sqlite3_prepare_v2(db, "SELECT rowid FROM main." BPSQL_STORE_TABLE, -1, &stmt, NULL);
  if (rc == SQLITE_NOMEM) return rc;
  sqlite3_finalize(stmt);
  if (rc != SQLITE_OK) {
    *problem = sqlite3_mprintf(NOT_A_STORE "it is a WITHOUT ROWID table");
    return *problem ? SQLITE_OK : SQLITE_NOMEM;
  }

  /* One model per name: a full UNIQUE index on name alone, comparing names
  ** as bp_models does (BINARY). */
  rc =
      query_one(db,
                "SELECT 1 FROM pragma_index_list('" BPSQL_STORE_TABLE
                "', 'main') AS i"
                " WHERE i.\"unique\" AND NOT i.partial"
                " AND (SELECT count(*) FROM pragma_index_xinfo(i.name, 'main') WHERE key) = 1"
                " AND EXISTS (SELECT 1 FROM pragma_index_xinfo(i.name, 'main') AS k WHERE k.key"
                " AND k.name = 'name' COLLATE NOCASE AND k.coll = 'BINARY' COLLATE NOCASE)",
                &found, NULL, NULL);
  if (rc != SQLITE_OK) return rc;
  if (!found) {
    *problem = sqlite3_mprintf(NOT_A_STORE
                               "its column name is not UNIQUE "
                               "(a PRIMARY KEY or UNIQUE constraint with BINARY collation)");
    return *problem ? SQLITE_OK : SQLITE_NOMEM;
  }
  *state = BP_STORE_VALID;
  return SQLITE_OK;
}

/* The store's state under the schema version given (inspected again only
** when that changed). */
int bpsql_store_check(bpsql_connection *c, int schema_version, int *state) {
  if (!c->store_known || c->store_schema_version != schema_version) {
    char *problem;
    int rc = store_inspect(c->db, state, &problem);
    if (rc != SQLITE_OK) return rc;
    sqlite3_free(c->store_problem);
    c->store_problem = problem;
    c->store_state = *state;
    c->store_schema_version = schema_version;
    c->store_known = 1;
  }
  *state = c->store_state;
  return SQLITE_OK;
}

/* The store's state now, with a snapshot for the look. */
int bpsql_store_check_now(bpsql_connection *c, int *state) {
  sqlite3_stmt *snapshot;
  int schema_version;
  int rc = bpsql_store_snapshot(c->db, &snapshot, &schema_version);
  if (rc != SQLITE_OK) return rc;
  rc = bpsql_store_check(c, schema_version, state);
  sqlite3_finalize(snapshot);
  return rc;
}

static char *empty_store_message(const char *name) {
  return name ? sqlite3_mprintf("no model named '%s' in bp_models (it is empty)", name)
              : sqlite3_mprintf(
                    "no default model: bp_models is empty; add one with "
                    "INSERT INTO bp_models(name, model) VALUES "
                    "('default', bp_model_load('file.model'))");
}

/* A stored row: where it is, what it is called and what its model is. */
typedef struct stored_row {
  sqlite3_int64 rowid;
  char *name;     /* its name as text, for messages */
  int model_type; /* SQLITE_BLOB for a value to look at */
  sqlite3_int64 length;
  uint8_t header[BP_VALUE_HEADER_BYTES];
  int header_ok; /* a model value's header */
} stored_row;

/* Finds the stored row for `name` (NULL: the default model: the one named
** 'default', else the only one) in a valid store. Sets *found, or *message
** saying there is no such model. Run inside a snapshot, so that the value
** read through the rowid is the row that was found even while other
** connections replace models. */
static int store_find(sqlite3 *db, const char *name, int *found, stored_row *row,
                      char **message, sqlite3_int64 *stored) {
  *found = 0;
  if (stored) *stored = -1; /* unknown */
  memset(row, 0, sizeof *row);
  sqlite3_stmt *stmt;
  int rc = sqlite3_prepare_v2(
      db,
      name ? "SELECT rowid, name, typeof(model) FROM main." BPSQL_STORE_TABLE
             " WHERE name = ?1 COLLATE BINARY"
           : "SELECT rowid, name, typeof(model) FROM main." BPSQL_STORE_TABLE
             " WHERE name = 'default' COLLATE BINARY"
             " UNION ALL SELECT rowid, name, typeof(model) FROM main." BPSQL_STORE_TABLE
             " WHERE NOT EXISTS (SELECT 1 FROM main." BPSQL_STORE_TABLE
             " WHERE name = 'default' COLLATE BINARY)"
             " AND (SELECT count(*) FROM main." BPSQL_STORE_TABLE ") = 1",
      -1, &stmt, NULL);
  if (rc != SQLITE_OK) return rc;
  if (name && (rc = sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC)) != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return rc;
  }
  rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    const char *text = (const char *)sqlite3_column_text(stmt, 1);
    const char *type = (const char *)sqlite3_column_text(stmt, 2);
    row->rowid = sqlite3_column_int64(stmt, 0);
    row->name = sqlite3_mprintf("%s", text ? text : "");
    row->model_type = type && strcmp(type, "blob") == 0      ? SQLITE_BLOB
                      : type && strcmp(type, "text") == 0    ? SQLITE_TEXT
                      : type && strcmp(type, "integer") == 0 ? SQLITE_INTEGER
                      : type && strcmp(type, "real") == 0    ? SQLITE_FLOAT
                                                             : SQLITE_NULL;
    if (!row->name || !type) {
      sqlite3_finalize(stmt);
      sqlite3_free(row->name);
      row->name = NULL;
      return SQLITE_NOMEM;
    }
    *found = 1;
    return sqlite3_finalize(stmt);
  }
  int finalize_rc = sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return finalize_rc ? finalize_rc : rc;
  if (finalize_rc != SQLITE_OK) return finalize_rc;
  if (name) {
    *message = sqlite3_mprintf("no model named '%s' in bp_models", name);
    return *message ? SQLITE_OK : SQLITE_NOMEM;
  }
  sqlite3_int64 rows = 0;
  rc = query_one(db, "SELECT count(*) FROM main." BPSQL_STORE_TABLE, found, NULL, &rows);
  *found = 0;
  if (rc != SQLITE_OK) return rc;
  if (stored) *stored = rows;
  *message = rows == 0 ? empty_store_message(NULL)
                       : sqlite3_mprintf(
                             "no default model: bp_models holds several models and "
                             "none is named 'default'; pass a model name");
  return *message ? SQLITE_OK : SQLITE_NOMEM;
}

/* Reads a stored model value: the header and length only or, when `value`
** is not NULL, all of it (to free with sqlite3_free). */
static int store_read(sqlite3 *db, stored_row *row, uint8_t **value) {
  sqlite3_blob *blob;
  int rc = sqlite3_blob_open(db, "main", BPSQL_STORE_TABLE, "model", row->rowid, 0, &blob);
  if (rc != SQLITE_OK) return rc;
  int size = sqlite3_blob_bytes(blob);
  row->length = size;
  if (!value) {
    bp_value_header header;
    bp_error err;
    row->header_ok = 0;
    if (size >= BP_VALUE_HEADER_BYTES &&
        (rc = sqlite3_blob_read(blob, row->header, BP_VALUE_HEADER_BYTES, 0)) == SQLITE_OK)
      row->header_ok =
          bp_value_read_header(row->header, BP_VALUE_HEADER_BYTES, &header, &err) == BP_OK;
  } else {
    *value = sqlite3_malloc64((sqlite3_uint64)size + 1);
    if (!*value)
      rc = SQLITE_NOMEM;
    else if ((rc = sqlite3_blob_read(blob, *value, size, 0)) != SQLITE_OK) {
      sqlite3_free(*value);
      *value = NULL;
    }
  }
  int close_rc = sqlite3_blob_close(blob);
  return rc != SQLITE_OK ? rc : close_rc;
}

/* Reports a resolution error, "function: text", where the caller wants it:
** on ctx for a function, else in *message for a table or the FTS5
** tokenizer, which report it their own way (out of memory is said by the
** code alone, with *message NULL). */
static int report(sqlite3_context *ctx, char **message, int code, const char *function,
                  const char *text) {
  if (ctx) return bpsql_result_errorf(ctx, code, "%s: %s", function, text);
  char *m = code == SQLITE_NOMEM ? NULL : sqlite3_mprintf("%s: %s", function, text);
  if (!m) code = SQLITE_NOMEM;
  if (message)
    *message = m;
  else
    sqlite3_free(m);
  return code;
}

/* Reports an SQLite error of the connection (its message, or out of memory). */
static int report_sqlite(bpsql_connection *c, sqlite3_context *ctx, char **message, int rc,
                         const char *function) {
  return report(ctx, message, rc, function,
                rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(c->db));
}

/* Reports what is wrong with a stored row's model. */
static int report_row(sqlite3_context *ctx, char **message, const char *function,
                      const stored_row *row, const char *problem) {
  char *text = problem ? sqlite3_mprintf("model '%s' in bp_models: %s", row->name, problem)
                       : sqlite3_mprintf("model '%s' in bp_models is %s, not a model value",
                                         row->name, bpsql_datatype_name(row->model_type));
  if (!text) return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
  int rc = report(ctx, message, SQLITE_ERROR, function, text);
  sqlite3_free(text);
  return rc;
}

/* Brings the entry *entry for `name` up to date with the stored row: reads
** the value's header and, unless it is the value this entry already
** resolved to, the whole value, which is verified and compiled (or found
** compiled). */
static int resolve_row(bpsql_connection *c, resolved **entry, const char *name, stored_row *row,
                       const char *function, sqlite3_context *ctx, char **message) {
  resolved *e = *entry;
  if (row->model_type != SQLITE_BLOB) return report_row(ctx, message, function, row, NULL);
  int rc = store_read(c->db, row, NULL);
  if (rc != SQLITE_OK) return report_sqlite(c, ctx, message, rc, function);
  if (!row->header_ok)
    return report_row(ctx, message, function, row, "not a BytePiece model value");
  if (e && e->length == row->length &&
      memcmp(e->header, row->header, BP_VALUE_HEADER_BYTES) == 0)
    return SQLITE_OK;
  uint8_t *value;
  rc = store_read(c->db, row, &value);
  if (rc != SQLITE_OK) return report_sqlite(c, ctx, message, rc, function);
  bp_error err;
  bp_model *compiled;
  int brc = bpsql_model_cache_compile(c->db, value, (size_t)row->length, &compiled, &err);
  if (brc == BP_OK) memcpy(row->header, value, BP_VALUE_HEADER_BYTES);
  sqlite3_free(value);
  if (brc == BP_NOMEM) return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
  if (brc == BP_INTERRUPT) return report(ctx, message, SQLITE_INTERRUPT, function, err.message);
  if (brc != BP_OK) return report_row(ctx, message, function, row, err.message);
  if (!e && !(e = new_entry(c, name, 0))) {
    bpsql_model_cache_release(compiled);
    return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
  }
  bpsql_model_cache_release(e->model);
  e->model = compiled;
  memcpy(e->header, row->header, BP_VALUE_HEADER_BYTES);
  e->length = row->length;
  *entry = e;
  return SQLITE_OK;
}

/* Brings the entry *entry for `name` (NULL: the default model) up to date
** with the built-in model `index`: compiled, or found compiled, unless the
** entry resolved to it already. */
static int resolve_builtin(bpsql_connection *c, resolved **entry, const char *name, int index,
                           const char *function, sqlite3_context *ctx, char **message) {
  resolved *e = *entry;
  if (e && e->builtin) return SQLITE_OK; /* a name's built-in model never changes */
  bp_error err;
  bp_model *compiled;
  uint8_t header[BP_VALUE_HEADER_BYTES];
  sqlite3_int64 length;
  int brc = bpsql_builtin_compile(c->db, index, &compiled, header, &length, &err);
  if (brc == BP_NOMEM) return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
  if (brc == BP_INTERRUPT) return report(ctx, message, SQLITE_INTERRUPT, function, err.message);
  if (brc != BP_OK) return report(ctx, message, SQLITE_CORRUPT, function, err.message);
  if (!e && !(e = new_entry(c, name, 0))) {
    bpsql_model_cache_release(compiled);
    return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
  }
  bpsql_model_cache_release(e->model);
  e->model = compiled;
  e->builtin = 1;
  memcpy(e->header, header, BP_VALUE_HEADER_BYTES);
  e->length = length;
  *entry = e;
  return SQLITE_OK;
}

/* Confirms every remembered name against the store (valid, or absent),
** forgetting those that are gone or hold another value, and the built-in
** models whose names the store now holds (the default: when it stores
** anything). */
static int connection_sweep(bpsql_connection *c, int state) {
  if (state != BP_STORE_VALID) {
    forget_names(c, state == BP_STORE_ABSENT);
    return SQLITE_OK;
  }
  for (int i = c->count - 1; i >= 0; i--) {
    resolved *e = &c->entries[i];
    if (e->is_value || e->serial == c->serial) continue;
    stored_row row;
    char *missing = NULL;
    sqlite3_int64 stored;
    int found, rc = store_find(c->db, e->name, &found, &row, &missing, &stored);
    sqlite3_free(missing);
    if (rc == SQLITE_OK && e->builtin) {
      sqlite3_free(row.name);
      if (!found && (e->name || stored == 0))
        e->serial = c->serial;
      else
        remove_entry(c, e);
      continue;
    }
    if (rc == SQLITE_OK && found && row.model_type == SQLITE_BLOB)
      rc = store_read(c->db, &row, NULL);
    sqlite3_free(row.name);
    if (rc != SQLITE_OK) return rc;
    if (found && row.model_type == SQLITE_BLOB && row.header_ok && row.length == e->length &&
        memcmp(row.header, e->header, BP_VALUE_HEADER_BYTES) == 0)
      e->serial = c->serial;
    else
      remove_entry(c, e);
  }
  return SQLITE_OK;
}

/* Resolves a model name (NULL: the default model) through the store. */
static int resolve_name(bpsql_connection *c, const char *name, const char *function,
                        sqlite3_context *ctx, char **message, bp_model **model) {
  resolved *e;
  if (sqlite3_txn_state(c->db, "main") != SQLITE_TXN_NONE) {
    connection_observe(c);
    if ((e = find_name(c, name)) && e->serial == c->serial) {
      *model = bp_model_retain(e->model);
      return SQLITE_OK;
    }
  }
  sqlite3_stmt *snapshot;
  int schema_version, state;
  int rc = bpsql_store_snapshot(c->db, &snapshot, &schema_version);
  if (rc != SQLITE_OK) return report_sqlite(c, ctx, message, rc, function);
  connection_observe(c);
  if ((e = find_name(c, name)) && e->serial == c->serial) {
    sqlite3_finalize(snapshot);
    *model = bp_model_retain(e->model);
    return SQLITE_OK;
  }
  rc = bpsql_store_check(c, schema_version, &state);
  if (rc == SQLITE_OK && c->swept != c->serial) {
    rc = connection_sweep(c, state);
    if (rc == SQLITE_OK) c->swept = c->serial;
  }
  if (rc != SQLITE_OK) {
    rc = report_sqlite(c, ctx, message, rc, function);
    sqlite3_finalize(snapshot);
    return rc;
  }
  if (state == BP_STORE_INVALID) {
    rc = report(ctx, message, SQLITE_ERROR, function, c->store_problem);
    sqlite3_finalize(snapshot);
    return rc;
  }
  if ((e = find_name(c, name)) && e->serial == c->serial) {
    sqlite3_finalize(snapshot);
    *model = bp_model_retain(e->model);
    return SQLITE_OK;
  }
  int found = 0, builtin = -1;
  char *missing = NULL;
  stored_row row = {0};
  sqlite3_int64 stored = 0;
  if (state == BP_STORE_ABSENT) {
    if (!(missing = empty_store_message(name))) rc = SQLITE_NOMEM;
  } else {
    rc = store_find(c->db, name, &found, &row, &missing, &stored);
  }
  /* Nothing stored under the name (or nothing at all, for the default). */
  if (rc == SQLITE_OK && !found && (name || stored == 0)) builtin = bpsql_builtin_find(name);
  if (rc != SQLITE_OK) {
    rc = report_sqlite(c, ctx, message, rc, function);
  } else if (builtin >= 0) {
    if ((rc = resolve_builtin(c, &e, name, builtin, function, ctx, message)) == SQLITE_OK) {
      // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): resolve_builtin returns SQLITE_OK only with e set
      e->serial = c->serial;
      *model = bp_model_retain(e->model);
    } else if ((e = find_name(c, name))) {
      remove_entry(c, e);
    }
  } else if (!found) {
    if (e) remove_entry(c, e);
    rc = report(ctx, message, SQLITE_ERROR, function, missing);
  } else if ((rc = resolve_row(c, &e, name, &row, function, ctx, message)) == SQLITE_OK) {
    // NOLINTNEXTLINE(clang-analyzer-core.NullDereference): resolve_row returns SQLITE_OK only with e set; its failures return report()'s code, never SQLITE_OK
    e->serial = c->serial;
    *model = bp_model_retain(e->model);
  } else if ((e = find_name(c, name))) {
    remove_entry(c, e); /* it no longer holds what the name is */
  }
  sqlite3_free(missing);
  sqlite3_free(row.name);
  sqlite3_finalize(snapshot);
  return rc;
}

int bpsql_resolve_model(bpsql_connection *c, sqlite3_value *argument, const char *function,
                        sqlite3_context *ctx, char **message, bp_model **model) {
  *model = NULL;
  if (message) *message = NULL;
  const char *name = NULL;
  if (argument) {
    int type = sqlite3_value_type(argument);
    if (type == SQLITE_BLOB) {
      const uint8_t *value = sqlite3_value_blob(argument);
      size_t len = (size_t)sqlite3_value_bytes(argument);
      bp_value_header header;
      bp_error err;
      if (bp_value_read_header(value, len, &header, &err) != BP_OK)
        return report(ctx, message, SQLITE_ERROR, function,
                      "the model argument is a BLOB but not a model value");
      /* A value this connection has verified before is known by its header
      ** and length; a new one is verified, or recognised byte for byte as
      ** one just built (bpsql_model_cache_compile). */
      resolved *e = find_value(c, value, (sqlite3_int64)len);
      if (!e) {
        bp_model *compiled;
        int brc = bpsql_model_cache_compile(c->db, value, len, &compiled, &err);
        if (brc == BP_NOMEM)
          return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
        if (brc != BP_OK)
          return report(ctx, message, bpsql_sqlite_code(err.code), function, err.message);
        if (!(e = new_entry(c, NULL, 1))) {
          bpsql_model_cache_release(compiled);
          return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
        }
        memcpy(e->header, value, BP_VALUE_HEADER_BYTES);
        e->length = (sqlite3_int64)len;
        e->model = compiled;
      }
      e->used = ++c->clock;
      *model = bp_model_retain(e->model);
      return SQLITE_OK;
    }
    if (type != SQLITE_TEXT)
      return report(ctx, message, SQLITE_MISMATCH, function,
                    "the model argument must be a model name (TEXT) or a "
                    "model value (BLOB)");
    name = (const char *)sqlite3_value_text(argument);
    if (!name) return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
  }
  return resolve_name(c, name, function, ctx, message, model);
}

int bpsql_resolve_model_name(bpsql_connection *c, const char *name, const char *function,
                             char **message, bp_model **model) {
  *model = NULL;
  *message = NULL;
  return resolve_name(c, name, function, NULL, message, model);
}

unsigned bpsql_connection_serial(const bpsql_connection *c) { return c->serial; }

int bpsql_default_model_name(bpsql_connection *c, char **name) {
  *name = NULL;
  sqlite3_stmt *snapshot;
  int schema_version, state;
  int rc = bpsql_store_snapshot(c->db, &snapshot, &schema_version);
  if (rc != SQLITE_OK) return rc;
  rc = bpsql_store_check(c, schema_version, &state);
  if (rc == SQLITE_OK && state == BP_STORE_ABSENT) {
    if (!(*name = sqlite3_mprintf("%s", BPSQL_BUILTIN_DEFAULT))) rc = SQLITE_NOMEM;
  } else if (rc == SQLITE_OK && state == BP_STORE_VALID) {
    stored_row row;
    char *missing = NULL;
    sqlite3_int64 stored;
    int found;
    rc = store_find(c->db, NULL, &found, &row, &missing, &stored);
    sqlite3_free(missing);
    if (rc == SQLITE_OK && found)
      *name = row.name; /* taken over */
    else
      sqlite3_free(row.name);
    if (rc == SQLITE_OK && !found && stored == 0 &&
        !(*name = sqlite3_mprintf("%s", BPSQL_BUILTIN_DEFAULT)))
      rc = SQLITE_NOMEM;
  }
  sqlite3_finalize(snapshot);
  return rc;
}
