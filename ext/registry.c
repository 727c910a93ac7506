/*
** registry.c: the persistent model registry and model resolution.
**
**     INSERT INTO bp_models(name, model) VALUES ('zh', bp_model_load('m.zip'));
**     SELECT name, vocab_size FROM bp_models;
**     DELETE FROM bp_models WHERE name = 'zh';
**
** bp_models is an eponymous virtual table, so it exists as soon as the
** extension is loaded and adds nothing to the schema. Its rows live in an
** ordinary table, main.bp_model_store(name, model), created by the first
** INSERT; so models persist in the database file and travel with it.
**
** A database may come from anywhere, so the store is trusted only after a
** look at its schema (store_check): a rowid table with exactly the columns
** name (TEXT affinity) and model, and a UNIQUE index on name alone with
** BINARY collation. Anything else is refused on every path, with the same
** message. The verdict is kept until the schema version changes.
**
** A model value (BLOB) carries the SHA-256 of its payload in its 48-byte
** header. Compiled models are shared by all connections of the process,
** keyed by that header, and freed when the last connection lets go (and
** the last statement using one ends: statements hold references of their
** own). Before a connection takes a shared model for a value it meets for
** the first time, it checks the value's digest (bp_value_verify), so that
** a forged header never lends a value someone else's model.
**
** Each connection remembers which compiled model each name resolved to,
** with the header and length of the stored value. The memory is trusted
** while the database's data version (changed by every commit, by this
** connection or another) and this connection's own bp_models writes are
** unchanged; when either changes, every remembered name is confirmed
** against the store once (a header read), and a name that is gone or holds
** another value is forgotten, its model released. So a change takes effect
** by the next statement, and deleted or replaced models do not stay in
** memory. The few most recent model values passed as arguments are also
** remembered (MAX_VALUE_ENTRIES).
*/
#include "binding.h"

#include <pthread.h>
#include <string.h>

SQLITE_EXTENSION_INIT3

#define STORE_TABLE "bp_model_store"
#define NOT_A_STORE "main." STORE_TABLE " is not a model store: "
#define MAX_VALUE_ENTRIES 4

/* ---- Compiled models shared by the process -------------------------------- */

typedef struct shared_model {
  uint8_t header[BP_VALUE_HEADER_BYTES]; /* of the value it was compiled from */
  bp_model *model;
  int users;
  struct shared_model *next;
} shared_model;

static shared_model *shared_models;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static long compilations; /* for bp_debug(); under shared_lock */

void bp_registry_statistics(long *compiled, int *shared) {
  pthread_mutex_lock(&shared_lock);
  *compiled = compilations;
  *shared = 0;
  for (shared_model *s = shared_models; s; s = s->next) (*shared)++;
  pthread_mutex_unlock(&shared_lock);
}

/* A compiled model of a value with this header, with one more user, or
** NULL. The whole header is the key: values with the same payload digest
** but another format or piece count are other values. */
static bp_model *shared_acquire(const uint8_t header[BP_VALUE_HEADER_BYTES]) {
  bp_model *found = NULL;
  pthread_mutex_lock(&shared_lock);
  for (shared_model *s = shared_models; s; s = s->next)
    if (memcmp(s->header, header, BP_VALUE_HEADER_BYTES) == 0) {
      s->users++;
      found = s->model;
      break;
    }
  pthread_mutex_unlock(&shared_lock);
  return found;
}

/* Shares a freshly compiled model (taking over its reference). If another
** connection shared the same model meanwhile, that one is used and `model`
** released. Returns the shared model, or NULL when out of memory. */
static bp_model *shared_publish(const uint8_t header[BP_VALUE_HEADER_BYTES],
                                bp_model *model) {
  bp_model *existing = shared_acquire(header);
  if (existing) {
    bp_model_release(model);
    return existing;
  }
  shared_model *s = sqlite3_malloc64(sizeof *s);
  if (!s) {
    bp_model_release(model);
    return NULL;
  }
  memcpy(s->header, header, BP_VALUE_HEADER_BYTES);
  s->model = model;
  s->users = 1;
  pthread_mutex_lock(&shared_lock);
  s->next = shared_models;
  shared_models = s;
  pthread_mutex_unlock(&shared_lock);
  return model;
}

static void shared_release(bp_model *model) {
  if (!model) return;
  shared_model *gone = NULL;
  pthread_mutex_lock(&shared_lock);
  for (shared_model **link = &shared_models; *link; link = &(*link)->next)
    if ((*link)->model == model) {
      if (--(*link)->users == 0) {
        gone = *link;
        *link = gone->next;
      }
      break;
    }
  pthread_mutex_unlock(&shared_lock);
  if (gone) {
    bp_model_release(gone->model);
    sqlite3_free(gone);
  }
}

/* Compiles a whole model value, or finds it compiled already: then the
** value is verified first, since its header alone proves nothing.
** sqlite3_interrupt(db) stops a long compilation. */
static int compile_value(sqlite3 *db, const uint8_t *value, size_t len,
                         bp_model **model, bp_error *err) {
  *model = NULL;
  uint8_t digest[32];
  if (bp_value_digest(value, len, digest) != BP_OK)
    return bp_value_verify(value, len, err); /* its message */
  if ((*model = shared_acquire(value))) {
    if (bp_value_verify(value, len, err) == BP_OK) return BP_OK;
    shared_release(*model);
    *model = NULL;
    return err->code;
  }
  bp_model *fresh;
  bp_interrupt interrupt = {bp_sql_interrupted, db}; /* a long compilation stops */
  int rc = bp_model_deserialize(value, len, &interrupt, &fresh, err);
  if (rc != BP_OK) return rc;
  pthread_mutex_lock(&shared_lock);
  compilations++;
  pthread_mutex_unlock(&shared_lock);
  if (!(*model = shared_publish(value, fresh))) {
    err->code = BP_NOMEM;
    return BP_NOMEM;
  }
  return BP_OK;
}

