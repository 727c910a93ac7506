/*
** model_list.c: bp_model_list, every model a name can use, stored and built in.
**
**     SELECT name, builtin, vocab_size, shadowed, is_default FROM bp_model_list;
**     INSERT INTO bp_models(name, model)
**       SELECT 'zh', model FROM bp_model_list WHERE name = 'bytepiece_80k';
**
** An eponymous virtual table: the stored models (bp_models, in its order),
** then the built-in ones (builtin_models.c). `shadowed` is 1 for a built-in
** model whose name a stored model holds (the stored one is what the name
** uses); `is_default` marks the model used when a function is given none.
** xFilter reads the names and vocabulary sizes; a model value is read (or
** inflated) only when its column is asked for.
*/
#include "builtin_models.h"

#include <string.h>

SQLITE_EXTENSION_INIT3

enum { LIST_NAME, LIST_BUILTIN, LIST_VOCAB_SIZE, LIST_SHADOWED, LIST_IS_DEFAULT, LIST_MODEL };

typedef struct listed {
  char *name;
  int builtin;              /* the index of a built-in model, or -1 */
  sqlite3_int64 vocab_size; /* -1: none (a stored value that is not a model) */
  int shadowed, is_default;
} listed;

typedef struct list_vtab {
  sqlite3_vtab base;
  sqlite3 *db;
} list_vtab;

typedef struct list_cursor {
  sqlite3_vtab_cursor base;
  listed *rows;
  int count, at;
} list_cursor;

static int list_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **vtab, char **error) {
  (void)aux;
  (void)argc;
  (void)argv;
  (void)error;
  int rc =
      sqlite3_declare_vtab(db,
                           "CREATE TABLE x(name TEXT, builtin INTEGER, vocab_size INTEGER, "
                           "shadowed INTEGER, is_default INTEGER, model BLOB)");
  if (rc != SQLITE_OK) return rc;
  list_vtab *t = sqlite3_malloc64(sizeof *t);
  if (!t) return SQLITE_NOMEM;
  memset(t, 0, sizeof *t);
  t->db = db;
  sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
  *vtab = &t->base;
  return SQLITE_OK;
}

static int list_disconnect(sqlite3_vtab *vtab) {
  sqlite3_free(vtab);
  return SQLITE_OK;
}

static int list_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info) {
  (void)vtab;
  info->estimatedCost = 10;
  info->estimatedRows = 10;
  return SQLITE_OK;
}

static void clear_rows(list_cursor *c) {
  for (int i = 0; i < c->count; i++) sqlite3_free(c->rows[i].name);
  sqlite3_free(c->rows);
  c->rows = NULL;
  c->count = c->at = 0;
}

static int list_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **cursor) {
  (void)vtab;
  list_cursor *c = sqlite3_malloc64(sizeof *c);
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, sizeof *c);
  *cursor = &c->base;
  return SQLITE_OK;
}

static int list_close(sqlite3_vtab_cursor *cursor) {
  clear_rows((list_cursor *)cursor);
  sqlite3_free(cursor);
  return SQLITE_OK;
}

/* Appends a row (taking over `name`, which may be NULL when out of memory). */
static int add_row(list_cursor *c, int *capacity, char *name, int builtin,
                   sqlite3_int64 vocab_size) {
  if (!name) return SQLITE_NOMEM;
  if (c->count == *capacity) {
    int grown_capacity = *capacity ? *capacity * 2 : 16;
    listed *grown = sqlite3_realloc64(c->rows, (sqlite3_uint64)grown_capacity * sizeof *grown);
    if (!grown) {
      sqlite3_free(name);
      return SQLITE_NOMEM;
    }
    c->rows = grown;
    *capacity = grown_capacity;
  }
  listed *row = &c->rows[c->count++];
  memset(row, 0, sizeof *row);
  row->name = name;
  row->builtin = builtin;
  row->vocab_size = vocab_size;
  return SQLITE_OK;
}

