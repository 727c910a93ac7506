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

void bp_model_cache_release(bp_model *model) {
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
int bp_model_cache_compile(sqlite3 *db, const uint8_t *value, size_t len,
                           bp_model **model, bp_error *err) {
  *model = NULL;
  bp_value_header header;
  int rc = bp_value_read_header(value, len, &header, err);
  if (rc != BP_OK) return rc;
  if ((*model = shared_acquire(value))) {
    if (bp_value_verify(value, len, err) == BP_OK) return BP_OK;
    bp_model_cache_release(*model);
    *model = NULL;
    return err->code;
  }
  bp_model *fresh;
  bp_interrupt interrupt = {bp_sql_interrupted, db}; /* a long compilation stops */
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