/* ---- Per-connection resolution --------------------------------------------- */

typedef struct resolved {
  char *name;        /* a model name; NULL for the default model or a value */
  int is_value;      /* resolved from a model value given as argument */
  uint8_t header[BP_VALUE_HEADER_BYTES]; /* of the value resolved to */
  sqlite3_int64 length;                  /* and its length */
  bp_model *model;   /* shared */
  unsigned serial;   /* the connection's serial when last confirmed */
  sqlite3_uint64 used;
} resolved;

enum { STORE_ABSENT, STORE_VALID, STORE_INVALID };

struct bp_connection {
  sqlite3 *db;
  int references;           /* one per registration holding it, and init's */
  /* What the remembered resolutions were confirmed against. */
  int observed;
  unsigned data_version;
  unsigned writes;          /* bumped by every bp_models write and rollback */
  unsigned observed_writes;
  unsigned serial;          /* bumped whenever the two above change */
  unsigned swept;           /* the serial every name was last confirmed at */
  /* The store's verdict, for one schema version. */
  int store_known;
  int store_schema_version;
  int store_state;
  char *store_problem;      /* why it is not a store (STORE_INVALID) */
  int updating;             /* inside a bp_models write */
  sqlite3_uint64 clock;
  resolved *entries;
  int count, capacity;
};

bp_connection *bp_connection_new(sqlite3 *db) {
  bp_connection *c = sqlite3_malloc64(sizeof *c);
  if (!c) return NULL;
  memset(c, 0, sizeof *c);
  c->db = db;
  c->references = 1;
  return c;
}

bp_connection *bp_connection_retain(bp_connection *c) {
  c->references++;
  return c;
}

static void entry_clear(resolved *e) {
  sqlite3_free(e->name);
  shared_release(e->model);
  memset(e, 0, sizeof *e);
}

void bp_connection_release(void *connection) {
  bp_connection *c = connection;
  if (!c || --c->references > 0) return;
  for (int i = 0; i < c->count; i++) entry_clear(&c->entries[i]);
  sqlite3_free(c->entries);
  sqlite3_free(c->store_problem);
  sqlite3_free(c);
}

sqlite3 *bp_connection_db(bp_connection *c) { return c->db; }

/* Notes whether bp_models may have changed since the last look, advancing
** the serial if so. The pager's data version is current only inside a read
** transaction, so this is called inside one. */
static void connection_observe(bp_connection *c) {
  unsigned version = 0;
  sqlite3_file_control(c->db, "main", SQLITE_FCNTL_DATA_VERSION, &version);
  if (!c->observed || version != c->data_version || c->writes != c->observed_writes) {
    c->observed = 1;
    c->data_version = version;
    c->observed_writes = c->writes;
    c->serial++;
  }
}

static void connection_note_write(bp_connection *c) { c->writes++; }

static resolved *find_name(bp_connection *c, const char *name) {
  for (int i = 0; i < c->count; i++) {
    resolved *e = &c->entries[i];
    if (!e->is_value && (name == NULL) == (e->name == NULL) &&
        (!name || strcmp(name, e->name) == 0))
      return e;
  }
  return NULL;
}

static resolved *find_value(bp_connection *c, const uint8_t *header,
                            sqlite3_int64 length) {
  for (int i = 0; i < c->count; i++) {
    resolved *e = &c->entries[i];
    if (e->is_value && e->length == length &&
        memcmp(e->header, header, BP_VALUE_HEADER_BYTES) == 0)
      return e;
  }
  return NULL;
}

