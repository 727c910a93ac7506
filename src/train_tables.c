/*
** train_tables.c: the trainer's two hash tables, both open addressing with
** linear probing at most half full.
**
** A string counter holds byte strings with counts: the distinct chunks of
** the text (bp_trainer_add), then the pieces of their segmentation (step 3).
** Strings are copied once into an arena; a slot holds a string's hash,
** count, and place in the arena. An n-gram table holds the n-grams of one
** length n >= 3, packed into 64-bit keys, with their counts (step 2) that
** later become log probabilities in place (the n-gram model).
*/
#include "train_internal.h"

#include <string.h>

uint64_t train_hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = train_mix64(n + 0x9E3779B97F4A7C15ull);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = train_mix64(h ^ w);
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, p, n);
  return train_mix64(h ^ w ^ (uint64_t)n << 56);
}

void train_string_counter_free(string_counter *c) {
  bp_buffer_free(&c->arena);
  bp_free(c->slots);
  memset(c, 0, sizeof *c);
}

/* Moves the slots to `capacity` of them, a power of two above twice the
** entries. */
static bool string_counter_resize(string_counter *c, size_t capacity) {
  counted_string *slots = bp_malloc(capacity * sizeof *slots);
  if (!slots) return false;
  memset(slots, 0, capacity * sizeof *slots);
  for (size_t i = 0; i < c->capacity; i++) {
    if (!c->slots[i].count) continue;
    size_t k = c->slots[i].hash & (capacity - 1);
    while (slots[k].count) k = (k + 1) & (capacity - 1);
    slots[k] = c->slots[i];
  }
  bp_free(c->slots);
  c->slots = slots;
  c->capacity = capacity;
  return true;
}

static bool string_counter_grow(string_counter *c) {
  return string_counter_resize(c, c->capacity ? c->capacity * 2 : 1024);
}

bool train_string_counter_reserve(string_counter *c, size_t arena_bytes, size_t slots) {
  if (slots > c->capacity && !string_counter_resize(c, slots)) return false;
  return bp_buffer_reserve(&c->arena,
                           arena_bytes > c->arena.length ? arena_bytes - c->arena.length : 0);
}

size_t train_string_counter_memory(const string_counter *c) {
  return c->arena.capacity + c->capacity * sizeof *c->slots;
}

bool train_string_counter_add(string_counter *c, const uint8_t *bytes, size_t length,
                              uint64_t count) {
  return train_string_counter_add_hashed(c, bytes, length, train_hash_bytes(bytes, length),
                                         count);
}

bool train_string_counter_add_hashed(string_counter *c, const uint8_t *bytes, size_t length,
                                     uint64_t hash, uint64_t count) {
  if (2 * (c->entries + 1) > c->capacity && !string_counter_grow(c)) return false;
  size_t k = hash & (c->capacity - 1);
  for (;; k = (k + 1) & (c->capacity - 1)) {
    counted_string *s = &c->slots[k];
    if (!s->count) break;
    if (s->hash == hash && s->length == length &&
        memcmp(c->arena.data + s->offset, bytes, length) == 0) {
      s->count += count;
      return true;
    }
  }
  size_t offset = c->arena.length;
  if (!bp_buffer_append(&c->arena, bytes, length)) return false;
  c->slots[k] = (counted_string){hash, count, offset, length};
  c->entries++;
  return true;
}

void train_ngram_table_free(ngram_table *t) {
  bp_free(t->slots);
  memset(t, 0, sizeof *t);
}

bool train_ngram_table_init(ngram_table *t, size_t capacity) {
  t->slots = bp_malloc(capacity * sizeof *t->slots);
  if (!t->slots) return false;
  for (size_t i = 0; i < capacity; i++) t->slots[i].key = EMPTY_KEY;
  t->capacity = capacity;
  t->entries = 0;
  return true;
}
bool train_ngram_table_resize(ngram_table *t, size_t capacity) {
  ngram_table resized;
  if (!train_ngram_table_init(&resized, capacity)) return false;
  for (size_t i = 0; i < t->capacity; i++)
    if (t->slots[i].key != EMPTY_KEY)
      *train_ngram_find(&resized, t->slots[i].key) = t->slots[i];
  resized.entries = t->entries;
  resized.limit = t->limit;
  train_ngram_table_free(t);
  *t = resized;
  return true;
}

/* Adds to a key's count: BP_OK, BP_NOMEM, or BP_TOOBIG when the table would
** outgrow its limit. */
int train_ngram_table_add(ngram_table *t, uint64_t key, uint64_t count) {
  if (2 * (t->entries + 1) > t->capacity) {
    size_t capacity = t->capacity ? t->capacity * 2 : 4096;
    if (t->limit && capacity * sizeof(ngram_slot) > t->limit) return BP_TOOBIG;
    if (!train_ngram_table_resize(t, capacity)) return BP_NOMEM;
  }
  ngram_slot *s = train_ngram_find(t, key);
  if (s->key == EMPTY_KEY) {
    s->key = key;
    s->count = 0;
    t->entries++;
  }
  s->count += count;
  return BP_OK;
}
