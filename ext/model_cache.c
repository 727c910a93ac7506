/*
** model_cache.c: compiled models shared by every connection of the process.
**
** A model value (BLOB) carries the SHA-256 of its payload in its 48-byte
** header. Compiled models are shared by all connections of the process,
** keyed by that header, and freed when the last connection lets go (and
** the last statement using one ends: statements hold references of their
** own). Before a connection takes a shared model for a value it meets for
** the first time, it checks the value's digest (bp_value_verify), so that
** a forged header never lends a value someone else's model. Used by the
** resolution in registry.c and by the bp_models table (models_table.c).
**
** A value the binding has just made from a model it built (bp_train,
** bp_model_shrink) comes with that model: bpsql_model_cache_keep keeps a copy
** of the exact bytes returned beside it, so that storing or using the
** value hands out the model without hashing or compiling the value again.
** The value is recognised by comparing all its bytes with the copy, never
** by its header alone (a hostile value may carry a known digest over
** another payload). A kept value holds one user of its shared model and is
** dropped when it is first recognised (the user passes to whoever
** recognised it), when MAX_KEPT_VALUES newer ones are kept or the kept ones
** with their models pass MAX_KEPT_BYTES, or when the connection that made
** it closes. Everything here is under one mutex.
*/
#include "registry.h"

#include <pthread.h>
#include <string.h>

SQLITE_EXTENSION_INIT3

typedef struct shared_model {
  uint8_t header[BP_VALUE_HEADER_BYTES]; /* of the value it was compiled from */
  bp_model *model;
  int users;
  struct shared_model *next;
} shared_model;

static shared_model *shared_models;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static long compilations; /* for bp_debug(); under shared_lock */

#define MAX_KEPT_VALUES 4
#define MAX_KEPT_BYTES ((size_t)256 << 20)

/* A value just made from a built model, and that model. */
typedef struct kept_value {
  const bpsql_connection *owner; /* the connection that made it */
  uint8_t *value;                /* a copy of the bytes returned */
  size_t length;
  size_t cost;             /* the copy and the compiled model, in bytes */
  bp_model *model;         /* one user of a shared model */
  struct kept_value *next; /* the newest first */
} kept_value;

static kept_value *kept_values; /* under shared_lock, as are the totals */
static int kept_count;
static size_t kept_bytes;

void bpsql_registry_statistics(long *compiled, int *shared) {
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
static bp_model *shared_publish(const uint8_t header[BP_VALUE_HEADER_BYTES], bp_model *model) {
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

void bpsql_model_cache_release(bp_model *model) {
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

/* Unlinks *link from the kept values (under shared_lock) and returns it. */
static kept_value *kept_unlink(kept_value **link) {
  kept_value *k = *link;
  *link = k->next;
  kept_count--;
  kept_bytes -= k->cost;
  k->next = NULL;
  return k;
}

/* Frees kept values unlinked by the caller (outside shared_lock, since
** releasing their models takes it). */
static void kept_free(kept_value *k) {
  while (k) {
    kept_value *next = k->next;
    bpsql_model_cache_release(k->model);
    sqlite3_free(k->value);
    sqlite3_free(k);
    k = next;
  }
}

void bpsql_model_cache_keep(const bpsql_connection *owner, bp_model *model,
                            const uint8_t *value, size_t len) {
  size_t cost = len + bp_model_memory(model);
  kept_value *k = NULL;
  /* Keeping is only a saving: when it cannot be done, the value is
  ** compiled at its first use, as any other. */
  if (cost > MAX_KEPT_BYTES || !(k = sqlite3_malloc64(sizeof *k)) ||
      !(k->value = sqlite3_malloc64(len))) {
    sqlite3_free(k);
    bp_model_release(model);
    return;
  }
  memcpy(k->value, value, len);
  k->owner = owner;
  k->length = len;
  k->cost = cost;
  if (!(k->model = shared_publish(value, model))) {
    sqlite3_free(k->value);
    sqlite3_free(k);
    return;
  }
  kept_value *dropped = NULL;
  pthread_mutex_lock(&shared_lock);
  k->next = kept_values;
  kept_values = k;
  kept_count++;
  kept_bytes += cost;
  /* The oldest go first; k itself stays (its cost is within the budget). */
  while (kept_count > MAX_KEPT_VALUES || kept_bytes > MAX_KEPT_BYTES) {
    kept_value **link = &k->next;
    while (*link && (*link)->next) link = &(*link)->next;
    if (!*link) break;
    kept_value *oldest = kept_unlink(link);
    oldest->next = dropped;
    dropped = oldest;
  }
  pthread_mutex_unlock(&shared_lock);
  kept_free(dropped);
}

void bpsql_model_cache_forget(const bpsql_connection *owner) {
  kept_value *dropped = NULL;
  pthread_mutex_lock(&shared_lock);
  for (kept_value **link = &kept_values; *link;) {
    if ((*link)->owner == owner) {
      kept_value *k = kept_unlink(link);
      k->next = dropped;
      dropped = k;
    } else {
      link = &(*link)->next;
    }
  }
  pthread_mutex_unlock(&shared_lock);
  kept_free(dropped);
}

/* The model kept with a value of exactly these bytes, with its user passed
** to the caller, or NULL. */
static bp_model *kept_take(const uint8_t *value, size_t len) {
  kept_value *found = NULL;
  pthread_mutex_lock(&shared_lock);
  for (kept_value **link = &kept_values; *link; link = &(*link)->next)
    if ((*link)->length == len && memcmp((*link)->value, value, len) == 0) {
      found = kept_unlink(link);
      break;
    }
  pthread_mutex_unlock(&shared_lock);
  if (!found) return NULL;
  bp_model *model = found->model;
  sqlite3_free(found->value);
  sqlite3_free(found);
  return model;
}

/* Compiles a whole model value, or finds it compiled already: kept with
** these very bytes (bpsql_model_cache_keep), or shared under its header, and
** then verified first, since its header alone proves nothing.
** sqlite3_interrupt(db) stops a long compilation. */
int bpsql_model_cache_compile(sqlite3 *db, const uint8_t *value, size_t len, bp_model **model,
                              bp_error *err) {
  *model = NULL;
  bp_value_header header;
  int rc = bp_value_read_header(value, len, &header, err);
  if (rc != BP_OK) return rc;
  if ((*model = kept_take(value, len))) return BP_OK;
  if ((*model = shared_acquire(value))) {
    if (bp_value_verify(value, len, err) == BP_OK) return BP_OK;
    bpsql_model_cache_release(*model);
    *model = NULL;
    return err->code;
  }
  bp_model *fresh;
  bp_interrupt interrupt = {bpsql_sql_interrupted, db}; /* a long compilation stops */
  if ((rc = bp_model_deserialize(value, len, &interrupt, &fresh, err)) != BP_OK) return rc;
  pthread_mutex_lock(&shared_lock);
  compilations++;
  pthread_mutex_unlock(&shared_lock);
  if (!(*model = shared_publish(value, fresh))) {
    err->code = BP_NOMEM;
    return BP_NOMEM;
  }
  return BP_OK;
}