static resolved *new_entry(bp_connection *c, const char *name, int is_value) {
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
static void remove_entry(bp_connection *c, resolved *e) {
  entry_clear(e);
  *e = c->entries[--c->count];
}

/* Forgets what a name (and the default model, which may be the same row)
** resolved to, releasing the compiled models. */
static void forget_name(bp_connection *c, const char *name) {
  for (int i = c->count - 1; i >= 0; i--) {
    resolved *e = &c->entries[i];
    if (!e->is_value && (!e->name || (name && strcmp(e->name, name) == 0)))
      remove_entry(c, e);
  }
}

static void forget_names(bp_connection *c) {
  for (int i = c->count - 1; i >= 0; i--)
    if (!c->entries[i].is_value) remove_entry(c, &c->entries[i]);
}

/* ---- The store ------------------------------------------------------------- */

/* Opens a read transaction on main, unless one is open, for the time of a
** look at the store, and reads the schema version: a PRAGMA stepped to its
** row holds its transaction until it is finalized. */
static int snapshot_open(sqlite3 *db, sqlite3_stmt **snapshot, int *schema_version) {
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

/* Looks at main.bp_model_store's schema: *state is STORE_ABSENT,
** STORE_VALID or STORE_INVALID with *problem saying why. */
static int store_inspect(sqlite3 *db, int *state, char **problem) {
  *problem = NULL;
  int found;
  char *type = NULL;
  sqlite3_int64 rootpage = 0;
  /* Names are case-insensitive: BP_Model_Store is the store too. */
  int rc = query_one(db,
      "SELECT type FROM main.sqlite_schema WHERE name = '" STORE_TABLE "' COLLATE NOCASE"
      " AND type IN ('table', 'view', 'index')", &found, &type, NULL);
  if (rc != SQLITE_OK) return rc;
  if (!found) {
    *state = STORE_ABSENT;
    return SQLITE_OK;
  }
  *state = STORE_INVALID;
  if (strcmp(type, "table") != 0) {
    *problem = sqlite3_mprintf(NOT_A_STORE "it is %s %s",
                               strcmp(type, "index") ? "a" : "an", type);
    sqlite3_free(type);
    return *problem ? SQLITE_OK : SQLITE_NOMEM;
  }
  sqlite3_free(type);
  rc = query_one(db, "SELECT rootpage FROM main.sqlite_schema WHERE type = 'table'"
                 " AND name = '" STORE_TABLE "' COLLATE NOCASE", &found, NULL, &rootpage);
  if (rc != SQLITE_OK) return rc;
  if (rootpage == 0) {
    *problem = sqlite3_mprintf(NOT_A_STORE "it is a virtual table");
    return *problem ? SQLITE_OK : SQLITE_NOMEM;
  }

  /* Exactly the columns name and model, neither generated. */
  sqlite3_stmt *stmt;
  rc = sqlite3_prepare_v2(db,
      "SELECT name, type, hidden FROM pragma_table_xinfo('" STORE_TABLE "', 'main')",
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
      *problem = sqlite3_mprintf(NOT_A_STORE "it has a column %s besides name and model",
                                 column);
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
    *problem = sqlite3_mprintf(NOT_A_STORE "it has no column %s",
                               has_name ? "model" : "name");
    return *problem ? SQLITE_OK : SQLITE_NOMEM;
  }

  /* Rows are read by rowid (sqlite3_blob_open). With only the columns
  ** name and model, "rowid" fails to compile only in a WITHOUT ROWID table. */
  rc = sqlite3_prepare_v2(db, "SELECT rowid FROM main." STORE_TABLE, -1, &stmt, NULL);
  if (rc == SQLITE_NOMEM) return rc;
  sqlite3_finalize(stmt);
  if (rc != SQLITE_OK) {
    *problem = sqlite3_mprintf(NOT_A_STORE "it is a WITHOUT ROWID table");
    return *problem ? SQLITE_OK : SQLITE_NOMEM;
  }

  /* One model per name: a full UNIQUE index on name alone, comparing names
  ** as bp_models does (BINARY). */
  rc = query_one(db,
      "SELECT 1 FROM pragma_index_list('" STORE_TABLE "', 'main') AS i"
      " WHERE i.\"unique\" AND NOT i.partial"
      " AND (SELECT count(*) FROM pragma_index_xinfo(i.name, 'main') WHERE key) = 1"
      " AND EXISTS (SELECT 1 FROM pragma_index_xinfo(i.name, 'main') AS k WHERE k.key"
      " AND k.name = 'name' COLLATE NOCASE AND k.coll = 'BINARY' COLLATE NOCASE)",
      &found, NULL, NULL);
  if (rc != SQLITE_OK) return rc;
  if (!found) {
    *problem = sqlite3_mprintf(NOT_A_STORE "its column name is not UNIQUE "
                               "(a PRIMARY KEY or UNIQUE constraint with BINARY collation)");
    return *problem ? SQLITE_OK : SQLITE_NOMEM;
  }
  *state = STORE_VALID;
  return SQLITE_OK;
}

/* The store's state under the schema version given (inspected again only
** when that changed). */
static int store_check(bp_connection *c, int schema_version, int *state) {
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
static int store_check_now(bp_connection *c, int *state) {
  sqlite3_stmt *snapshot;
  int schema_version;
  int rc = snapshot_open(c->db, &snapshot, &schema_version);
  if (rc != SQLITE_OK) return rc;
  rc = store_check(c, schema_version, state);
  sqlite3_finalize(snapshot);
  return rc;
}

static char *empty_store_message(const char *name) {
  return name ? sqlite3_mprintf("no model named '%s' in bp_models (it is empty)", name)
              : sqlite3_mprintf("no default model: bp_models is empty; add one with "
                                "INSERT INTO bp_models(name, model) VALUES "
                                "('default', bp_model_load('file.model'))");
}

/* A stored row: where it is, what it is called and what its model is. */
typedef struct stored_row {
  sqlite3_int64 rowid;
  char *name;        /* its name as text, for messages */
  int model_type;    /* SQLITE_BLOB for a value to look at */
  sqlite3_int64 length;
  uint8_t header[BP_VALUE_HEADER_BYTES];
  int header_ok;     /* a model value's header */
} stored_row;

/* Finds the stored row for `name` (NULL: the default model: the one named
** 'default', else the only one) in a valid store. Sets *found, or *message
** saying there is no such model. Run inside a snapshot, so that the value
** read through the rowid is the row that was found even while other
** connections replace models. */
static int store_find(sqlite3 *db, const char *name, int *found, stored_row *row,
                      char **message) {
  *found = 0;
  memset(row, 0, sizeof *row);
  sqlite3_stmt *stmt;
  int rc = sqlite3_prepare_v2(db, name
      ? "SELECT rowid, name, typeof(model) FROM main." STORE_TABLE
        " WHERE name = ?1 COLLATE BINARY"
      : "SELECT rowid, name, typeof(model) FROM main." STORE_TABLE
        " WHERE name = 'default' COLLATE BINARY"
        " UNION ALL SELECT rowid, name, typeof(model) FROM main." STORE_TABLE
        " WHERE NOT EXISTS (SELECT 1 FROM main." STORE_TABLE
        " WHERE name = 'default' COLLATE BINARY)"
        " AND (SELECT count(*) FROM main." STORE_TABLE ") = 1",
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
    row->model_type = type && strcmp(type, "blob") == 0 ? SQLITE_BLOB
                      : type && strcmp(type, "text") == 0 ? SQLITE_TEXT
                      : type && strcmp(type, "integer") == 0 ? SQLITE_INTEGER
                      : type && strcmp(type, "real") == 0 ? SQLITE_FLOAT
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
  rc = query_one(db, "SELECT count(*) FROM main." STORE_TABLE, found, NULL, &rows);
  *found = 0;
  if (rc != SQLITE_OK) return rc;
  *message = rows == 0
      ? empty_store_message(NULL)
      : sqlite3_mprintf("no default model: bp_models holds several models and "
                        "none is named 'default'; pass a model name");
  return *message ? SQLITE_OK : SQLITE_NOMEM;
}

/* Reads a stored model value: the header and length only or, when `value`
** is not NULL, all of it (to free with sqlite3_free). */
static int store_read(sqlite3 *db, stored_row *row, uint8_t **value) {
  sqlite3_blob *blob;
  int rc = sqlite3_blob_open(db, "main", STORE_TABLE, "model", row->rowid, 0, &blob);
  if (rc != SQLITE_OK) return rc;
  int size = sqlite3_blob_bytes(blob);
  row->length = size;
  if (!value) {
    uint8_t digest[32];
    row->header_ok = 0;
    if (size >= BP_VALUE_HEADER_BYTES &&
        (rc = sqlite3_blob_read(blob, row->header, BP_VALUE_HEADER_BYTES, 0)) == SQLITE_OK)
      row->header_ok = bp_value_digest(row->header, BP_VALUE_HEADER_BYTES, digest) == BP_OK;
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
static int report(sqlite3_context *ctx, char **message, int code,
                  const char *function, const char *text) {
  if (ctx) return bp_result_errorf(ctx, code, "%s: %s", function, text);
  char *m = code == SQLITE_NOMEM ? NULL : sqlite3_mprintf("%s: %s", function, text);
  if (!m) code = SQLITE_NOMEM;
  if (message) *message = m;
  else sqlite3_free(m);
  return code;
}

/* Reports an SQLite error of the connection (its message, or out of memory). */
static int report_sqlite(bp_connection *c, sqlite3_context *ctx, char **message,
                         int rc, const char *function) {
  return report(ctx, message, rc, function,
                rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(c->db));
}

/* Reports what is wrong with a stored row's model. */
static int report_row(sqlite3_context *ctx, char **message, const char *function,
                      const stored_row *row, const char *problem) {
  char *text = problem
      ? sqlite3_mprintf("model '%s' in bp_models: %s", row->name, problem)
      : sqlite3_mprintf("model '%s' in bp_models is %s, not a model value", row->name,
                        bp_datatype_name(row->model_type));
  if (!text) return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
  int rc = report(ctx, message, SQLITE_ERROR, function, text);
  sqlite3_free(text);
  return rc;
}

/* Brings the entry *entry for `name` up to date with the stored row: reads
** the value's header and, unless it is the value this entry already
** resolved to, the whole value, which is verified and compiled (or found
** compiled). */
static int resolve_row(bp_connection *c, resolved **entry, const char *name,
                       stored_row *row, const char *function,
                       sqlite3_context *ctx, char **message) {
  resolved *e = *entry;
  if (row->model_type != SQLITE_BLOB)
    return report_row(ctx, message, function, row, NULL);
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
  int brc = compile_value(c->db, value, (size_t)row->length, &compiled, &err);
  if (brc == BP_OK) memcpy(row->header, value, BP_VALUE_HEADER_BYTES);
  sqlite3_free(value);
  if (brc == BP_NOMEM) return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
  if (brc == BP_INTERRUPT) return report(ctx, message, SQLITE_INTERRUPT, function, err.message);
  if (brc != BP_OK) return report_row(ctx, message, function, row, err.message);
  if (!e && !(e = new_entry(c, name, 0))) {
    shared_release(compiled);
    return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
  }
  shared_release(e->model);
  e->model = compiled;
  memcpy(e->header, row->header, BP_VALUE_HEADER_BYTES);
  e->length = row->length;
  *entry = e;
  return SQLITE_OK;
}

/* Confirms every remembered name against the store (valid, or absent),
** forgetting those that are gone or hold another value. */
static int connection_sweep(bp_connection *c, int state) {
  if (state != STORE_VALID) {
    forget_names(c);
    return SQLITE_OK;
  }
  for (int i = c->count - 1; i >= 0; i--) {
    resolved *e = &c->entries[i];
    if (e->is_value || e->serial == c->serial) continue;
    stored_row row;
    char *missing = NULL;
    int found, rc = store_find(c->db, e->name, &found, &row, &missing);
    sqlite3_free(missing);
    if (rc == SQLITE_OK && found && row.model_type == SQLITE_BLOB)
      rc = store_read(c->db, &row, NULL);
    sqlite3_free(row.name);
    if (rc != SQLITE_OK) return rc;
    if (found && row.model_type == SQLITE_BLOB && row.header_ok &&
        row.length == e->length &&
        memcmp(row.header, e->header, BP_VALUE_HEADER_BYTES) == 0)
      e->serial = c->serial;
    else
      remove_entry(c, e);
  }
  return SQLITE_OK;
}

/* Resolves a model name (NULL: the default model) through the store. */
static int resolve_name(bp_connection *c, const char *name, const char *function,
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
  int rc = snapshot_open(c->db, &snapshot, &schema_version);
  if (rc != SQLITE_OK) return report_sqlite(c, ctx, message, rc, function);
  connection_observe(c);
  if ((e = find_name(c, name)) && e->serial == c->serial) {
    sqlite3_finalize(snapshot);
    *model = bp_model_retain(e->model);
    return SQLITE_OK;
  }
  rc = store_check(c, schema_version, &state);
  if (rc == SQLITE_OK && c->swept != c->serial) {
    rc = connection_sweep(c, state);
    if (rc == SQLITE_OK) c->swept = c->serial;
  }
  if (rc != SQLITE_OK) {
    rc = report_sqlite(c, ctx, message, rc, function);
    sqlite3_finalize(snapshot);
    return rc;
  }
  if (state == STORE_INVALID) {
    rc = report(ctx, message, SQLITE_ERROR, function, c->store_problem);
    sqlite3_finalize(snapshot);
    return rc;
  }
  if ((e = find_name(c, name)) && e->serial == c->serial) {
    sqlite3_finalize(snapshot);
    *model = bp_model_retain(e->model);
    return SQLITE_OK;
  }
  int found = 0;
  char *missing = NULL;
  stored_row row = {0};
  if (state == STORE_ABSENT) {
    if (!(missing = empty_store_message(name))) rc = SQLITE_NOMEM;
  } else {
    rc = store_find(c->db, name, &found, &row, &missing);
  }
  if (rc != SQLITE_OK) {
    rc = report_sqlite(c, ctx, message, rc, function);
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

int bp_resolve_model(bp_connection *c, sqlite3_value *argument,
                     const char *function, sqlite3_context *ctx,
                     char **message, bp_model **model) {
  *model = NULL;
  if (message) *message = NULL;
  const char *name = NULL;
  if (argument) {
    int type = sqlite3_value_type(argument);
    if (type == SQLITE_BLOB) {
      const uint8_t *value = sqlite3_value_blob(argument);
      size_t len = (size_t)sqlite3_value_bytes(argument);
      uint8_t digest[32];
      if (bp_value_digest(value, len, digest) != BP_OK)
        return report(ctx, message, SQLITE_ERROR, function,
                      "the model argument is a BLOB but not a model value");
      /* A value this connection has verified before is known by its header
      ** and length; a new one is verified (compile_value). */
      resolved *e = find_value(c, value, (sqlite3_int64)len);
      if (!e) {
        bp_error err;
        bp_model *compiled;
        int brc = compile_value(c->db, value, len, &compiled, &err);
        if (brc == BP_NOMEM)
          return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
        if (brc != BP_OK)
          return report(ctx, message, bp_sqlite_code(err.code), function,
                        err.message);
        if (!(e = new_entry(c, NULL, 1))) {
          shared_release(compiled);
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

int bp_resolve_model_name(bp_connection *c, const char *name, const char *function,
                          char **message, bp_model **model) {
  *model = NULL;
  *message = NULL;
  return resolve_name(c, name, function, NULL, message, model);
}

/* ---- The bp_models virtual table ------------------------------------------ */

typedef struct models_table {
  sqlite3_vtab base;
  sqlite3 *db;
  bp_connection *connection;
} models_table;

typedef struct models_cursor {
  sqlite3_vtab_cursor base;
  sqlite3_stmt *stmt; /* NULL when the store does not exist */
  int eof;
} models_cursor;

enum { MODELS_NAME, MODELS_MODEL, MODELS_VOCAB_SIZE };

static int models_connect(sqlite3 *db, void *aux, int argc,
                          const char *const *argv, sqlite3_vtab **vtab,
                          char **error) {
  (void)argc; (void)argv; (void)error;
  int rc = sqlite3_declare_vtab(db,
      "CREATE TABLE x(name TEXT, model BLOB, vocab_size INTEGER)");
  /* Not from triggers or views in a database file: a database must not
  ** change models when it is merely read, and a trigger on the store that
  ** writes bp_models would recurse. */
  if (rc == SQLITE_OK) rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  /* xUpdate honours OR IGNORE, FAIL and ROLLBACK by returning
  ** SQLITE_CONSTRAINT before changing anything. */
  if (rc == SQLITE_OK) rc = sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
  if (rc != SQLITE_OK) return rc;
  models_table *t = sqlite3_malloc64(sizeof *t);
  if (!t) return SQLITE_NOMEM;
  memset(t, 0, sizeof *t);
  t->db = db;
  t->connection = aux;
  *vtab = &t->base;
  return SQLITE_OK;
}

static int models_disconnect(sqlite3_vtab *vtab) {
  sqlite3_free(vtab);
  return SQLITE_OK;
}

/* Takes over only what the store evaluates exactly as SQLite would: name
** equality and ascending order by name, both BINARY (the store is queried
** with COLLATE BINARY whatever its column's collation). A constraint with
** another collation (name = 'B' COLLATE NOCASE) is left to SQLite; an
** ORDER BY with another collation than the column's (BINARY) never reaches
** xBestIndex. */
static int models_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  (void)vtab;
  info->idxNum = 0;
  info->estimatedCost = 100;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *k = &info->aConstraint[i];
    if (k->usable && k->iColumn == MODELS_NAME && k->op == SQLITE_INDEX_CONSTRAINT_EQ &&
        sqlite3_stricmp(sqlite3_vtab_collation(info, i), "BINARY") == 0) {
      info->idxNum = 1;
      info->aConstraintUsage[i].argvIndex = 1;
      info->aConstraintUsage[i].omit = 1;
      info->estimatedCost = 1;
      info->estimatedRows = 1;
      info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
      break;
    }
  }
  if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == MODELS_NAME &&
      !info->aOrderBy[0].desc)
    info->orderByConsumed = 1;
  return SQLITE_OK;
}

static int models_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **cursor) {
  (void)vtab;
  models_cursor *c = sqlite3_malloc64(sizeof *c);
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof *c);
  *cursor = &c->base;
  return SQLITE_OK;
}

static int models_close(sqlite3_vtab_cursor *cursor) {
  models_cursor *c = (models_cursor *)cursor;
  sqlite3_finalize(c->stmt);
  sqlite3_free(c);
  return SQLITE_OK;
}

/* Reports an SQLite error met inside a bp_models method, prefixed once. */
static int models_sqlite_error(models_table *t, int rc) {
  if (rc == SQLITE_NOMEM) return rc;
  const char *text = sqlite3_errmsg(t->db);
  if (strncmp(text, "bp_models: ", 11) == 0) text += 11;
  return bp_vtab_error(&t->base, rc, "bp_models: %s", text);
}

static int models_next(sqlite3_vtab_cursor *cursor) {
  models_cursor *c = (models_cursor *)cursor;
  if (!c->stmt) {
    c->eof = 1;
    return SQLITE_OK;
  }
  int rc = sqlite3_step(c->stmt);
  if (rc == SQLITE_ROW) return SQLITE_OK;
  c->eof = 1;
  if (rc == SQLITE_DONE) return SQLITE_OK;
  return models_sqlite_error((models_table *)cursor->pVtab, rc);
}

static int models_filter(sqlite3_vtab_cursor *cursor, int idx_num,
                         const char *idx_str, int argc, sqlite3_value **argv) {
  (void)idx_str; (void)argc;
  models_cursor *c = (models_cursor *)cursor;
  models_table *t = (models_table *)cursor->pVtab;
  sqlite3_finalize(c->stmt);
  c->stmt = NULL;
  c->eof = 0;
  sqlite3_stmt *snapshot;
  int schema_version, state;
  int rc = snapshot_open(t->db, &snapshot, &schema_version);
  if (rc != SQLITE_OK) return models_sqlite_error(t, rc);
  rc = store_check(t->connection, schema_version, &state);
  if (rc == SQLITE_OK && state == STORE_INVALID) {
    sqlite3_finalize(snapshot);
    return bp_vtab_error(cursor->pVtab, SQLITE_ERROR, "bp_models: %s",
                         t->connection->store_problem);
  }
  if (rc == SQLITE_OK && state == STORE_VALID) {
    rc = sqlite3_prepare_v2(t->db, idx_num == 1
        ? "SELECT rowid, name, model FROM main." STORE_TABLE
          " WHERE name = ?1 COLLATE BINARY"
        : "SELECT rowid, name, model FROM main." STORE_TABLE
          " ORDER BY name COLLATE BINARY",
        -1, &c->stmt, NULL);
    if (rc == SQLITE_OK && idx_num == 1) rc = sqlite3_bind_value(c->stmt, 1, argv[0]);
  }
  if (rc != SQLITE_OK) {
    rc = models_sqlite_error(t, rc);
    sqlite3_finalize(snapshot);
    return rc;
  }
  /* The first step joins the snapshot's transaction, so the rows are those
  ** of the schema just checked. */
  rc = models_next(cursor);
  sqlite3_finalize(snapshot);
  return rc;
}

static int models_eof(sqlite3_vtab_cursor *cursor) {
  return ((models_cursor *)cursor)->eof;
}

static int models_column(sqlite3_vtab_cursor *cursor, sqlite3_context *ctx,
                         int column) {
  models_cursor *c = (models_cursor *)cursor;
  switch (column) {
    case MODELS_NAME:
      sqlite3_result_value(ctx, sqlite3_column_value(c->stmt, 1));
      break;
    case MODELS_MODEL:
      sqlite3_result_value(ctx, sqlite3_column_value(c->stmt, 2));
      break;
    case MODELS_VOCAB_SIZE: {
      if (sqlite3_vtab_nochange(ctx)) break; /* an UPDATE leaving it alone */
      /* What the value's header says (NULL when it has none); using the
      ** model verifies the rest. */
      if (sqlite3_column_type(c->stmt, 2) != SQLITE_BLOB) break;
      const uint8_t *value = sqlite3_column_blob(c->stmt, 2);
      int len = sqlite3_column_bytes(c->stmt, 2);
      uint8_t digest[32];
      if (value && bp_value_digest(value, (size_t)len, digest) == BP_OK) {
        uint32_t pieces = (uint32_t)value[12] | (uint32_t)value[13] << 8 |
                          (uint32_t)value[14] << 16 | (uint32_t)value[15] << 24;
        sqlite3_result_int64(ctx, (sqlite3_int64)pieces + BP_FIRST_PIECE_ID);
      }
      break;
    }
  }
  return SQLITE_OK;
}

static int models_rowid(sqlite3_vtab_cursor *cursor, sqlite3_int64 *rowid) {
  *rowid = sqlite3_column_int64(((models_cursor *)cursor)->stmt, 0);
  return SQLITE_OK;
}

/* Runs one statement on the store, binding ?1 the name and ?2 the model
** when given, and ?3 the rowid when given (any rowid, 0 included). */
static int run(sqlite3 *db, const char *sql, sqlite3_value *name, sqlite3_value *model,
               const sqlite3_int64 *rowid) {
  sqlite3_stmt *stmt;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
  if (rc != SQLITE_OK) return rc;
  if (name) rc = sqlite3_bind_value(stmt, 1, name);
  if (rc == SQLITE_OK && model) rc = sqlite3_bind_value(stmt, 2, model);
  if (rc == SQLITE_OK && rowid) rc = sqlite3_bind_int64(stmt, 3, *rowid);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
  int finalize_rc = sqlite3_finalize(stmt);
  return rc == SQLITE_DONE ? finalize_rc : (finalize_rc ? finalize_rc : rc);
}

/* The rowid of the row named `name` (*found 0 if none). */
static int store_rowid(sqlite3 *db, sqlite3_value *name, int *found, sqlite3_int64 *rowid) {
  sqlite3_stmt *stmt;
  *found = 0;
  int rc = sqlite3_prepare_v2(db, "SELECT rowid FROM main." STORE_TABLE
                              " WHERE name = ?1 COLLATE BINARY", -1, &stmt, NULL);
  if (rc != SQLITE_OK) return rc;
  if ((rc = sqlite3_bind_value(stmt, 1, name)) == SQLITE_OK) rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    *found = 1;
    *rowid = sqlite3_column_int64(stmt, 0);
  }
  int finalize_rc = sqlite3_finalize(stmt);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? finalize_rc
                                               : (finalize_rc ? finalize_rc : rc);
}

/* The name of the row at `rowid`, as text (NULL if none or not text). */
static int store_name(sqlite3 *db, sqlite3_int64 rowid, char **name) {
  sqlite3_stmt *stmt;
  *name = NULL;
  int rc = sqlite3_prepare_v2(db, "SELECT name FROM main." STORE_TABLE
                              " WHERE rowid = ?1 AND typeof(name) = 'text'", -1, &stmt, NULL);
  if (rc != SQLITE_OK) return rc;
  if ((rc = sqlite3_bind_int64(stmt, 1, rowid)) == SQLITE_OK) rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    const char *text = (const char *)sqlite3_column_text(stmt, 0);
    if (!text || !(*name = sqlite3_mprintf("%s", text))) rc = SQLITE_NOMEM;
  }
  int finalize_rc = sqlite3_finalize(stmt);
  if (rc == SQLITE_NOMEM) return rc;
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? finalize_rc
                                               : (finalize_rc ? finalize_rc : rc);
}

/* Checks a row about to be stored: a non-empty name, a read-only
** vocab_size, and a model value. */
static int models_check_row(models_table *t, sqlite3_value *name,
                            sqlite3_value *model, sqlite3_value *vocab_size) {
  sqlite3_vtab *vtab = &t->base;
  if (sqlite3_value_type(name) != SQLITE_TEXT || sqlite3_value_bytes(name) == 0)
    return bp_vtab_error(vtab, SQLITE_CONSTRAINT,
                         "bp_models: name must be a non-empty TEXT");
  if (sqlite3_value_type(vocab_size) != SQLITE_NULL &&
      sqlite3_value_nochange(vocab_size) == 0)
    return bp_vtab_error(vtab, SQLITE_CONSTRAINT,
                         "bp_models: vocab_size is read-only");
  if (sqlite3_value_type(model) != SQLITE_BLOB)
    return bp_vtab_error(vtab, SQLITE_CONSTRAINT,
                         "bp_models: model must be a model value from "
                         "bp_model_load() or bp_train(), not %s",
                         bp_type_name(model));
  uint8_t digest[32];
  if (bp_value_digest(sqlite3_value_blob(model), (size_t)sqlite3_value_bytes(model),
                      digest) != BP_OK)
    return bp_vtab_error(vtab, SQLITE_CONSTRAINT,
                         "bp_models: model must be a model value from "
                         "bp_model_load() or bp_train()");
  return SQLITE_OK;
}

/* Verifies and compiles (or finds compiled) a value about to be stored, so
** that its first use is instant. */
static int models_compile(models_table *t, sqlite3_value *model, bp_model **compiled) {
  bp_error err;
  int brc = compile_value(t->db, sqlite3_value_blob(model), (size_t)sqlite3_value_bytes(model),
                          compiled, &err);
  if (brc == BP_NOMEM) return SQLITE_NOMEM;
  if (brc != BP_OK)
    return bp_vtab_error(&t->base, bp_sqlite_code(err.code), "bp_models: %s",
                         err.message);
  return SQLITE_OK;
}

/* Remembers a model just stored under `name` (to be confirmed at the next
** use, as the transaction may still roll back). */
static void remember(bp_connection *c, const char *name, sqlite3_value *model,
                     bp_model *compiled) {
  resolved *e = find_name(c, name);
  if (!e && !(e = new_entry(c, name, 0))) {
    shared_release(compiled); /* only remembering failed: not an error */
    return;
  }
  shared_release(e->model);
  e->model = compiled;
  memcpy(e->header, sqlite3_value_blob(model), BP_VALUE_HEADER_BYTES);
  e->length = sqlite3_value_bytes(model);
  e->serial = 0;
}

/* What to do about a name stored already, by the statement's ON CONFLICT:
** OR IGNORE keeps the stored model (SQLITE_CONSTRAINT without a message
** makes SQLite skip the row); FAIL and ROLLBACK refuse. ABORT is also what
** SQLite passes for a plain INSERT or UPDATE, so it is decided by the
** caller. Returns SQLITE_OK to go on. */
static int name_conflict(models_table *t, sqlite3_value *name, int *mode) {
  *mode = sqlite3_vtab_on_conflict(t->db);
  if (*mode == SQLITE_IGNORE) return SQLITE_CONSTRAINT;
  if (*mode == SQLITE_FAIL || *mode == SQLITE_ROLLBACK)
    return bp_vtab_error(&t->base, SQLITE_CONSTRAINT,
                         "bp_models: a model named '%s' exists already",
                         (const char *)sqlite3_value_text(name));
  return SQLITE_OK;
}

static int models_insert(models_table *t, sqlite3_value *name, sqlite3_value *model,
                         int state, sqlite3_int64 *rowid) {
  bp_connection *c = t->connection;
  sqlite3 *db = t->db;
  int found = 0, mode, rc = SQLITE_OK;
  sqlite3_int64 existing = 0;
  if (state == STORE_VALID) rc = store_rowid(db, name, &found, &existing);
  if (rc != SQLITE_OK) return models_sqlite_error(t, rc);
  /* A plain INSERT (ABORT to a virtual table) replaces, as documented. */
  if (found && (rc = name_conflict(t, name, &mode)) != SQLITE_OK) return rc;
  bp_model *compiled;
  if ((rc = models_compile(t, model, &compiled)) != SQLITE_OK) return rc;
  if (state == STORE_ABSENT) {
    rc = run(db, "CREATE TABLE IF NOT EXISTS main." STORE_TABLE
             "(name TEXT PRIMARY KEY NOT NULL, model BLOB NOT NULL)", NULL, NULL, NULL);
    c->store_known = 0;
  }
  if (rc == SQLITE_OK && found) {
    rc = run(db, "UPDATE main." STORE_TABLE " SET model = ?2 WHERE rowid = ?3", NULL,
             model, &existing);
    *rowid = existing;
  } else if (rc == SQLITE_OK) {
    rc = run(db, "INSERT INTO main." STORE_TABLE "(name, model) VALUES (?1, ?2)", name,
             model, NULL);
    *rowid = sqlite3_last_insert_rowid(db);
  }
  if (rc != SQLITE_OK) {
    shared_release(compiled);
    return models_sqlite_error(t, rc);
  }
  remember(c, (const char *)sqlite3_value_text(name), model, compiled);
  return SQLITE_OK;
}

static int models_change(models_table *t, sqlite3_int64 old_rowid, sqlite3_value *new_rowid,
                         sqlite3_value *name, sqlite3_value *model) {
  bp_connection *c = t->connection;
  sqlite3 *db = t->db;
  if (sqlite3_value_type(new_rowid) != SQLITE_INTEGER ||
      sqlite3_value_int64(new_rowid) != old_rowid)
    return bp_vtab_error(&t->base, SQLITE_CONSTRAINT, "bp_models: rowid is read-only");
  char *old_name;
  int rc = store_name(db, old_rowid, &old_name);
  if (rc != SQLITE_OK) return models_sqlite_error(t, rc);
  const char *new_name = (const char *)sqlite3_value_text(name);
  int renamed = !old_name || !new_name || strcmp(old_name, new_name) != 0;
  int found = 0, mode = SQLITE_ABORT;
  sqlite3_int64 other = 0;
  if (renamed) rc = store_rowid(db, name, &found, &other);
  if (rc != SQLITE_OK) {
    sqlite3_free(old_name);
    return models_sqlite_error(t, rc);
  }
  found = found && other != old_rowid;
  /* Renaming onto another model would lose it: only OR REPLACE does that. */
  if (found && (rc = name_conflict(t, name, &mode)) != SQLITE_OK) {
    sqlite3_free(old_name);
    return rc;
  }
  if (found && mode != SQLITE_REPLACE) {
    sqlite3_free(old_name);
    return bp_vtab_error(&t->base, SQLITE_CONSTRAINT,
                         "bp_models: a model named '%s' exists already", new_name);
  }
  bp_model *compiled;
  if ((rc = models_compile(t, model, &compiled)) != SQLITE_OK) {
    sqlite3_free(old_name);
    return rc;
  }
  if (found)
    rc = run(db, "DELETE FROM main." STORE_TABLE " WHERE rowid = ?3", NULL, NULL, &other);
  if (rc == SQLITE_OK)
    rc = run(db, "UPDATE main." STORE_TABLE " SET name = ?1, model = ?2 WHERE rowid = ?3",
             name, model, &old_rowid);
  if (rc != SQLITE_OK) {
    sqlite3_free(old_name);
    shared_release(compiled);
    return models_sqlite_error(t, rc);
  }
  if (old_name) forget_name(c, old_name);
  sqlite3_free(old_name);
  remember(c, new_name, model, compiled);
  return SQLITE_OK;
}

static int models_delete(models_table *t, sqlite3_int64 rowid) {
  char *name;
  int rc = store_name(t->db, rowid, &name);
  if (rc == SQLITE_OK)
    rc = run(t->db, "DELETE FROM main." STORE_TABLE " WHERE rowid = ?3", NULL, NULL, &rowid);
  /* The model is released now, not at the next statement that resolves. */
  if (rc == SQLITE_OK) forget_name(t->connection, name);
  sqlite3_free(name);
  return rc == SQLITE_OK ? rc : models_sqlite_error(t, rc);
}

static int models_update(sqlite3_vtab *vtab, int argc, sqlite3_value **argv,
                         sqlite3_int64 *rowid) {
  models_table *t = (models_table *)vtab;
  bp_connection *c = t->connection;
  /* A backstop: DIRECTONLY keeps triggers on the store (TEMP ones too, in
  ** SQLite 3.40) from writing bp_models, but should a write of the store
  ** ever come round to bp_models again, it would never end. */
  if (c->updating)
    return bp_vtab_error(vtab, SQLITE_ERROR,
                         "bp_models: a write to bp_models cannot write bp_models "
                         "again (a trigger on " STORE_TABLE "?)");
  connection_note_write(c);
  int state, rc = store_check_now(c, &state);
  if (rc != SQLITE_OK) return models_sqlite_error(t, rc);
  if (state == STORE_INVALID)
    return bp_vtab_error(vtab, SQLITE_ERROR, "bp_models: %s", c->store_problem);
  if (argc == 1) {
    if (state != STORE_VALID) return SQLITE_OK;
    c->updating = 1;
    rc = models_delete(t, sqlite3_value_int64(argv[0]));
    c->updating = 0;
    return rc;
  }
  sqlite3_value *name = argv[2 + MODELS_NAME];
  sqlite3_value *model = argv[2 + MODELS_MODEL];
  if ((rc = models_check_row(t, name, model, argv[2 + MODELS_VOCAB_SIZE])) != SQLITE_OK)
    return rc;
  c->updating = 1;
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL)
    rc = models_insert(t, name, model, state, rowid);
  else if (state == STORE_VALID)
    rc = models_change(t, sqlite3_value_int64(argv[0]), argv[1], name, model);
  c->updating = 0;
  return rc;
}

/* Writes roll back with the transaction; what was resolved is confirmed
** again at the next use. */
static int models_rollback(sqlite3_vtab *vtab) {
  connection_note_write(((models_table *)vtab)->connection);
  return SQLITE_OK;
}

static int models_rollback_to(sqlite3_vtab *vtab, int savepoint) {
  (void)savepoint;
  return models_rollback(vtab);
}

static int models_transaction_noop(sqlite3_vtab *vtab) {
  (void)vtab;
  return SQLITE_OK;
}

static int models_savepoint_noop(sqlite3_vtab *vtab, int savepoint) {
  (void)vtab; (void)savepoint;
  return SQLITE_OK;
}

const sqlite3_module bp_models_module = {
    2,                       /* iVersion: savepoints */
    NULL,                    /* xCreate: NULL makes it eponymous only */
    models_connect,          /* xConnect */
    models_best_index,       /* xBestIndex */
    models_disconnect,       /* xDisconnect */
    NULL,                    /* xDestroy */
    models_open,             /* xOpen */
    models_close,            /* xClose */
    models_filter,           /* xFilter */
    models_next,             /* xNext */
    models_eof,              /* xEof */
    models_column,           /* xColumn */
    models_rowid,            /* xRowid */
    models_update,           /* xUpdate */
    models_transaction_noop, /* xBegin */
    models_transaction_noop, /* xSync */
    models_transaction_noop, /* xCommit */
    models_rollback,         /* xRollback */
    NULL,                    /* xFindFunction */
    NULL,                    /* xRename */
    models_savepoint_noop,   /* xSavepoint */
    models_savepoint_noop,   /* xRelease */
    models_rollback_to,      /* xRollbackTo */
    NULL,                    /* xShadowName */
};
