/*
** registry.h: what model_cache.c, registry.c and models_table.c share, and
** nothing else of the binding uses: the compiled-model cache, the
** per-connection state and the store.
*/
#ifndef BPSQL_REGISTRY_H
#define BPSQL_REGISTRY_H

#include "binding.h"

#define BPSQL_STORE_TABLE "bp_model_store"

/* ---- model_cache.c ---------------------------------------------------------- */

/* Compiles a whole model value, or finds it compiled already (kept with
** these very bytes, or else the value verified first, since its header
** alone proves nothing), as a shared model to release with
** bpsql_model_cache_release. sqlite3_interrupt(db) stops a long compilation.
** Returns a library code. */
int bpsql_model_cache_compile(sqlite3 *db, const uint8_t *value, size_t len, bp_model **model,
                              bp_error *err);
void bpsql_model_cache_release(bp_model *model);
/* Drops the values a connection kept (bpsql_model_cache_keep): it closes. */
void bpsql_model_cache_forget(const bpsql_connection *owner);

/* ---- registry.c --------------------------------------------------------------- */

typedef struct resolved resolved;

enum { BP_STORE_ABSENT, BP_STORE_VALID, BP_STORE_INVALID };

struct bpsql_connection {
  sqlite3 *db;
  int references; /* one per registration holding it, and init's */
  /* What the remembered resolutions were confirmed against. */
  int observed;
  unsigned data_version;
  unsigned writes; /* bumped by every bp_models write and rollback */
  unsigned observed_writes;
  unsigned serial; /* bumped whenever the two above change */
  unsigned swept;  /* the serial every name was last confirmed at */
  /* The store's verdict, for one schema version. */
  int store_known;
  int store_schema_version;
  int store_state;
  char *store_problem; /* why it is not a store (BP_STORE_INVALID) */
  int updating;        /* inside a bp_models write */
  sqlite3_uint64 clock;
  resolved *entries;
  int count, capacity;
};

/* Opens a read transaction on main, unless one is open, and reads the
** schema version; the transaction lasts until *snapshot is finalized. */
int bpsql_store_snapshot(sqlite3 *db, sqlite3_stmt **snapshot, int *schema_version);
/* The store's state (BP_STORE_...) under that schema version, or now. */
int bpsql_store_check(bpsql_connection *c, int schema_version, int *state);
int bpsql_store_check_now(bpsql_connection *c, int *state);

/* What a bp_models write tells the connection's memory: that it wrote,
** that a name is gone, that a name now holds `model` (compiled, whose
** reference is taken over). */
void bpsql_connection_note_write(bpsql_connection *c);
void bpsql_connection_forget_name(bpsql_connection *c, const char *name);
void bpsql_connection_remember(bpsql_connection *c, const char *name, sqlite3_value *model,
                               bp_model *compiled);

#endif /* BPSQL_REGISTRY_H */
