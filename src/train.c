/*
** train.c: training a BytePiece model (the reference's BNLM trainer).
**
** 1. bp_trainer_add: NFC, then chunks as the reference's regular expression
**    `.{,10000}\n{1,100}|.{1,10000}` cuts them (with isolate_digits,
**    `\d|[^\n\d]{,10000}\n{1,100}|[^\n\d]{1,10000}`). Each distinct chunk is
**    kept once with its number of occurrences: every later step treats a
**    chunk the same way each time it occurs, so it is done once and weighted.
** 2. Count the n-grams of length 1..order inside chunks; prune those seen
**    fewer than min_count times (lengths 2 and up); turn counts into
**    log P(last byte | the bytes before).
** 3. Segment every chunk by Viterbi over the states "byte i is byte j + 1 of
**    its piece" (j < order, the last state repeating), scored by the n-gram
**    model, with the reference's tie rules; count the pieces.
** 4. Prune pieces: single bytes always stay; pieces too long or too rare are
**    re-split by a unigram tokenizer of the kept ones, which receive their
**    counts; pieces that no piece's best split uses are removed until none
**    is; the vocabulary is cut to size the same way.
** All arithmetic is the reference's, in IEEE double, so the vocabulary and
** the counts come out identical.
**
** With threads > 1, steps 2 to 4 split their work (chunks, or pieces) into
** one share per thread; each thread counts into its own tables, which are
** then added up. Sums do not depend on the order of their terms, so the
** model is the same whatever the number of threads.
*/
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define MAX_CHUNK_CHARACTERS 10000
#define MAX_CHUNK_NEWLINES 100
#define MAX_ORDER 7
#define MAX_THREADS 64
#define EMPTY_KEY UINT64_MAX /* no n-gram of 7 bytes or fewer packs to this */

/* ---- Hash tables ------------------------------------------------------------ */

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  x *= 0xC4CEB9FE1A85EC53ull;
  x ^= x >> 33;
  return x;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
  uint64_t h = mix64(n + 0x9E3779B97F4A7C15ull);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = mix64(h ^ w);
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, p, n);
  return mix64(h ^ w ^ (uint64_t)n << 56);
}

/* Byte strings with counts: chunks, then pieces. */
typedef struct counted_string {
  uint64_t hash;
  uint64_t count; /* 0: empty slot */
  size_t offset;  /* into the arena */
  size_t length;
} counted_string;

typedef struct string_counter {
  bp_buffer arena;
  counted_string *slots;
  size_t capacity, used;
} string_counter;

static void string_counter_free(string_counter *c) {
  bp_buffer_free(&c->arena);
  bp_free(c->slots);
  memset(c, 0, sizeof *c);
}

