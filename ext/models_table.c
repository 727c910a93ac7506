/*
** models_table.c: the bp_models virtual table, the registry of models.
**
**     INSERT INTO bp_models(name, model) VALUES ('zh', bp_model_load('m.zip'));
**     SELECT name, vocab_size FROM bp_models;
**     DELETE FROM bp_models WHERE name = 'zh';
**
** bp_models is an eponymous virtual table, so it exists as soon as the
** extension is loaded and adds nothing to the schema. Its rows live in the
** store, main.bp_model_store(name, model) (registry.c), created by the
** first INSERT. Every read and write first checks the store's schema
** (bpsql_store_check); a value about to be stored is verified and compiled,
** or recognised as one bp_train or bp_model_shrink just built
** (model_cache.c), and the connection remembers it under its name, to be
** confirmed at the next use.
*/
#include "registry.h"

#include <string.h>

SQLITE_EXTENSION_INIT3

/* ---- The bp_models virtual table ------------------------------------------ */

typedef struct models_table {
  sqlite3_vtab base;
  sqlite3 *db;
  bpsql_connection *connection;
} models_table;

typedef struct models_cursor {
  sqlite3_vtab_cursor base;
  sqlite3_stmt *stmt; /* NULL when the store does not exist */
  int eof;
} models_cursor;

enum { MODELS_NAME, MODELS_MODEL, MODELS_VOCAB_SIZE };

