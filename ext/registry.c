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
** A model value (BLOB) carries the SHA-256 of its content in its header.
** Compiled models are shared by all connections of the process, keyed by
** that digest, and freed when the last connection lets go. Each connection
** remembers which compiled model each name resolved to; the memory is
** trusted while the database's data version (which changes on every commit,
** by this connection or another) and this connection's own bp_models writes
** are unchanged (so a change takes effect by the next statement). Otherwise a name is re-resolved by reading the 48-byte
** header of its stored value: if the digest is the same, nothing is
** compiled again.
*/
#include "binding.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>

SQLITE_EXTENSION_INIT3

#define STORE_TABLE "bp_model_store"
#define MAX_VALUE_ENTRIES 4

/* ---- Compiled models shared by the process -------------------------------- */

typedef struct shared_model {
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

/* A compiled model with this digest, with one more user, or NULL. */
static bp_model *shared_acquire(const uint8_t digest[32]) {
  bp_model *found = NULL;
  pthread_mutex_lock(&shared_lock);
  for (shared_model *s = shared_models; s; s = s->next)
    if (memcmp(bp_model_digest(s->model), digest, 32) == 0) {
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
static bp_model *shared_publish(bp_model *model) {
  bp_model *existing = shared_acquire(bp_model_digest(model));
  if (existing) {
    bp_model_release(model);
    return existing;
  }
  shared_model *s = sqlite3_malloc64(sizeof *s);
  if (!s) {
    bp_model_release(model);
    return NULL;
  }
  s->model = model;
  s->users = 1;
  pthread_mutex_lock(&shared_lock);
  s->next = shared_models;
  shared_models = s;
  pthread_mutex_unlock(&shared_lock);
  return model;
}

static void bp_shared_release(bp_model *model) {
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

/* ---- Per-connection resolution --------------------------------------------- */

typedef struct resolved {
  char *name;        /* a model name; NULL for the default model or a value */
  int is_value;      /* resolved from a model value given as argument */
  uint8_t digest[32];
  bp_model *model;   /* shared */
  unsigned checked;  /* the connection epoch when last confirmed */
  sqlite3_uint64 used;
} resolved;

struct bp_connection {
  sqlite3 *db;
  unsigned data_version;
  unsigned writes;        /* bumped by every bp_models write and rollback */
  unsigned seen_writes;
  unsigned epoch;         /* bumped when either of the above changes */
  sqlite3_uint64 clock;
  resolved *entries;
  int count, capacity;
};

bp_connection *bp_connection_new(sqlite3 *db) {
  bp_connection *c = sqlite3_malloc64(sizeof *c);
  if (!c) return NULL;
  memset(c, 0, sizeof *c);
  c->db = db;
  c->epoch = 1;
  return c;
}

static void entry_clear(resolved *e) {
  sqlite3_free(e->name);
  bp_shared_release(e->model);
  memset(e, 0, sizeof *e);
}

void bp_connection_free(void *connection) {
  bp_connection *c = connection;
  if (!c) return;
  for (int i = 0; i < c->count; i++) entry_clear(&c->entries[i]);
  sqlite3_free(c->entries);
  sqlite3_free(c);
}

/* Advances the epoch when anything may have changed bp_models. The pager's
** data version is current only inside a read transaction; a statement that
** reads no table has none, so then every name is confirmed again (a header
** read, not a recompilation). */
static void connection_refresh(bp_connection *c) {
  unsigned version = 0;
  if (sqlite3_txn_state(c->db, "main") == SQLITE_TXN_NONE) {
    c->epoch++;
    return;
  }
  sqlite3_file_control(c->db, "main", SQLITE_FCNTL_DATA_VERSION, &version);
  if (version != c->data_version || c->writes != c->seen_writes) {
    c->data_version = version;
    c->seen_writes = c->writes;
    c->epoch++;
  }
}

static void connection_note_write(bp_connection *c) { c->writes++; }

static resolved *find_entry(bp_connection *c, const char *name, int is_value,
                            const uint8_t *digest) {
  for (int i = 0; i < c->count; i++) {
    resolved *e = &c->entries[i];
    if (e->is_value != is_value) continue;
    if (is_value ? memcmp(e->digest, digest, 32) == 0
                 : (name == NULL) == (e->name == NULL) &&
                       (!name || strcmp(name, e->name) == 0))
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

static void remove_entry(bp_connection *c, resolved *e) {
  entry_clear(e);
  *e = c->entries[--c->count];
}

static int store_exists(sqlite3 *db, int *exists) {
  sqlite3_stmt *stmt;
  int rc = sqlite3_prepare_v2(db,
      "SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = '"
      STORE_TABLE "'", -1, &stmt, NULL);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(stmt);
  *exists = rc == SQLITE_ROW;
  rc = sqlite3_finalize(stmt);
  return rc;
}

static char *empty_store_message(const char *name) {
  return name ? sqlite3_mprintf("no model named '%s' in bp_models (it is empty)", name)
              : sqlite3_mprintf("no default model: bp_models is empty; add one with "
                                "INSERT INTO bp_models(name, model) VALUES "
                                "('default', bp_model_load('file.model'))");
}

/* Finds the stored row for `name` (NULL: the default model: the one named
** 'default', else the only one). On SQLITE_OK, *found is the statement that
** found it, left on its row: while it is open the connection keeps one read
** transaction, so the value read through the rowid is the row that was
** found even while other connections replace models. The caller finalizes
** it. When there is no such model, *found is NULL and *message says so. */
static int store_find(sqlite3 *db, const char *name, sqlite3_stmt **found,
                      sqlite3_int64 *rowid, char **message) {
  *found = NULL;
  *rowid = 0;
  int exists, rc = store_exists(db, &exists);
  if (rc != SQLITE_OK) return rc;
  if (!exists) {
    *message = empty_store_message(name);
    return *message ? SQLITE_OK : SQLITE_NOMEM;
  }
  sqlite3_stmt *stmt;
  rc = sqlite3_prepare_v2(db, name
      ? "SELECT rowid FROM main." STORE_TABLE " WHERE name = ?1"
      : "SELECT rowid FROM main." STORE_TABLE " WHERE name = 'default' "
        "UNION ALL SELECT rowid FROM main." STORE_TABLE
        " WHERE NOT EXISTS (SELECT 1 FROM main." STORE_TABLE " WHERE name = 'default')"
        " AND (SELECT count(*) FROM main." STORE_TABLE ") = 1",
      -1, &stmt, NULL);
  if (rc != SQLITE_OK) return rc;
  if (name) sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
  rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    *rowid = sqlite3_column_int64(stmt, 0);
    *found = stmt;
    return SQLITE_OK;
  }
  rc = sqlite3_finalize(stmt);
  if (rc != SQLITE_OK) return rc;
  if (name) {
    *message = sqlite3_mprintf("no model named '%s' in bp_models", name);
    return *message ? SQLITE_OK : SQLITE_NOMEM;
  }
  rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM main." STORE_TABLE, -1, &stmt, NULL);
  if (rc != SQLITE_OK) return rc;
  sqlite3_int64 rows = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
  rc = sqlite3_finalize(stmt);
  if (rc != SQLITE_OK) return rc;
  *message = rows == 0
      ? empty_store_message(NULL)
      : sqlite3_mprintf("no default model: bp_models holds several models and "
                        "none is named 'default'; pass a model name");
  return *message ? SQLITE_OK : SQLITE_NOMEM;
}

/* Reads a stored model value: the header only (into `header`) or, when
** `value` is not NULL, all of it (to free with sqlite3_free). */
static int store_read(sqlite3 *db, sqlite3_int64 rowid,
                      uint8_t header[BP_VALUE_HEADER_BYTES], uint8_t **value,
                      int *len) {
  sqlite3_blob *blob;
  int rc = sqlite3_blob_open(db, "main", STORE_TABLE, "model", rowid, 0, &blob);
  if (rc != SQLITE_OK) return rc;
  int size = sqlite3_blob_bytes(blob);
  *len = size;
  if (!value) {
    if (size >= BP_VALUE_HEADER_BYTES)
      rc = sqlite3_blob_read(blob, header, BP_VALUE_HEADER_BYTES, 0);
  } else {
    *value = sqlite3_malloc64((sqlite3_uint64)size + 1);
    if (!*value)
      rc = SQLITE_NOMEM;
    else if ((rc = sqlite3_blob_read(blob, *value, size, 0)) != SQLITE_OK) {
      sqlite3_free(*value);
      *value = NULL;
    }
  }
  sqlite3_blob_close(blob);
  return rc;
}

/* Compiles a model value, or finds it compiled already; sqlite3_interrupt(db)
** stops a long compilation. */
static int compile_value(sqlite3 *db, const uint8_t *value, size_t len,
                         const uint8_t digest[32], bp_model **model,
                         bp_error *err) {
  if ((*model = shared_acquire(digest))) return BP_OK;
  bp_model *fresh;
  bp_interrupt interrupt = {bp_sql_interrupted, db};
  int rc = bp_model_deserialize(value, len, &interrupt, &fresh, err);
  if (rc != BP_OK) return rc;
  pthread_mutex_lock(&shared_lock);
  compilations++;
  pthread_mutex_unlock(&shared_lock);
  if (!(*model = shared_publish(fresh))) {
    err->code = BP_NOMEM;
    return BP_NOMEM;
  }
  return BP_OK;
}

static int report(sqlite3_context *ctx, char **message, int code,
                  const char *function, const char *text) {
  char *m = sqlite3_mprintf("%s: %s", function, text);
  if (!m) code = SQLITE_NOMEM;
  if (ctx) {
    if (code == SQLITE_NOMEM) sqlite3_result_error_nomem(ctx);
    else sqlite3_result_error(ctx, m, -1);
    sqlite3_result_error_code(ctx, code);
    sqlite3_free(m);
  } else if (code == SQLITE_NOMEM || !message) {
    sqlite3_free(m); /* out of memory is said by the code alone */
    if (message) *message = NULL;
  } else {
    *message = m;
  }
  return code;
}

static int resolve_name(bp_connection *c, const char *name, const char *function,
                        sqlite3_context *ctx, char **message, bp_model **model);

sqlite3 *bp_connection_db(bp_connection *c) { return c->db; }

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
      resolved *e = find_entry(c, NULL, 1, digest);
      if (!e) {
        bp_error err;
        bp_model *compiled;
        if (compile_value(c->db, value, len, digest, &compiled, &err) != BP_OK)
          return report(ctx, message, bp_sqlite_code(err.code), function,
                        err.message);
        if (!(e = new_entry(c, NULL, 1))) {
          bp_shared_release(compiled);
          return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
        }
        memcpy(e->digest, digest, 32);
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

/* Brings the cache entry *e for `name` up to date with the stored row
** `rowid`: reads its header and, unless its model is compiled already, the
** whole value. */
static int resolve_row(bp_connection *c, resolved **entry, const char *name,
                       sqlite3_int64 rowid, const char *function,
                       sqlite3_context *ctx, char **message) {
  resolved *e = *entry;
  uint8_t header[BP_VALUE_HEADER_BYTES], digest[32];
  int len;
  int rc = store_read(c->db, rowid, header, NULL, &len);
  if (rc != SQLITE_OK)
    return report(ctx, message, rc, function, sqlite3_errmsg(c->db));
  if (len < BP_VALUE_HEADER_BYTES ||
      bp_value_digest(header, BP_VALUE_HEADER_BYTES, digest) != BP_OK)
    return report(ctx, message, SQLITE_CORRUPT, function,
                  "a stored model is not a valid model value");
  if (e && memcmp(e->digest, digest, 32) == 0) return SQLITE_OK;
  bp_model *compiled = shared_acquire(digest);
  if (!compiled) {
    uint8_t *value;
    rc = store_read(c->db, rowid, header, &value, &len);
    if (rc != SQLITE_OK)
      return report(ctx, message, rc, function, sqlite3_errmsg(c->db));
    bp_error err;
    int brc = compile_value(c->db, value, (size_t)len, digest, &compiled, &err);
    sqlite3_free(value);
    if (brc != BP_OK)
      return report(ctx, message, bp_sqlite_code(brc), function, err.message);
  }
  if (!e && !(e = new_entry(c, name, 0))) {
    bp_shared_release(compiled);
    return report(ctx, message, SQLITE_NOMEM, function, "out of memory");
  }
  bp_shared_release(e->model);
  e->model = compiled;
  memcpy(e->digest, digest, 32);
  *entry = e;
  return SQLITE_OK;
}

/* Resolves a model name (NULL: the default model) through the store. */
static int resolve_name(bp_connection *c, const char *name, const char *function,
                        sqlite3_context *ctx, char **message, bp_model **model) {
  connection_refresh(c);
  resolved *e = find_entry(c, name, 0, NULL);
  if (e && e->checked == c->epoch) {
    *model = bp_model_retain(e->model);
    return SQLITE_OK;
  }
  sqlite3_int64 rowid;
  sqlite3_stmt *found;
  char *missing = NULL;
  int rc = store_find(c->db, name, &found, &rowid, &missing);
  if (rc != SQLITE_OK)
    return report(ctx, message, rc, function, sqlite3_errmsg(c->db));
  if (!found) {
    if (e) remove_entry(c, e);
    rc = report(ctx, message, SQLITE_ERROR, function, missing);
    sqlite3_free(missing);
    return rc;
  }
  rc = resolve_row(c, &e, name, rowid, function, ctx, message);
  sqlite3_finalize(found);
  if (rc != SQLITE_OK) return rc;
  e->checked = c->epoch;
  *model = bp_model_retain(e->model);
  return SQLITE_OK;
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

static int models_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  (void)vtab;
  info->idxNum = 0;
  info->estimatedCost = 100;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *k = &info->aConstraint[i];
    if (k->usable && k->iColumn == MODELS_NAME && k->op == SQLITE_INDEX_CONSTRAINT_EQ) {
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

static int set_vtab_error(sqlite3_vtab *vtab, int rc, const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  sqlite3_free(vtab->zErrMsg);
  vtab->zErrMsg = sqlite3_vmprintf(format, ap);
  va_end(ap);
  return vtab->zErrMsg ? rc : SQLITE_NOMEM;
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
  models_table *t = (models_table *)cursor->pVtab;
  return set_vtab_error(cursor->pVtab, rc, "%s", sqlite3_errmsg(t->db));
}

static int models_filter(sqlite3_vtab_cursor *cursor, int idx_num,
                         const char *idx_str, int argc, sqlite3_value **argv) {
  (void)idx_str; (void)argc;
  models_cursor *c = (models_cursor *)cursor;
  models_table *t = (models_table *)cursor->pVtab;
  sqlite3_finalize(c->stmt);
  c->stmt = NULL;
  c->eof = 0;
  int exists, rc = store_exists(t->db, &exists);
  if (rc != SQLITE_OK)
    return set_vtab_error(cursor->pVtab, rc, "%s", sqlite3_errmsg(t->db));
  if (exists) {
    rc = sqlite3_prepare_v2(t->db, idx_num == 1
        ? "SELECT rowid, name, model FROM main." STORE_TABLE " WHERE name = ?1"
        : "SELECT rowid, name, model FROM main." STORE_TABLE " ORDER BY name",
        -1, &c->stmt, NULL);
    if (rc != SQLITE_OK)
      return set_vtab_error(cursor->pVtab, rc, "%s", sqlite3_errmsg(t->db));
    if (idx_num == 1) sqlite3_bind_value(c->stmt, 1, argv[0]);
  }
  return models_next(cursor);
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

static int run(sqlite3 *db, const char *sql, sqlite3_value *a, sqlite3_value *b,
               sqlite3_int64 rowid) {
  sqlite3_stmt *stmt;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
  if (rc != SQLITE_OK) return rc;
  int parameters = sqlite3_bind_parameter_count(stmt);
  if (a) sqlite3_bind_value(stmt, 1, a);
  if (b) sqlite3_bind_value(stmt, 2, b);
  if (rowid) sqlite3_bind_int64(stmt, parameters, rowid);
  rc = sqlite3_step(stmt);
  int finalize_rc = sqlite3_finalize(stmt);
  return rc == SQLITE_DONE ? finalize_rc : (finalize_rc ? finalize_rc : rc);
}

/* Checks a row about to be stored: a non-empty name and a valid model value,
** compiled now (and shared) so that its first use is instant. */
static int models_check_row(models_table *t, sqlite3_value *name,
                            sqlite3_value *model, sqlite3_value *vocab_size) {
  sqlite3_vtab *vtab = &t->base;
  if (sqlite3_value_type(name) != SQLITE_TEXT || sqlite3_value_bytes(name) == 0)
    return set_vtab_error(vtab, SQLITE_CONSTRAINT,
                          "bp_models: name must be a non-empty TEXT");
  if (sqlite3_value_type(vocab_size) != SQLITE_NULL &&
      sqlite3_value_nochange(vocab_size) == 0)
    return set_vtab_error(vtab, SQLITE_CONSTRAINT,
                          "bp_models: vocab_size is read-only");
  if (sqlite3_value_type(model) != SQLITE_BLOB)
    return set_vtab_error(vtab, SQLITE_CONSTRAINT,
                          "bp_models: model must be a model value from "
                          "bp_model_load() or bp_train(), not %s",
                          bp_type_name(model));
  const uint8_t *value = sqlite3_value_blob(model);
  size_t len = (size_t)sqlite3_value_bytes(model);
  uint8_t digest[32];
  if (bp_value_digest(value, len, digest) != BP_OK)
    return set_vtab_error(vtab, SQLITE_CONSTRAINT,
                          "bp_models: model must be a model value from "
                          "bp_model_load() or bp_train()");
  bp_error err;
  bp_model *compiled;
  if (compile_value(t->db, value, len, digest, &compiled, &err) != BP_OK)
    return set_vtab_error(vtab, bp_sqlite_code(err.code), "bp_models: %s",
                          err.message);
  /* Keep it compiled for this connection under its name. */
  const char *text = (const char *)sqlite3_value_text(name);
  bp_connection *c = t->connection;
  resolved *e = find_entry(c, text, 0, NULL);
  if (!e) e = new_entry(c, text, 0);
  if (!e) {
    bp_shared_release(compiled);
    return SQLITE_NOMEM;
  }
  bp_shared_release(e->model);
  e->model = compiled;
  memcpy(e->digest, digest, 32);
  e->checked = 0;
  return SQLITE_OK;
}

static int models_update(sqlite3_vtab *vtab, int argc, sqlite3_value **argv,
                         sqlite3_int64 *rowid) {
  models_table *t = (models_table *)vtab;
  int rc;
  connection_note_write(t->connection);
  if (argc == 1) {
    rc = run(t->db, "DELETE FROM main." STORE_TABLE " WHERE rowid = ?1", NULL,
             NULL, sqlite3_value_int64(argv[0]));
  } else {
    sqlite3_value *name = argv[2 + MODELS_NAME];
    sqlite3_value *model = argv[2 + MODELS_MODEL];
    if ((rc = models_check_row(t, name, model, argv[2 + MODELS_VOCAB_SIZE])) !=
        SQLITE_OK)
      return rc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
      rc = run(t->db,
               "CREATE TABLE IF NOT EXISTS main." STORE_TABLE
               "(name TEXT PRIMARY KEY NOT NULL, model BLOB NOT NULL)",
               NULL, NULL, 0);
      if (rc == SQLITE_OK)
        rc = run(t->db, "INSERT OR REPLACE INTO main." STORE_TABLE
                 "(name, model) VALUES (?1, ?2)", name, model, 0);
      if (rc == SQLITE_OK) *rowid = sqlite3_last_insert_rowid(t->db);
    } else {
      rc = run(t->db, "UPDATE OR REPLACE main." STORE_TABLE
               " SET name = ?1, model = ?2 WHERE rowid = ?3", name, model,
               sqlite3_value_int64(argv[0]));
    }
  }
  if (rc != SQLITE_OK && rc != SQLITE_NOMEM)
    return set_vtab_error(vtab, rc, "bp_models: %s", sqlite3_errmsg(t->db));
  return rc;
}

/* Writes roll back with the transaction; forget what was resolved then. */
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

static sqlite3_module models_module = {
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

int bp_register_models_table(sqlite3 *db, bp_connection *connection) {
  return sqlite3_create_module_v2(db, "bp_models", &models_module, connection,
                                  bp_connection_free);
}