static bool string_counter_grow(string_counter *c) {
  size_t capacity = c->capacity ? c->capacity * 2 : 1024;
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

static size_t string_counter_memory(const string_counter *c) {
  return c->arena.capacity + c->capacity * sizeof *c->slots;
}

static bool string_counter_add(string_counter *c, const uint8_t *bytes,
                               size_t length, uint64_t count) {
  if (2 * (c->used + 1) > c->capacity && !string_counter_grow(c)) return false;
  uint64_t hash = hash_bytes(bytes, length);
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
  c->used++;
  return true;
}

/* N-grams of one length n >= 3, packed into 64 bits (last byte lowest),
** with their counts, later their log probabilities: one slot, one cache
** line touched per probe. */
typedef struct ngram_slot {
  uint64_t key; /* EMPTY_KEY: free */
  union {
    uint64_t count;
    double log;
  };
} ngram_slot;

typedef struct ngram_table {
  ngram_slot *slots;
  size_t capacity, used;
  size_t limit; /* bytes the slots may take; 0: no limit */
} ngram_table;

static void ngram_table_free(ngram_table *t) {
  bp_free(t->slots);
  memset(t, 0, sizeof *t);
}

static bool ngram_table_init(ngram_table *t, size_t capacity) {
  t->slots = bp_malloc(capacity * sizeof *t->slots);
  if (!t->slots) return false;
  for (size_t i = 0; i < capacity; i++) t->slots[i].key = EMPTY_KEY;
  t->capacity = capacity;
  t->used = 0;
  return true;
}

/* The slot holding `key`, or the free slot where it would go. */
static ngram_slot *ngram_find(const ngram_table *t, uint64_t key) {
  size_t k = mix64(key) & (t->capacity - 1);
  while (t->slots[k].key != key && t->slots[k].key != EMPTY_KEY) k = (k + 1) & (t->capacity - 1);
  return &t->slots[k];
}

/* Adds to a key's count: BP_OK, BP_NOMEM, or BP_TOOBIG when the table would
** outgrow its limit. */
static int ngram_table_add(ngram_table *t, uint64_t key, uint64_t count) {
  if (2 * (t->used + 1) > t->capacity) {
    size_t capacity = t->capacity ? t->capacity * 2 : 4096;
    if (t->limit && capacity * sizeof(ngram_slot) > t->limit) return BP_TOOBIG;
    ngram_table bigger;
    if (!ngram_table_init(&bigger, capacity)) return BP_NOMEM;
    for (size_t i = 0; i < t->capacity; i++)
      if (t->slots[i].key != EMPTY_KEY) *ngram_find(&bigger, t->slots[i].key) = t->slots[i];
    bigger.used = t->used;
    bigger.limit = t->limit;
    ngram_table_free(t);
    *t = bigger;
  }
  ngram_slot *s = ngram_find(t, key);
  if (s->key == EMPTY_KEY) {
    s->key = key;
    s->count = 0;
    t->used++;
  }
  s->count += count;
  return BP_OK;
}

/* ---- Spill files --------------------------------------------------------------
** Byte strings with counts, written to an anonymous temporary file as
** records (count: 8 bytes, length: 4 bytes, the bytes) and read back in
** blocks of about a given size.
*/
#define PIECE_BUCKETS 16

typedef struct chunk_view {
  const uint8_t *bytes;
  uint64_t count;
  size_t length;
} chunk_view;

/* A block of byte strings to work on, in memory or read from a file. */
typedef struct block {
  chunk_view *views;
  size_t count, capacity;
  bp_buffer storage;
} block;

static void block_free(block *b) {
  bp_free(b->views);
  bp_buffer_free(&b->storage);
  memset(b, 0, sizeof *b);
}

static bool block_push(block *b, const uint8_t *bytes, size_t length, uint64_t count) {
  if (b->count == b->capacity) {
    size_t capacity = b->capacity ? b->capacity * 2 : 1024;
    chunk_view *views = bp_realloc(b->views, capacity * sizeof *views);
    if (!views) return false;
    b->views = views;
    b->capacity = capacity;
  }
  b->views[b->count++] = (chunk_view){bytes, count, length};
  return true;
}

static bool record_write(FILE *f, const uint8_t *bytes, size_t length, uint64_t count) {
  uint32_t n = (uint32_t)length;
  return fwrite(&count, sizeof count, 1, f) == 1 && fwrite(&n, sizeof n, 1, f) == 1 &&
         fwrite(bytes, 1, length, f) == length;
}

static int spill_error(bp_error *err, const char *what) {
  return bp_fail(err, BP_IO, "cannot %s a temporary file: %s", what, strerror(errno));
}

/* Reads the next records of f into b (emptied first), about `limit` bytes
** of them; *more is false at the end of the file. */
static int block_read(FILE *f, block *b, size_t limit, bool *more, bp_error *err) {
  b->count = 0;
  b->storage.length = 0;
  *more = true;
  while (b->storage.length < limit) {
    uint64_t count;
    uint32_t length;
    if (fread(&count, sizeof count, 1, f) != 1) {
      if (ferror(f)) return spill_error(err, "read");
      *more = false;
      break;
    }
    if (fread(&length, sizeof length, 1, f) != 1 || !bp_buffer_reserve(&b->storage, length) ||
        fread(b->storage.data + b->storage.length, 1, length, f) != length)
      return ferror(f) || feof(f) ? spill_error(err, "read") : bp_fail_nomem(err);
    /* Offsets now, pointers once the storage stops moving. */
    if (!block_push(b, (const uint8_t *)(uintptr_t)b->storage.length, length, count))
      return bp_fail_nomem(err);
    b->storage.length += length;
  }
  for (size_t i = 0; i < b->count; i++)
    b->views[i].bytes = (const uint8_t *)b->storage.data + (uintptr_t)b->views[i].bytes;
  return BP_OK;
}

/* ---- The trainer -------------------------------------------------------------- */

struct bp_trainer {
  bp_train_options options;
  string_counter chunks;
  FILE *chunk_file;     /* chunks spilled when over a third of the memory */
  uint64_t bytes;       /* total, with repetitions */
  /* The n-gram model: counts, then log conditional probabilities. Lengths 1
  ** and 2 are arrays; longer ones hash tables, of the n-grams seen at least
  ** min_count times only. */
  uint64_t counts1[256];
  uint64_t *counts2;
  double logs1[256];
  double *logs2;
  ngram_table tables[MAX_ORDER + 1]; /* index n, used for n >= 3 */
  /* Pieces: counted in memory, or spilled to buckets by hash. */
  string_counter pieces;
  FILE *piece_buckets[PIECE_BUCKETS];
  pthread_mutex_t bucket_lock;
  FILE *dropped_file; /* pieces pruning drops, when spilled */
};

void bp_train_options_init(bp_train_options *o) {
  memset(o, 0, sizeof *o);
  o->order = 6;
  o->vocab_size = 10000;
  o->max_piece_length = 36;
  o->min_count = 2;
  o->isolate_digits = 0;
  o->ensure_unicode = 1;
  o->threads = 1;
}

int bp_trainer_new(const bp_train_options *options, bp_trainer **out,
                   bp_error *err) {
  *out = NULL;
  if (options->order < 1 || options->order > MAX_ORDER)
    return bp_fail(err, BP_INVALID, "order must be an integer from 1 to %d", MAX_ORDER);
  if (options->vocab_size < 259)
    return bp_fail(err, BP_INVALID, "vocab_size must be at least 259 (256 bytes and 3 reserved ids)");
  if (options->max_piece_length < 1 || options->max_piece_length > BP_MAX_PIECE_BYTES)
    return bp_fail(err, BP_INVALID, "max_piece_length must be an integer from 1 to %d",
                   BP_MAX_PIECE_BYTES);
  if (options->min_count < 1)
    return bp_fail(err, BP_INVALID, "min_count must be at least 1");
  if (options->threads < 1 || options->threads > MAX_THREADS)
    return bp_fail(err, BP_INVALID, "threads must be an integer from 1 to %d", MAX_THREADS);
  bp_trainer *t = bp_malloc(sizeof *t);
  if (!t) return bp_fail_nomem(err);
  memset(t, 0, sizeof *t);
  t->options = *options;
  pthread_mutex_init(&t->bucket_lock, NULL);
  *out = t;
  return BP_OK;
}

void bp_trainer_free(bp_trainer *t) {
  if (!t) return;
  string_counter_free(&t->chunks);
  string_counter_free(&t->pieces);
  if (t->chunk_file) fclose(t->chunk_file);
  if (t->dropped_file) fclose(t->dropped_file);
  for (int b = 0; b < PIECE_BUCKETS; b++)
    if (t->piece_buckets[b]) fclose(t->piece_buckets[b]);
  pthread_mutex_destroy(&t->bucket_lock);
  bp_free(t->counts2);
  bp_free(t->logs2);
  for (int n = 0; n <= MAX_ORDER; n++) ngram_table_free(&t->tables[n]);
  bp_free(t);
}

uint64_t bp_trainer_bytes(const bp_trainer *t) { return t->bytes; }

static bool report(const bp_trainer *t, const char *phase, double done) {
  return t->options.progress &&
         t->options.progress(t->options.progress_context, phase, done) != 0;
}

/* The length of the character at p, and whether it is a decimal digit. */
static size_t character(const uint8_t *p, const uint8_t *end, bool text,
                        bool *digit) {
  if (!text || *p < 0x80) {
    *digit = *p >= '0' && *p <= '9';
    return 1;
  }
  utf8proc_int32_t cp;
  utf8proc_ssize_t n = utf8proc_iterate(p, end - p, &cp);
  if (n <= 0) {
    *digit = false;
    return 1;
  }
  *digit = utf8proc_category(cp) == UTF8PROC_CATEGORY_ND;
  return (size_t)n;
}

/* Cuts text into the reference's chunks and counts them. */
static bool add_chunks(bp_trainer *t, const uint8_t *s, size_t len, bool text) {
  const bool isolate = t->options.isolate_digits;
  const uint8_t *end = s + len;
  const uint8_t *p = s;
  while (p < end) {
    bool digit;
    size_t n = character(p, end, text, &digit);
    if (isolate && digit) {
      if (!string_counter_add(&t->chunks, p, n, 1)) return false;
      p += n;
      continue;
    }
    /* The longest run of other characters, up to one past the limit. */
    const uint8_t *run = p, *limit_end = NULL;
    size_t characters = 0;
    while (run < end && *run != '\n') {
      size_t k = character(run, end, text, &digit);
      if (isolate && digit) break;
      if (characters == MAX_CHUNK_CHARACTERS) {
        limit_end = run;
        break;
      }
      run += k;
      characters++;
    }
    const uint8_t *chunk_end;
    if (!limit_end && run < end && *run == '\n') {
      /* .{,10000}\n{1,100} */
      chunk_end = run;
      for (int k = 0; k < MAX_CHUNK_NEWLINES && chunk_end < end && *chunk_end == '\n'; k++)
        chunk_end++;
    } else {
      /* .{1,10000} */
      chunk_end = limit_end ? limit_end : run;
    }
    if (!string_counter_add(&t->chunks, p, (size_t)(chunk_end - p), 1)) return false;
    p = chunk_end;
  }
  return true;
}

/* Moves the distinct chunks counted so far to the chunk file. A chunk can
** then be counted in several places; every step is a sum over occurrences,
** so that changes nothing. */
static int spill_chunks(bp_trainer *t, bp_error *err) {
  if (!t->chunk_file && !(t->chunk_file = tmpfile())) return spill_error(err, "create");
  for (size_t i = 0; i < t->chunks.capacity; i++) {
    const counted_string *c = &t->chunks.slots[i];
    if (c->count && !record_write(t->chunk_file, (const uint8_t *)t->chunks.arena.data + c->offset,
                                  c->length, c->count))
      return spill_error(err, "write");
  }
  string_counter_free(&t->chunks);
  return BP_OK;
}

int bp_trainer_add(bp_trainer *t, const char *text, size_t len, int input,
                   bp_error *err) {
  char *normalized = NULL;
  size_t normalized_len = len;
  if (input == BP_INPUT_TEXT) {
    int rc = bp_normalize(text, len, &normalized, &normalized_len, err);
    if (rc != BP_OK) return rc;
  }
  const uint8_t *bytes = (const uint8_t *)(normalized ? normalized : text);
  bool ok = add_chunks(t, bytes, normalized_len, input == BP_INPUT_TEXT);
  bp_free(normalized);
  if (!ok) return bp_fail_nomem(err);
  t->bytes += normalized_len;
  if (t->options.max_memory && string_counter_memory(&t->chunks) > t->options.max_memory / 3)
    return spill_chunks(t, err);
  return BP_OK;
}

/* ---- Running work on several threads ----------------------------------------- */

/* One pass of work split into `count` shares. Share 0 runs on the calling
** thread, which alone reports progress (a progress callback may use the
** caller's resources); the other shares watch `stop`. */
typedef struct share {
  struct work *work;
  int index;
  int rc;
  bp_error err;
  pthread_t thread;
} share;

typedef struct work {
  bp_trainer *trainer;
  int (*run)(struct work *work, int index, bp_error *err);
  int count;
  atomic_int stop;
  void *data; /* what the pass needs */
} work;

static void *run_share(void *argument) {
  share *s = argument;
  s->rc = s->work->run(s->work, s->index, &s->err);
  if (s->rc != BP_OK) atomic_store(&s->work->stop, 1);
  return NULL;
}

static int run_work(work *w, bp_error *err) {
  const int count = w->count;
  /* bp_trainer_new keeps threads in [1, MAX_THREADS]. */
  if (count < 1 || count > MAX_THREADS)
    return bp_fail(err, BP_INVALID, "threads must be an integer from 1 to %d", MAX_THREADS);
  share shares[MAX_THREADS];
  atomic_init(&w->stop, 0);
  int started = 1;
  for (int i = 0; i < count; i++) shares[i] = (share){w, i, BP_OK, {0, ""}, 0};
  for (; started < count; started++)
    if (pthread_create(&shares[started].thread, NULL, run_share, &shares[started]) != 0)
      break;
  /* Shares without a thread of their own run here, after share 0. */
  run_share(&shares[0]);
  for (int i = started; i < count; i++) run_share(&shares[i]);
  for (int i = 1; i < started; i++) pthread_join(shares[i].thread, NULL);
  for (int i = 0; i < count; i++)
    if (shares[i].rc != BP_OK && shares[i].rc != BP_INTERRUPT) {
      *err = shares[i].err;
      return shares[i].rc;
    }
  for (int i = 0; i < count; i++)
    if (shares[i].rc != BP_OK) {
      *err = shares[i].err;
      return shares[i].rc;
    }
  return BP_OK;
}

/* The part of [0, total) that share `index` of `count` works on. */
static void share_range(size_t total, int index, int count, size_t *begin, size_t *end) {
  *begin = total * (size_t)index / (size_t)count;
  *end = total * (size_t)(index + 1) / (size_t)count;
}

/* Reports progress from share 0 and tells every share whether to stop. */
static bool should_stop(work *w, int index, const char *phase, double done) {
  if (index == 0 && report(w->trainer, phase, done)) atomic_store(&w->stop, 1);
  return atomic_load(&w->stop) != 0;
}

/* Runs `run` on the threads for every block of chunks: the chunks in
** memory as one block, or, once they were spilled, the chunk file read back
** a block at a time. *chunks (a field of `pass`) points at the block. */
static int share_chunk_blocks(bp_trainer *t, int (*run)(work *, int, bp_error *),
                              void *pass, const block **chunks, bp_error *err) {
  block b = {0};
  int rc = BP_OK;
  work w = {.trainer = t, .run = run, .count = t->options.threads, .data = pass};
  *chunks = &b;
  if (!t->chunk_file) {
    for (size_t i = 0; i < t->chunks.capacity && rc == BP_OK; i++) {
      const counted_string *c = &t->chunks.slots[i];
      if (c->count && !block_push(&b, (const uint8_t *)t->chunks.arena.data + c->offset,
                                  c->length, c->count))
        rc = bp_fail_nomem(err);
    }
    if (rc == BP_OK) rc = run_work(&w, err);
  } else {
    rewind(t->chunk_file);
    bool more = true;
    while (more && rc == BP_OK) {
      rc = block_read(t->chunk_file, &b, (size_t)(t->options.max_memory / 3), &more, err);
      if (rc == BP_OK && b.count) rc = run_work(&w, err);
    }
  }
  *chunks = NULL;
  block_free(&b);
  return rc;
}

/* ---- Step 2: the n-gram model ----------------------------------------------- */

static uint64_t ngram_mask(int n) { return n >= 8 ? UINT64_MAX : (1ull << (8 * n)) - 1; }

/* The count of an n-gram (n >= 2) while counting. */
static uint64_t ngram_count(const bp_trainer *t, int n, uint64_t key) {
  if (n == 2) return t->counts2[key];
  const ngram_slot *s = ngram_find(&t->tables[n], key);
  return s->key == key ? s->count : 0;
}

/* What one share of a counting pass fills: for n = 2 (lengths 1 and 2 at
** once) arrays, for longer n a table of its own. */
typedef struct ngram_share {
  uint64_t counts1[256];
  uint64_t *counts2;
  ngram_table table;
} ngram_share;

typedef struct ngram_pass {
  int n;
  /* Only n-grams whose hash falls in this partition are counted, so that a
  ** pass fits its memory. */
  uint64_t partition, partitions;
  const block *chunks;
  ngram_share shares[MAX_THREADS];
} ngram_pass;

/* Progress phases, one per n-gram length counted. */
static const char *const counting_phase[MAX_ORDER + 1] = {
    "", "", "counting 1- and 2-grams", "counting 3-grams", "counting 4-grams",
    "counting 5-grams", "counting 6-grams", "counting 7-grams"};

static uint64_t partition_of(uint64_t key, uint64_t partitions) {
  return (mix64(key) >> 32) % partitions;
}

static int count_ngram_share(work *w, int index, bp_error *err) {
  bp_trainer *t = w->trainer;
  ngram_pass *pass = w->data;
  ngram_share *mine = &pass->shares[index];
  const int n = pass->n;
  /* count_ngrams counts lengths 2 to order, at most MAX_ORDER. */
  if (n < 2 || n > MAX_ORDER) return bp_fail(err, BP_INVALID, "no n-grams of length %d", n);
  const uint64_t min_count = t->options.min_count;
  if (n == 2 && !mine->counts2) {
    mine->counts2 = bp_malloc(65536 * sizeof *mine->counts2);
    if (!mine->counts2) return bp_fail_nomem(err);
    memset(mine->counts2, 0, 65536 * sizeof *mine->counts2);
  } else if (n > 2 && !mine->table.slots) {
    if (!ngram_table_init(&mine->table, 4096)) return bp_fail_nomem(err);
    if (t->options.max_memory)
      mine->table.limit = (size_t)(t->options.max_memory / 3 / (uint64_t)w->count);
  }
  size_t begin, end;
  share_range(pass->chunks->count, index, w->count, &begin, &end);
  for (size_t i = begin; i < end; i++) {
    const chunk_view *c = &pass->chunks->views[i];
    const uint8_t *chunk = c->bytes;
    if (n == 2) {
      for (size_t e = 0; e < c->length; e++) {
        mine->counts1[chunk[e]] += c->count;
        if (e >= 1) mine->counts2[chunk[e - 1] << 8 | chunk[e]] += c->count;
      }
    } else {
      uint64_t rolling = 0, mask = ngram_mask(n), shorter = ngram_mask(n - 1);
      /* Whether the (n-1)-gram ending at the previous byte is frequent: it
      ** is the first n - 1 bytes of the n-gram ending here. */
      bool previous_frequent = false;
      /* The key a few bytes ahead, whose slots are fetched early: lookups
      ** in big tables are cache misses. */
      enum { AHEAD = 4 };
      uint64_t ahead = 0;
      for (size_t e = 0; e < AHEAD && e < c->length; e++) ahead = ahead << 8 | chunk[e];
      const ngram_table *shorter_table = n > 3 ? &t->tables[n - 1] : NULL;
      for (size_t e = 0; e < c->length; e++) {
        rolling = rolling << 8 | chunk[e];
        if (e + AHEAD < c->length) {
          ahead = ahead << 8 | chunk[e + AHEAD];
          if (shorter_table)
            __builtin_prefetch(&shorter_table->slots[mix64(ahead & shorter) &
                                                     (shorter_table->capacity - 1)]);
          __builtin_prefetch(&mine->table.slots[mix64(ahead & mask) & (mine->table.capacity - 1)]);
        }
        if (e + 2 < (size_t)n) continue;
        bool frequent = ngram_count(t, n - 1, rolling & shorter) >= min_count;
        if (e + 1 >= (size_t)n && frequent && previous_frequent &&
            (pass->partitions == 1 ||
             partition_of(rolling & mask, pass->partitions) == pass->partition)) {
          int rc = ngram_table_add(&mine->table, rolling & mask, c->count);
          if (rc == BP_NOMEM) return bp_fail_nomem(err);
          if (rc == BP_TOOBIG) return bp_fail(err, BP_TOOBIG, "partition too large");
        }
        previous_frequent = frequent;
      }
    }
    if ((i - begin) % 4096 == 4095 &&
        should_stop(w, index, counting_phase[n], (double)(i - begin) / (double)(end - begin)))
      return bp_fail(err, BP_INTERRUPT, "interrupted");
  }
  return BP_OK;
}

/* Counts the n-grams of length n >= 3 of one partition, then keeps those
** seen at least min_count times in `kept`. */
static int count_ngram_partition(bp_trainer *t, ngram_pass *pass, ngram_table *kept,
                                 bp_error *err) {
  int rc = share_chunk_blocks(t, count_ngram_share, pass, &pass->chunks, err);
  ngram_table *sum = &pass->shares[0].table;
  for (int s = 1; s < t->options.threads; s++) {
    ngram_table *part = &pass->shares[s].table;
    for (size_t i = 0; i < part->capacity && rc == BP_OK; i++)
      if (part->slots[i].key != EMPTY_KEY) {
        rc = ngram_table_add(sum, part->slots[i].key, part->slots[i].count);
        if (rc == BP_NOMEM) bp_fail_nomem(err);
        if (rc == BP_TOOBIG) bp_fail(err, rc, "partition too large");
      }
    ngram_table_free(part);
  }
  for (size_t i = 0; i < sum->capacity && rc == BP_OK; i++)
    if (sum->slots[i].key != EMPTY_KEY && sum->slots[i].count >= t->options.min_count &&
        ngram_table_add(kept, sum->slots[i].key, sum->slots[i].count) != BP_OK)
      rc = bp_fail_nomem(err);
  ngram_table_free(sum);
  return rc;
}

/* Counts n-grams length by length. An n-gram is never seen more often than
** its first or last n - 1 bytes, so when either of those is rarer than
** min_count the n-gram would be pruned anyway, and it is not counted: the
** result is exact and the tables hold only what pruning can keep. When a
** length's counts outgrow the memory allowed, they are counted again in
** twice as many partitions of the n-grams. */
static int count_ngrams(bp_trainer *t, bp_error *err) {
  const int order = t->options.order;
  ngram_pass *pass = bp_malloc(sizeof *pass);
  if (!pass) return bp_fail_nomem(err);
  memset(pass, 0, sizeof *pass);
  pass->n = 2;
  pass->partitions = 1;
  int rc = report(t, counting_phase[2], 0) ? bp_fail(err, BP_INTERRUPT, "interrupted")
                                           : share_chunk_blocks(t, count_ngram_share, pass, &pass->chunks, err);
  for (int s = 0; s < t->options.threads; s++) {
    ngram_share *part = &pass->shares[s];
    if (rc == BP_OK) {
      for (int b = 0; b < 256; b++) t->counts1[b] += part->counts1[b];
      if (!t->counts2) {
        t->counts2 = part->counts2;
        part->counts2 = NULL;
      } else {
        for (int g = 0; g < 65536; g++) t->counts2[g] += part->counts2[g];
      }
    }
    bp_free(part->counts2);
    part->counts2 = NULL;
  }
  for (int n = 3; n <= order && rc == BP_OK; n++) {
    if (report(t, counting_phase[n], 0)) {
      rc = bp_fail(err, BP_INTERRUPT, "interrupted");
      break;
    }
    for (uint64_t partitions = 1;; partitions *= 2) {
      ngram_table kept = {0};
      rc = ngram_table_init(&kept, 4096) ? BP_OK : bp_fail_nomem(err);
      for (uint64_t p = 0; p < partitions && rc == BP_OK; p++) {
        memset(pass, 0, sizeof *pass);
        *pass = (ngram_pass){.n = n, .partition = p, .partitions = partitions};
        rc = count_ngram_partition(t, pass, &kept, err);
      }
      for (int s = 0; s < t->options.threads; s++) ngram_table_free(&pass->shares[s].table);
      if (rc == BP_TOOBIG && partitions < 65536) {
        ngram_table_free(&kept);
        continue;
      }
      if (rc == BP_OK) t->tables[n] = kept;
      else ngram_table_free(&kept);
      break;
    }
  }
  if (rc == BP_TOOBIG)
    rc = bp_fail(err, BP_TOOBIG, "max_memory is too small to count the n-grams");
  bp_free(pass);
  return rc;
}

/* Keeps the n-grams seen at least min_count times (all for n <= 1) as
** log(count), then makes each log P(last byte | the others): the reference's
** prune_ngrams, step for step. */
static int prune_ngrams(bp_trainer *t, bp_error *err) {
  const int order = t->options.order;
  uint64_t total = t->bytes;
  for (int b = 0; b < 256; b++)
    if (!t->counts1[b]) {
      t->counts1[b] = 1;
      total++;
    }
  for (int b = 0; b < 256; b++) t->logs1[b] = log((double)t->counts1[b]);
  if (order >= 2) {
    t->logs2 = bp_malloc(65536 * sizeof *t->logs2);
    if (!t->logs2) return bp_fail_nomem(err);
    for (int g = 0; g < 65536; g++)
      t->logs2[g] = t->counts2[g] >= t->options.min_count && t->counts2[g]
                        ? log((double)t->counts2[g]) : -INFINITY;
  }
  bp_free(t->counts2);
  t->counts2 = NULL;
  for (int n = 3; n <= order; n++) {
    ngram_table *table = &t->tables[n];
    ngram_table kept;
    size_t capacity = 4096;
    size_t survivors = 0;
    for (size_t i = 0; i < table->capacity; i++)
      if (table->slots[i].key != EMPTY_KEY && table->slots[i].count >= t->options.min_count)
        survivors++;
    while (capacity < 2 * survivors + 2) capacity *= 2;
    if (!ngram_table_init(&kept, capacity)) return bp_fail_nomem(err);
    for (size_t i = 0; i < table->capacity; i++) {
      const ngram_slot *s = &table->slots[i];
      if (s->key == EMPTY_KEY || s->count < t->options.min_count) continue;
      ngram_slot *k = ngram_find(&kept, s->key);
      k->key = s->key;
      k->log = log((double)s->count);
      kept.used++;
    }
    ngram_table_free(table);
    *table = kept;
  }
  /* Conditional probabilities, longest first, each from the unconditioned
  ** log count of its prefix. */
  for (int n = order; n >= 3; n--) {
    ngram_table *table = &t->tables[n];
    for (size_t i = 0; i < table->capacity; i++) {
      ngram_slot *s = &table->slots[i];
      if (s->key == EMPTY_KEY) continue;
      uint64_t prefix = s->key >> 8;
      s->log -= n == 3 ? t->logs2[prefix] : ngram_find(&t->tables[n - 1], prefix)->log;
    }
  }
  if (order >= 2)
    for (int g = 0; g < 65536; g++) t->logs2[g] -= t->logs1[g >> 8];
  double log_total = log((double)total);
  for (int b = 0; b < 256; b++) t->logs1[b] -= log_total;
  return BP_OK;
}

/* log P of the n-gram ending at the lowest byte of `rolling`, or -inf. */
static double ngram_log(const bp_trainer *t, int n, uint64_t rolling) {
  if (n == 1) return t->logs1[rolling & 0xFF];
  if (n == 2) return t->logs2[rolling & 0xFFFF];
  uint64_t key = rolling & ngram_mask(n);
  const ngram_slot *s = ngram_find(&t->tables[n], key);
  return s->key == key ? s->log : -INFINITY;
}

/* ---- Step 3: segmenting with the n-gram model -------------------------------- */

/* The first index of the maximum, as numpy's argmax: 0 when all are -inf. */
static int first_max(const double *v, int n, double *max) {
  int best = 0;
  for (int k = 1; k < n; k++)
    if (v[k] > v[best]) best = k;
  *max = v[best];
  return best;
}

/* Splits a chunk into pieces and counts each `weight` times. */
static int segment_chunk(bp_trainer *t, const uint8_t *chunk, size_t len,
                         uint64_t weight, uint8_t *back, uint8_t *states,
                         string_counter *pieces) {
  const int order = t->options.order;
  const bool ensure_unicode = t->options.ensure_unicode;
  double previous[MAX_ORDER], current[MAX_ORDER], candidates[MAX_ORDER];
  if (len == 0) return BP_OK; /* chunks are never empty; nothing to count */
  uint64_t rolling = 0;
  for (size_t i = 0; i < len; i++) {
    rolling = rolling << 8 | chunk[i];
    /* The longer n-grams' slots are likely cache misses: ask for them all
    ** at once rather than one after another. */
    for (int n = 3; n <= order; n++) {
      const ngram_table *table = &t->tables[n];
      __builtin_prefetch(&table->slots[mix64(rolling & ngram_mask(n)) & (table->capacity - 1)]);
    }
    /* An n-gram whose last n - 1 bytes were pruned was pruned too: once one
    ** is missing, so are all the longer ones ending here. */
    bool missing = false;
    for (int j = 0; j < order; j++) {
      double node = -INFINITY;
      if ((size_t)j <= i && !missing) {
        node = ngram_log(t, j + 1, rolling);
        missing = node == -INFINITY;
      }
      if (j == 0 && ensure_unicode && (chunk[i] & 0xC0) == 0x80) node = -INFINITY;
      if (i == 0) {
        current[j] = node;
        back[j] = 0;
        continue;
      }
      /* Predecessors: any state before state 0; j - 1 before j; j - 1 and
      ** itself before the last state. The node score is added before
      ** comparing (sums can tie that differed), the first maximum wins, and
      ** when every sum is -inf the back pointer is 0: numpy's argmax. */
      uint8_t *pointer = &back[i * order + j];
      if (j == 0) {
        for (int k = 0; k < order; k++) candidates[k] = previous[k] + node;
        *pointer = (uint8_t)first_max(candidates, order, &current[0]);
      } else if (j < order - 1) {
        current[j] = previous[j - 1] + node;
        *pointer = current[j] == -INFINITY ? 0 : (uint8_t)(j - 1);
      } else {
        double from_before = previous[j - 1] + node, from_itself = previous[j] + node;
        bool itself = from_itself > from_before;
        current[j] = itself ? from_itself : from_before;
        *pointer = current[j] == -INFINITY ? 0 : (uint8_t)(itself ? j : j - 1);
      }
    }
    memcpy(previous, current, sizeof previous);
  }
  double best;
  int state = first_max(previous, order, &best);
  for (size_t i = len; i-- > 0;) {
    states[i] = (uint8_t)state;
    state = back[i * order + state];
  }
  size_t start = 0;
  for (size_t i = 1; i <= len; i++)
    if (i == len || states[i] == 0) {
      if (!string_counter_add(pieces, chunk + start, i - start, weight))
        return BP_NOMEM;
      start = i;
    }
  return BP_OK;
}

#define MAX_CHUNK_BYTES (4 * MAX_CHUNK_CHARACTERS + MAX_CHUNK_NEWLINES)

typedef struct piece_pass {
  const block *chunks;
  string_counter pieces[MAX_THREADS];
} piece_pass;

/* Moves a piece counter's entries to the bucket files, by hash. */
static int spill_pieces(bp_trainer *t, string_counter *c, bp_error *err) {
  int rc = BP_OK;
  pthread_mutex_lock(&t->bucket_lock);
  for (int b = 0; b < PIECE_BUCKETS && rc == BP_OK; b++)
    if (!t->piece_buckets[b] && !(t->piece_buckets[b] = tmpfile()))
      rc = spill_error(err, "create");
  for (size_t i = 0; i < c->capacity && rc == BP_OK; i++) {
    const counted_string *s = &c->slots[i];
    if (s->count && !record_write(t->piece_buckets[(s->hash >> 40) % PIECE_BUCKETS],
                                  (const uint8_t *)c->arena.data + s->offset, s->length, s->count))
      rc = spill_error(err, "write");
  }
  pthread_mutex_unlock(&t->bucket_lock);
  string_counter_free(c);
  return rc;
}

static int count_piece_share(work *w, int index, bp_error *err) {
  bp_trainer *t = w->trainer;
  piece_pass *pass = w->data;
  string_counter *mine = &pass->pieces[index];
  uint8_t *back = bp_malloc(MAX_CHUNK_BYTES * (size_t)t->options.order);
  uint8_t *states = bp_malloc(MAX_CHUNK_BYTES);
  if (!back || !states) {
    bp_free(back);
    bp_free(states);
    return bp_fail_nomem(err);
  }
  int rc = BP_OK;
  size_t begin, end;
  size_t limit = (size_t)(t->options.max_memory / 3 / (uint64_t)w->count);
  share_range(pass->chunks->count, index, w->count, &begin, &end);
  for (size_t i = begin; i < end && rc == BP_OK; i++) {
    const chunk_view *c = &pass->chunks->views[i];
    if (segment_chunk(t, c->bytes, c->length, c->count, back, states, mine) != BP_OK)
      rc = bp_fail_nomem(err);
    else if (limit && string_counter_memory(mine) > limit)
      rc = spill_pieces(t, mine, err);
    else if ((i - begin) % 1024 == 1023 &&
             should_stop(w, index, "segmenting", (double)(i - begin) / (double)(end - begin)))
      rc = bp_fail(err, BP_INTERRUPT, "interrupted");
  }
  bp_free(back);
  bp_free(states);
  return rc;
}

/* Segments every chunk and counts the pieces: in t->pieces, or, once they
** outgrew their memory, in the bucket files. */
static int count_pieces(bp_trainer *t, bp_error *err) {
  piece_pass *pass = bp_malloc(sizeof *pass);
  if (!pass) return bp_fail_nomem(err);
  memset(pass, 0, sizeof *pass);
  int rc = share_chunk_blocks(t, count_piece_share, pass, &pass->chunks, err);
  for (int s = 0; s < t->options.threads; s++) {
    string_counter *c = &pass->pieces[s];
    if (rc == BP_OK && t->piece_buckets[0]) {
      rc = spill_pieces(t, c, err);
    } else if (rc == BP_OK && s == 0) {
      t->pieces = *c;
      *c = (string_counter){0};
    } else {
      for (size_t i = 0; i < c->capacity && rc == BP_OK; i++)
        if (c->slots[i].count &&
            !string_counter_add(&t->pieces, (const uint8_t *)c->arena.data + c->slots[i].offset,
                                c->slots[i].length, c->slots[i].count))
          rc = bp_fail_nomem(err);
    }
    string_counter_free(c);
  }
  bp_free(pass);
  return rc;
}

/* ---- Step 4: pruning pieces ---------------------------------------------------- */

/* Re-splitting adds a dropped piece's count once for every piece of its
** split, so counts can grow past anything the model held. Every such sum is
** checked against INT64_MAX, the limit on a model's counts and their total
** (bp_model_build), which also keeps it from wrapping around. */
#define COUNTS_TOO_BIG "the re-split piece counts add up to more than 2^63 - 1"

static bool count_add(uint64_t *sum, uint64_t add) {
  uint64_t result;
  if (__builtin_add_overflow(*sum, add, &result) || result > INT64_MAX) return false;
  *sum = result;
  return true;
}

/* A list of pieces with counts; bytes point into an arena owned elsewhere. */
typedef struct piece_list {
  bp_piece *pieces; /* id = index + 3 while building tokenizers */
  size_t count;
} piece_list;

/* A unigram tokenizer of the list, used only inside training: its digest is
** never computed. */
static int tokenizer(const piece_list *list, bp_model **m, bp_error *err) {
  for (size_t i = 0; i < list->count; i++) list->pieces[i].id = (uint32_t)(i + BP_FIRST_PIECE_ID);
  return bp_model_assemble(list->pieces, list->count, false, BP_DIGEST_NONE, NULL, NULL, m, err);
}

/* Splits each of `sources` with the tokenizer `m` and adds the source's
** count to hits[id - 3] of every piece of its split. */
typedef struct split_pass {
  const bp_model *model;
  const bp_piece *sources;
  size_t source_count;
  size_t piece_count;
  uint64_t *hits[MAX_THREADS];
} split_pass;

static int split_share(work *w, int index, bp_error *err) {
  split_pass *pass = w->data;
  uint64_t *hits = bp_malloc(pass->piece_count * sizeof *hits);
  if (!hits) return bp_fail_nomem(err);
  memset(hits, 0, pass->piece_count * sizeof *hits);
  pass->hits[index] = hits;
  size_t begin, end;
  share_range(pass->source_count, index, w->count, &begin, &end);
  bp_ids ids = {0};
  int rc = BP_OK;
  for (size_t s = begin; s < end && rc == BP_OK; s++) {
    ids.count = 0;
    rc = bp_segment_whole(pass->model, pass->sources[s].bytes, pass->sources[s].length, &ids, err);
    for (size_t k = 0; rc == BP_OK && k < ids.count; k++)
      if (!count_add(&hits[ids.ids[k] - BP_FIRST_PIECE_ID], pass->sources[s].count))
        rc = bp_fail(err, BP_TOOBIG, COUNTS_TOO_BIG);
    if (rc == BP_OK && (s - begin) % 65536 == 65535 &&
        should_stop(w, index, "pruning pieces", (double)(s - begin) / (double)(end - begin)))
      rc = bp_fail(err, BP_INTERRUPT, "interrupted");
  }
  bp_ids_free(&ids);
  return rc;
}

/* Returns in *hits (to free with bp_free) the summed counts of the splits
** of `sources` by the tokenizer m, which has `piece_count` pieces. */
static int count_splits(bp_trainer *t, const bp_model *m, size_t piece_count,
                        const bp_piece *sources, size_t source_count, uint64_t **hits,
                        bp_error *err) {
  *hits = NULL;
  split_pass pass = {m, sources, source_count, piece_count, {NULL}};
  work w = {.trainer = t, .run = split_share, .count = t->options.threads, .data = &pass};
  int rc = run_work(&w, err);
  for (int s = 1; s < w.count; s++) {
    for (size_t i = 0; rc == BP_OK && i < piece_count; i++)
      if (!count_add(&pass.hits[0][i], pass.hits[s][i])) rc = bp_fail(err, BP_TOOBIG, COUNTS_TOO_BIG);
    bp_free(pass.hits[s]);
  }
  /* The recounted pieces become a tokenizer's counts (remove_wasted):
  ** their total must fit too. */
  uint64_t total = 0;
  for (size_t i = 0; rc == BP_OK && i < piece_count; i++)
    if (!count_add(&total, pass.hits[0][i])) rc = bp_fail(err, BP_TOOBIG, COUNTS_TOO_BIG);
  if (rc == BP_OK) *hits = pass.hits[0];
  else bp_free(pass.hits[0]);
  return rc;
}

/* The same with a tokenizer of `pieces`. */
static int split_and_count(bp_trainer *t, piece_list *pieces, const bp_piece *sources,
                           size_t source_count, uint64_t **hits, bp_error *err) {
  bp_model *m;
  int rc = tokenizer(pieces, &m, err);
  if (rc != BP_OK) return rc;
  rc = count_splits(t, m, pieces->count, sources, source_count, hits, err);
  bp_model_release(m);
  return rc;
}

static int add_hits(piece_list *kept, uint64_t *hits, bp_error *err) {
  int rc = BP_OK;
  uint64_t total = 0;
  for (size_t i = 0; i < kept->count && rc == BP_OK; i++)
    if (!count_add(&kept->pieces[i].count, hits[i]) || !count_add(&total, kept->pieces[i].count))
      rc = bp_fail(err, BP_TOOBIG, COUNTS_TOO_BIG);
  bp_free(hits);
  return rc;
}

/* Adds the count of every piece of `dropped` to the pieces of `kept` that
** its best split (by a tokenizer of `kept`) uses: the reference's
** split_pieces. */
static int resplit(bp_trainer *t, piece_list *kept, const bp_piece *dropped,
                   size_t dropped_count, bp_error *err) {
  if (!dropped_count) return BP_OK;
  uint64_t *added;
  int rc = split_and_count(t, kept, dropped, dropped_count, &added, err);
  if (rc == BP_OK) rc = add_hits(kept, added, err);
  return rc;
}

/* The same for the dropped pieces of a file, a block at a time; the kept
** counts change only once all are split. */
static int resplit_file(bp_trainer *t, piece_list *kept, FILE *dropped, bp_error *err) {
  bp_model *m;
  int rc = tokenizer(kept, &m, err);
  if (rc != BP_OK) return rc;
  uint64_t *total = bp_malloc(kept->count * sizeof *total);
  if (!total) {
    bp_model_release(m);
    return bp_fail_nomem(err);
  }
  memset(total, 0, kept->count * sizeof *total);
  block b = {0};
  bp_piece *sources = NULL;
  size_t capacity = 0;
  bool more = true;
  rewind(dropped);
  while (rc == BP_OK && more) {
    rc = block_read(dropped, &b, (size_t)(t->options.max_memory / 3), &more, err);
    if (rc != BP_OK || !b.count) break;
    if (b.count > capacity) {
      bp_free(sources);
      capacity = b.count;
      if (!(sources = bp_malloc(capacity * sizeof *sources))) {
        rc = bp_fail_nomem(err);
        break;
      }
    }
    for (size_t i = 0; i < b.count; i++)
      sources[i] = (bp_piece){b.views[i].bytes, (uint32_t)b.views[i].length, 0, b.views[i].count, 0.0};
    uint64_t *hits;
    rc = count_splits(t, m, kept->count, sources, b.count, &hits, err);
    if (rc == BP_OK) {
      for (size_t i = 0; i < kept->count && rc == BP_OK; i++)
        if (!count_add(&total[i], hits[i])) rc = bp_fail(err, BP_TOOBIG, COUNTS_TOO_BIG);
      bp_free(hits);
    }
  }
  if (rc == BP_OK) rc = add_hits(kept, total, err);
  else bp_free(total);
  bp_free(sources);
  block_free(&b);
  bp_model_release(m);
  return rc;
}

static bool keeps_piece(const bp_trainer *t, size_t length, uint64_t count) {
  return length == 1 || (length <= (size_t)t->options.max_piece_length &&
                         count >= t->options.min_count);
}

/* For spilled pieces: sums each bucket's counts, keeps in t->pieces what
** step b keeps, and writes the rest to the dropped file. */
static int sort_out_buckets(bp_trainer *t, bp_error *err) {
  if (!(t->dropped_file = tmpfile())) return spill_error(err, "create");
  block b = {0};
  int rc = BP_OK;
  for (int k = 0; k < PIECE_BUCKETS && rc == BP_OK; k++) {
    string_counter sum = {0};
    bool more = true;
    rewind(t->piece_buckets[k]);
    while (more && rc == BP_OK) {
      rc = block_read(t->piece_buckets[k], &b, (size_t)(t->options.max_memory / 3), &more, err);
      for (size_t i = 0; i < b.count && rc == BP_OK; i++)
        if (!string_counter_add(&sum, b.views[i].bytes, b.views[i].length, b.views[i].count))
          rc = bp_fail_nomem(err);
    }
    for (size_t i = 0; i < sum.capacity && rc == BP_OK; i++) {
      const counted_string *s = &sum.slots[i];
      if (!s->count) continue;
      const uint8_t *bytes = (const uint8_t *)sum.arena.data + s->offset;
      if (keeps_piece(t, s->length, s->count)) {
        if (!string_counter_add(&t->pieces, bytes, s->length, s->count)) rc = bp_fail_nomem(err);
      } else if (!record_write(t->dropped_file, bytes, s->length, s->count)) {
        rc = spill_error(err, "write");
      }
    }
    string_counter_free(&sum);
    fclose(t->piece_buckets[k]);
    t->piece_buckets[k] = NULL;
  }
  block_free(&b);
  return rc;
}

/* Re-splits every piece with a tokenizer of all of them, recounts, and drops
** pieces no split uses, until the number of pieces stops changing. */
static int remove_wasted(bp_trainer *t, piece_list *list, bp_error *err) {
  for (;;) {
    uint64_t *recount;
    int rc = split_and_count(t, list, list->pieces, list->count, &recount, err);
    if (rc != BP_OK) return rc;
    size_t before = list->count, after = 0;
    for (size_t i = 0; i < before; i++)
      if (recount[i]) {
        list->pieces[after] = list->pieces[i];
        list->pieces[after++].count = recount[i];
      }
    bp_free(recount);
    list->count = after;
    if (after == before) return BP_OK;
  }
}

/* Multi-byte after single-byte, count descending, length descending, bytes
** ascending: the order in which pieces earn a place in the vocabulary. */
static int compare_by_merit(const void *a, const void *b) {
  const bp_piece *x = a, *y = b;
  bool x_multi = x->length > 1, y_multi = y->length > 1;
  if (x_multi != y_multi) return x_multi ? 1 : -1;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  if (x->length != y->length) return x->length > y->length ? -1 : 1;
  return memcmp(x->bytes, y->bytes, x->length);
}

/* Byte length, then bytes: the order of ids. */
static int compare_for_ids(const void *a, const void *b) {
  const bp_piece *x = a, *y = b;
  if (x->length != y->length) return x->length < y->length ? -1 : 1;
  return memcmp(x->bytes, y->bytes, x->length);
}

/* Cuts the list to vocab_size - 3 pieces (step 4d). */
static int fit_vocab_size(bp_trainer *t, piece_list *list, uint32_t vocab_size,
                          bp_error *err) {
  size_t room = vocab_size - BP_FIRST_PIECE_ID;
  if (list->count <= room) return BP_OK;
  qsort(list->pieces, list->count, sizeof *list->pieces, compare_by_merit);
  piece_list kept = {list->pieces, room};
  int rc = resplit(t, &kept, list->pieces + room, list->count - room, err);
  if (rc != BP_OK) return rc;
  list->count = room;
  return remove_wasted(t, list, err);
}

/* The trained model: ids in (length, bytes) order, and its digest. */
static int build_model(piece_list *list, bp_model **model, bp_error *err) {
  uint64_t total = 0;
  for (size_t i = 0; i < list->count; i++)
    if (!count_add(&total, list->pieces[i].count)) return bp_fail(err, BP_TOOBIG, COUNTS_TOO_BIG);
  qsort(list->pieces, list->count, sizeof *list->pieces, compare_for_ids);
  for (size_t i = 0; i < list->count; i++) list->pieces[i].id = (uint32_t)(i + BP_FIRST_PIECE_ID);
  return bp_model_build(list->pieces, list->count, model, err);
}

static int prune_pieces(bp_trainer *t, bp_model **model, bp_error *err) {
  if (t->piece_buckets[0]) {
    int rc = sort_out_buckets(t, err);
    if (rc != BP_OK) return rc;
  }
  /* a. every single byte is a piece */
  for (int b = 0; b < 256; b++) {
    uint8_t byte = (uint8_t)b;
    uint64_t hash = hash_bytes(&byte, 1);
    bool present = false;
    for (size_t k = hash & (t->pieces.capacity - 1); t->pieces.slots[k].count;
         k = (k + 1) & (t->pieces.capacity - 1))
      if (t->pieces.slots[k].length == 1 &&
          (uint8_t)t->pieces.arena.data[t->pieces.slots[k].offset] == byte)
        present = true;
    if (!present && !string_counter_add(&t->pieces, &byte, 1, 1)) return bp_fail_nomem(err);
  }
  /* b. keep short and frequent pieces; re-split the others into them */
  bp_piece *all = bp_malloc(t->pieces.used * sizeof *all);
  if (!all) return bp_fail_nomem(err);
  size_t kept = 0, dropped = t->pieces.used;
  for (size_t i = 0; i < t->pieces.capacity; i++) {
    const counted_string *s = &t->pieces.slots[i];
    if (!s->count) continue;
    bp_piece p = {(const uint8_t *)t->pieces.arena.data + s->offset,
                  (uint32_t)(s->length > UINT32_MAX ? UINT32_MAX : s->length), 0, s->count, 0.0};
    if (keeps_piece(t, s->length, s->count)) all[kept++] = p;
    else all[--dropped] = p;
  }
  /* Deterministic order, whatever the hash table's. */
  qsort(all, kept, sizeof *all, compare_for_ids);
  piece_list list = {all, kept};
  int rc = t->dropped_file ? resplit_file(t, &list, t->dropped_file, err)
                           : resplit(t, &list, all + kept, t->pieces.used - kept, err);
  /* c. remove wasted pieces; d. fit the vocabulary size */
  if (rc == BP_OK) rc = remove_wasted(t, &list, err);
  if (rc == BP_OK) rc = fit_vocab_size(t, &list, t->options.vocab_size, err);
  if (rc == BP_OK) rc = build_model(&list, model, err);
  bp_free(all);
  return rc;
}

int bp_trainer_finish(bp_trainer *t, bp_model **model, bp_error *err) {
  *model = NULL;
  if (t->bytes == 0) return bp_fail(err, BP_INVALID, "no text to train on");
  const char *interrupted = "interrupted";
  /* Once some chunks are in the file, all go there. */
  int rc = t->chunk_file ? spill_chunks(t, err) : BP_OK;
  if (rc == BP_OK) rc = count_ngrams(t, err);
  if (rc == BP_OK) rc = prune_ngrams(t, err);
  if (rc == BP_OK && report(t, "segmenting", 0)) rc = bp_fail(err, BP_INTERRUPT, "%s", interrupted);
  if (rc == BP_OK) rc = count_pieces(t, err);
  if (rc == BP_OK && report(t, "pruning pieces", 0)) rc = bp_fail(err, BP_INTERRUPT, "%s", interrupted);
  /* The n-gram model is no longer needed. */
  for (int n = 0; n <= MAX_ORDER; n++) ngram_table_free(&t->tables[n]);
  bp_free(t->logs2);
  t->logs2 = NULL;
  if (rc == BP_OK) rc = prune_pieces(t, model, err);
  return rc;
}

int bp_model_shrink(const bp_model *m, uint32_t vocab_size, bp_model **out,
                    bp_error *err) {
  *out = NULL;
  if (vocab_size < 259)
    return bp_fail(err, BP_INVALID, "vocab_size must be at least 259 (256 bytes and 3 reserved ids)");
  if (bp_model_vocab_size(m) <= vocab_size) {
    *out = bp_model_retain((bp_model *)m);
    return BP_OK;
  }
  if (!bp_model_has_counts(m))
    return bp_fail(err, BP_INVALID, "the model has scores but no training counts (it came "
                   "from SentencePiece); shrinking re-splits counts");
  piece_list list = {bp_malloc(m->piece_count * sizeof(bp_piece)), m->piece_count};
  if (!list.pieces) return bp_fail_nomem(err);
  for (uint32_t i = 0; i < m->piece_count; i++)
    list.pieces[i] = (bp_piece){m->bytes + m->offsets[i], m->offsets[i + 1] - m->offsets[i],
                                0, m->counts[i], 0.0};
  bp_trainer context;
  memset(&context, 0, sizeof context);
  bp_train_options_init(&context.options);
  int rc = fit_vocab_size(&context, &list, vocab_size, err);
  if (rc == BP_OK) rc = build_model(&list, out, err);
  bp_free(list.pieces);
  return rc;
}