static int models_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                          sqlite3_vtab **vtab, char **error) {
  (void)argc;
  (void)argv;
  (void)error;
  int rc =
      sqlite3_declare_vtab(db, "CREATE TABLE x(name TEXT, model BLOB, vocab_size INTEGER)");
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
  return bpsql_vtab_error(&t->base, rc, "bp_models: %s", text);
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

static int models_filter(sqlite3_vtab_cursor *cursor, int idx_num, const char *idx_str,
                         int argc, sqlite3_value **argv) {
  (void)idx_str;
  (void)argc;
  models_cursor *c = (models_cursor *)cursor;
  models_table *t = (models_table *)cursor->pVtab;
  sqlite3_finalize(c->stmt);
  c->stmt = NULL;
  c->eof = 0;
  sqlite3_stmt *snapshot;
  int schema_version, state;
  int rc = bpsql_store_snapshot(t->db, &snapshot, &schema_version);
  if (rc != SQLITE_OK) return models_sqlite_error(t, rc);
  rc = bpsql_store_check(t->connection, schema_version, &state);
  if (rc == SQLITE_OK && state == BP_STORE_INVALID) {
    sqlite3_finalize(snapshot);
    return bpsql_vtab_error(cursor->pVtab, SQLITE_ERROR, "bp_models: %s",
                            t->connection->store_problem);
  }
  if (rc == SQLITE_OK && state == BP_STORE_VALID) {
    rc = sqlite3_prepare_v2(t->db,
                            idx_num == 1
                                ? "SELECT rowid, name, model FROM main." BPSQL_STORE_TABLE
                                  " WHERE name = ?1 COLLATE BINARY"
                                : "SELECT rowid, name, model FROM main." BPSQL_STORE_TABLE
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

static int models_eof(sqlite3_vtab_cursor *cursor) { return ((models_cursor *)cursor)->eof; }

static int models_column(sqlite3_vtab_cursor *cursor, sqlite3_context *ctx, int column) {
  models_cursor *c = (models_cursor *)cursor;
  switch (column) {
    case MODELS_NAME: sqlite3_result_value(ctx, sqlite3_column_value(c->stmt, 1)); break;
    case MODELS_MODEL: sqlite3_result_value(ctx, sqlite3_column_value(c->stmt, 2)); break;
    case MODELS_VOCAB_SIZE: {
      if (sqlite3_vtab_nochange(ctx)) break; /* an UPDATE leaving it alone */
      /* What the value's header says (NULL when it has none); using the
      ** model verifies the rest. */
      if (sqlite3_column_type(c->stmt, 2) != SQLITE_BLOB) break;
      const uint8_t *value = sqlite3_column_blob(c->stmt, 2);
      int len = sqlite3_column_bytes(c->stmt, 2);
      bp_value_header header;
      bp_error err;
      if (value && bp_value_read_header(value, (size_t)len, &header, &err) == BP_OK)
        sqlite3_result_int64(ctx, (sqlite3_int64)header.piece_count + BP_FIRST_PIECE_ID);
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
  int rc = sqlite3_prepare_v2(
      db, "SELECT rowid FROM main." BPSQL_STORE_TABLE " WHERE name = ?1 COLLATE BINARY", -1,
      &stmt, NULL);
  if (rc != SQLITE_OK) return rc;
  if ((rc = sqlite3_bind_value(stmt, 1, name)) == SQLITE_OK) rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    *found = 1;
    *rowid = sqlite3_column_int64(stmt, 0);
  }
  int finalize_rc = sqlite3_finalize(stmt);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? finalize_rc : (finalize_rc ? finalize_rc : rc);
}

/* The name of the row at `rowid`, as text (NULL if none or not text). */
static int store_name(sqlite3 *db, sqlite3_int64 rowid, char **name) {
  sqlite3_stmt *stmt;
  *name = NULL;
  int rc = sqlite3_prepare_v2(db,
                              "SELECT name FROM main." BPSQL_STORE_TABLE
                              " WHERE rowid = ?1 AND typeof(name) = 'text'",
                              -1, &stmt, NULL);
  if (rc != SQLITE_OK) return rc;
  if ((rc = sqlite3_bind_int64(stmt, 1, rowid)) == SQLITE_OK) rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    const char *text = (const char *)sqlite3_column_text(stmt, 0);
    if (!text || !(*name = sqlite3_mprintf("%s", text))) rc = SQLITE_NOMEM;
  }
  int finalize_rc = sqlite3_finalize(stmt);
  if (rc == SQLITE_NOMEM) return rc;
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? finalize_rc : (finalize_rc ? finalize_rc : rc);
}

/* Checks a row about to be stored: a non-empty name, a read-only
** vocab_size, and a model value. */
static int models_check_row(models_table *t, sqlite3_value *name, sqlite3_value *model,
                            sqlite3_value *vocab_size) {
  sqlite3_vtab *vtab = &t->base;
  if (sqlite3_value_type(name) != SQLITE_TEXT || sqlite3_value_bytes(name) == 0)
    return bpsql_vtab_error(vtab, SQLITE_CONSTRAINT,
                            "bp_models: name must be a non-empty TEXT");
  if (sqlite3_value_type(vocab_size) != SQLITE_NULL && sqlite3_value_nochange(vocab_size) == 0)
    return bpsql_vtab_error(vtab, SQLITE_CONSTRAINT, "bp_models: vocab_size is read-only");
  if (sqlite3_value_type(model) != SQLITE_BLOB)
    return bpsql_vtab_error(vtab, SQLITE_CONSTRAINT,
                            "bp_models: model must be a model value from "
                            "bp_model_load() or bp_train(), not %s",
                            bpsql_type_name(model));
  bp_value_header header;
  bp_error err;
  if (bp_value_read_header(sqlite3_value_blob(model), (size_t)sqlite3_value_bytes(model),
                           &header, &err) != BP_OK)
    return bpsql_vtab_error(vtab, SQLITE_CONSTRAINT,
                            "bp_models: model must be a model value from "
                            "bp_model_load() or bp_train()");
  return SQLITE_OK;
}

/* Verifies and compiles (or finds compiled) a value about to be stored, so
** that its first use is instant. */
static int models_compile(models_table *t, sqlite3_value *model, bp_model **compiled) {
  bp_error err;
  int brc = bpsql_model_cache_compile(t->db, sqlite3_value_blob(model),
                                      (size_t)sqlite3_value_bytes(model), compiled, &err);
  if (brc == BP_NOMEM) return SQLITE_NOMEM;
  if (brc != BP_OK)
    return bpsql_vtab_error(&t->base, bpsql_sqlite_code(err.code), "bp_models: %s",
                            err.message);
  return SQLITE_OK;
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
    return bpsql_vtab_error(&t->base, SQLITE_CONSTRAINT,
                            "bp_models: a model named '%s' exists already",
                            (const char *)sqlite3_value_text(name));
  return SQLITE_OK;
}

static int models_insert(models_table *t, sqlite3_value *name, sqlite3_value *model, int state,
                         sqlite3_int64 *rowid) {
  bpsql_connection *c = t->connection;
  sqlite3 *db = t->db;
  int found = 0, mode, rc = SQLITE_OK;
  sqlite3_int64 existing = 0;
  if (state == BP_STORE_VALID) rc = store_rowid(db, name, &found, &existing);
  if (rc != SQLITE_OK) return models_sqlite_error(t, rc);
  /* A plain INSERT (ABORT to a virtual table) replaces, as documented. */
  if (found && (rc = name_conflict(t, name, &mode)) != SQLITE_OK) return rc;
  bp_model *compiled;
  if ((rc = models_compile(t, model, &compiled)) != SQLITE_OK) return rc;
  if (state == BP_STORE_ABSENT) {
    rc = run(db,
             "CREATE TABLE IF NOT EXISTS main." BPSQL_STORE_TABLE
             "(name TEXT PRIMARY KEY NOT NULL, model BLOB NOT NULL)",
             NULL, NULL, NULL);
    c->store_known = 0;
  }
  if (rc == SQLITE_OK && found) {
    rc = run(db, "UPDATE main." BPSQL_STORE_TABLE " SET model = ?2 WHERE rowid = ?3", NULL,
             model, &existing);
    *rowid = existing;
  } else if (rc == SQLITE_OK) {
    rc = run(db, "INSERT INTO main." BPSQL_STORE_TABLE "(name, model) VALUES (?1, ?2)", name,
             model, NULL);
    *rowid = sqlite3_last_insert_rowid(db);
  }
  if (rc != SQLITE_OK) {
    bpsql_model_cache_release(compiled);
    return models_sqlite_error(t, rc);
  }
  bpsql_connection_remember(c, (const char *)sqlite3_value_text(name), model, compiled);
  return SQLITE_OK;
}

static int models_change(models_table *t, sqlite3_int64 old_rowid, sqlite3_value *new_rowid,
                         sqlite3_value *name, sqlite3_value *model) {
  bpsql_connection *c = t->connection;
  sqlite3 *db = t->db;
  if (sqlite3_value_type(new_rowid) != SQLITE_INTEGER ||
      sqlite3_value_int64(new_rowid) != old_rowid)
    return bpsql_vtab_error(&t->base, SQLITE_CONSTRAINT, "bp_models: rowid is read-only");
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
    return bpsql_vtab_error(&t->base, SQLITE_CONSTRAINT,
                            "bp_models: a model named '%s' exists already", new_name);
  }
  bp_model *compiled;
  if ((rc = models_compile(t, model, &compiled)) != SQLITE_OK) {
    sqlite3_free(old_name);
    return rc;
  }
  if (found)
    rc = run(db, "DELETE FROM main." BPSQL_STORE_TABLE " WHERE rowid = ?3", NULL, NULL, &other);
  if (rc == SQLITE_OK)
    rc = run(db, "UPDATE main." BPSQL_STORE_TABLE " SET name = ?1, model = ?2 WHERE rowid = ?3",
             name, model, &old_rowid);
  if (rc != SQLITE_OK) {
    sqlite3_free(old_name);
    bpsql_model_cache_release(compiled);
    return models_sqlite_error(t, rc);
  }
  if (old_name) bpsql_connection_forget_name(c, old_name);
  sqlite3_free(old_name);
  bpsql_connection_remember(c, new_name, model, compiled);
  return SQLITE_OK;
}

static int models_delete(models_table *t, sqlite3_int64 rowid) {
  char *name;
  int rc = store_name(t->db, rowid, &name);
  if (rc == SQLITE_OK)
    rc = run(t->db, "DELETE FROM main." BPSQL_STORE_TABLE " WHERE rowid = ?3", NULL, NULL,
             &rowid);
  /* The model is released now, not at the next statement that resolves. */
  if (rc == SQLITE_OK) bpsql_connection_forget_name(t->connection, name);
  sqlite3_free(name);
  return rc == SQLITE_OK ? rc : models_sqlite_error(t, rc);
}

static int models_update(sqlite3_vtab *vtab, int argc, sqlite3_value **argv,
                         sqlite3_int64 *rowid) {
  models_table *t = (models_table *)vtab;
  bpsql_connection *c = t->connection;
  /* A backstop: DIRECTONLY keeps triggers on the store (TEMP ones too, in
  ** SQLite 3.40) from writing bp_models, but should a write of the store
  ** ever come round to bp_models again, it would never end. */
  if (c->updating)
    return bpsql_vtab_error(vtab, SQLITE_ERROR,
                            "bp_models: a write to bp_models cannot write bp_models "
                            "again (a trigger on " BPSQL_STORE_TABLE "?)");
  bpsql_connection_note_write(c);
  int state, rc = bpsql_store_check_now(c, &state);
  if (rc != SQLITE_OK) return models_sqlite_error(t, rc);
  if (state == BP_STORE_INVALID)
    return bpsql_vtab_error(vtab, SQLITE_ERROR, "bp_models: %s", c->store_problem);
  if (argc == 1) {
    if (state != BP_STORE_VALID) return SQLITE_OK;
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
  else if (state == BP_STORE_VALID)
    rc = models_change(t, sqlite3_value_int64(argv[0]), argv[1], name, model);
  c->updating = 0;
  return rc;
}

/* Writes roll back with the transaction; what was resolved is confirmed
** again at the next use. */
static int models_rollback(sqlite3_vtab *vtab) {
  bpsql_connection_note_write(((models_table *)vtab)->connection);
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
  (void)vtab;
  (void)savepoint;
  return SQLITE_OK;
}

const sqlite3_module bpsql_models_module = {
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