static int list_filter(sqlite3_vtab_cursor *cursor, int idx_num, const char *idx_str, int argc,
                       sqlite3_value **argv) {
  (void)idx_num;
  (void)idx_str;
  (void)argc;
  (void)argv;
  list_cursor *c = (list_cursor *)cursor;
  sqlite3 *db = ((list_vtab *)cursor->pVtab)->db;
  clear_rows(c);
  int capacity = 0;
  sqlite3_stmt *stmt;
  int rc =
      sqlite3_prepare_v2(db, "SELECT name, vocab_size FROM main.bp_models", -1, &stmt, NULL);
  while (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(stmt, 0);
    sqlite3_int64 vocab_size =
        sqlite3_column_type(stmt, 1) == SQLITE_NULL ? -1 : sqlite3_column_int64(stmt, 1);
    rc = add_row(c, &capacity, sqlite3_mprintf("%s", name ? name : ""), -1, vocab_size);
  }
  if (rc == SQLITE_OK) {
    rc = sqlite3_finalize(stmt);
  } else if (stmt) {
    sqlite3_finalize(stmt);
  }
  if (rc != SQLITE_OK)
    return rc == SQLITE_NOMEM
               ? SQLITE_NOMEM
               : bpsql_vtab_error(cursor->pVtab, rc, "bp_model_list: %s", sqlite3_errmsg(db));
  /* The default model, as registry.c resolves it: the stored one named
  ** 'default', else the only stored one, else (nothing stored) the
  ** built-in default. */
  int stored = c->count, chosen = -1;
  for (int i = 0; i < stored; i++)
    if (strcmp(c->rows[i].name, "default") == 0) chosen = i;
  if (chosen < 0 && stored == 1) chosen = 0;
  for (int b = 0; b < bpsql_builtin_count() && rc == SQLITE_OK; b++) {
    sqlite3_int64 vocab_size;
    if ((rc = bpsql_builtin_vocab_size(b, &vocab_size)) != SQLITE_OK) break;
    rc = add_row(c, &capacity, sqlite3_mprintf("%s", bpsql_builtin_name(b)), b, vocab_size);
    if (rc != SQLITE_OK) break;
    for (int i = 0; i < stored; i++)
      if (strcmp(c->rows[i].name, bpsql_builtin_name(b)) == 0)
        c->rows[c->count - 1].shadowed = 1;
    if (stored == 0 && b == bpsql_builtin_find(NULL)) chosen = c->count - 1;
  }
  if (rc != SQLITE_OK) return rc;
  if (chosen >= 0) c->rows[chosen].is_default = 1;
  return SQLITE_OK;
}

static int list_next(sqlite3_vtab_cursor *cursor) {
  ((list_cursor *)cursor)->at++;
  return SQLITE_OK;
}

static int list_eof(sqlite3_vtab_cursor *cursor) {
  list_cursor *c = (list_cursor *)cursor;
  return c->at >= c->count;
}

/* A stored model's value, read when asked for. */
static int result_stored_model(sqlite3_vtab_cursor *cursor, sqlite3_context *ctx,
                               const char *name) {
  sqlite3 *db = ((list_vtab *)cursor->pVtab)->db;
  sqlite3_stmt *stmt;
  int rc = sqlite3_prepare_v2(db, "SELECT model FROM main.bp_models WHERE name = ?1", -1, &stmt,
                              NULL);
  if (rc == SQLITE_OK) rc = sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
    sqlite3_result_value(ctx, sqlite3_column_value(stmt, 0));
  int finalize_rc = sqlite3_finalize(stmt);
  if (rc == SQLITE_OK) rc = finalize_rc;
  if (rc == SQLITE_NOMEM)
    sqlite3_result_error_nomem(ctx);
  else if (rc != SQLITE_OK)
    bpsql_vtab_error(cursor->pVtab, rc, "bp_model_list: %s", sqlite3_errmsg(db));
  return rc;
}

static int list_column(sqlite3_vtab_cursor *cursor, sqlite3_context *ctx, int column) {
  list_cursor *c = (list_cursor *)cursor;
  const listed *row = &c->rows[c->at];
  switch (column) {
    case LIST_NAME: sqlite3_result_text(ctx, row->name, -1, SQLITE_TRANSIENT); break;
    case LIST_BUILTIN: sqlite3_result_int(ctx, row->builtin >= 0); break;
    case LIST_VOCAB_SIZE:
      if (row->vocab_size >= 0) sqlite3_result_int64(ctx, row->vocab_size);
      break;
    case LIST_SHADOWED: sqlite3_result_int(ctx, row->shadowed); break;
    case LIST_IS_DEFAULT: sqlite3_result_int(ctx, row->is_default); break;
    default: {
      if (row->builtin < 0) return result_stored_model(cursor, ctx, row->name);
      uint8_t *value;
      sqlite3_int64 len;
      int rc = bpsql_builtin_value(row->builtin, &value, &len);
      if (rc == SQLITE_NOMEM) return SQLITE_NOMEM;
      if (rc != SQLITE_OK)
        return bpsql_vtab_error(cursor->pVtab, rc,
                                "bp_model_list: built-in model '%s' does not inflate",
                                row->name);
      sqlite3_result_blob64(ctx, value, (sqlite3_uint64)len, sqlite3_free);
      break;
    }
  }
  return SQLITE_OK;
}

static int list_rowid(sqlite3_vtab_cursor *cursor, sqlite3_int64 *rowid) {
  *rowid = ((list_cursor *)cursor)->at + 1;
  return SQLITE_OK;
}

const sqlite3_module bpsql_model_list_module = {
    0,               /* iVersion */
    NULL,            /* xCreate: eponymous only */
    list_connect,    /* xConnect */
    list_best_index, /* xBestIndex */
    list_disconnect, /* xDisconnect */
    NULL,            /* xDestroy */
    list_open,       /* xOpen */
    list_close,      /* xClose */
    list_filter,     /* xFilter */
    list_next,       /* xNext */
    list_eof,        /* xEof */
    list_column,     /* xColumn */
    list_rowid,      /* xRowid */
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
};
