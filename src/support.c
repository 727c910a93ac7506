/*
** support.c: the allocator hook every allocation of the library goes
** through, error reporting, and a growable byte buffer.
*/
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*allocator_malloc)(size_t) = malloc;
static void *(*allocator_realloc)(void *, size_t) = realloc;
static void (*allocator_free)(void *) = free;

void bp_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                      void (*free_fn)(void *)) {
  allocator_malloc = malloc_fn ? malloc_fn : malloc;
  allocator_realloc = realloc_fn ? realloc_fn : realloc;
  allocator_free = free_fn ? free_fn : free;
}

void *bp_malloc(size_t n) { return allocator_malloc(n ? n : 1); }
void *bp_realloc(void *p, size_t n) { return allocator_realloc(p, n ? n : 1); }
void bp_free(void *p) {
  if (p) allocator_free(p);
}

int bp_fail(bp_error *err, int code, const char *format, ...) {
  if (err) {
    va_list ap;
    va_start(ap, format);
    err->code = code;
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): ap is started just above; clang 14's checker misreports it when an earlier file of the same run used va_start
    vsnprintf(err->message, sizeof err->message, format, ap);
    va_end(ap);
  }
  return code;
}

int bp_fail_nomem(bp_error *err) { return bp_fail(err, BP_NOMEM, "out of memory"); }

bool bp_buffer_reserve(bp_buffer *b, size_t extra) {
  if (extra <= b->capacity - b->length) return true;
  if (extra > SIZE_MAX / 2 - b->length) return false;
  size_t want = b->length + extra;
  size_t capacity = b->capacity ? b->capacity : 64;
  while (capacity < want) capacity *= 2;
  char *data = bp_realloc(b->data, capacity);
  if (!data) return false;
  b->data = data;
  b->capacity = capacity;
  return true;
}

bool bp_buffer_append(bp_buffer *b, const void *bytes, size_t n) {
  if (!bp_buffer_reserve(b, n)) return false;
  if (n) memcpy(b->data + b->length, bytes, n);
  b->length += n;
  return true;
}

void bp_buffer_free(bp_buffer *b) {
  bp_free(b->data);
  memset(b, 0, sizeof *b);
}

void bp_ids_free(bp_ids *ids) {
  bp_free(ids->ids);
  memset(ids, 0, sizeof *ids);
}

int bp_ids_push(bp_ids *ids, int32_t id) {
  if (ids->count == ids->capacity) {
    size_t capacity = ids->capacity ? ids->capacity * 2 : 64;
    int32_t *grown = bp_realloc(ids->ids, capacity * sizeof *grown);
    if (!grown) return 0;
    ids->ids = grown;
    ids->capacity = capacity;
  }
  ids->ids[ids->count++] = id;
  return 1;
}
