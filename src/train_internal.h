/*
** train_internal.h: what the trainer's source files share and nothing else
** includes.
**
**   train.c          the trainer: options, adding text (chunks), the steps
**                    in order (bp_trainer_finish)
**   train_tables.c   the hash tables: string counter, n-gram table
**   train_spill.c    spill files: records of counted byte strings, read
**                    back in blocks
**   train_workers.c  running a pass on several threads, share by share
**   train_ngrams.c   step 2: counting n-grams, the n-gram model
**   train_segment.c  step 3: segmenting chunks with the n-gram model,
**                    counting the pieces
**   train_prune.c    step 4: pruning pieces to a vocabulary; shrinking a
**                    trained model
**   train_rounds.c   training in rounds over shards: states and partials
**
** Data flows: text -> chunks (string counter, or the chunk file) -> n-gram
** tables -> pieces (string counter, or bucket files) -> vocabulary.
*/
#ifndef BYTEPIECE_TRAIN_INTERNAL_H
#define BYTEPIECE_TRAIN_INTERNAL_H

#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#define MAX_CHUNK_CHARACTERS 10000
#define MAX_CHUNK_NEWLINES 100
#define MAX_ORDER 7
#define MAX_THREADS 64
#define EMPTY_KEY UINT64_MAX /* no n-gram of 7 bytes or fewer packs to this */
#define PIECE_BUCKETS 16

/* ---- Hash tables (train_tables.c) -------------------------------------------- */

static inline uint64_t train_mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  x *= 0xC4CEB9FE1A85EC53ull;
  x ^= x >> 33;
  return x;
}

uint64_t train_hash_bytes(const uint8_t *p, size_t n);

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
  size_t capacity, entries; /* slots, and slots in use */
} string_counter;

void train_string_counter_free(string_counter *c);
/* Bytes the counter holds (arena and slots). */
size_t train_string_counter_memory(const string_counter *c);
/* Makes room for `arena_bytes` of strings and `slots` slots (a power of
** two): a counter refilled after a spill takes its size at once, in place of
** a series of doublings, each leaving the block it grew from free but
** still resident. False when out of memory. */
bool train_string_counter_reserve(string_counter *c, size_t arena_bytes, size_t slots);
/* Adds `count` to the string's count (inserting it); false when out of
** memory. */
bool train_string_counter_add(string_counter *c, const uint8_t *bytes, size_t length,
                              uint64_t count);
/* The same with the string's train_hash_bytes known (a slot's hash). */
bool train_string_counter_add_hashed(string_counter *c, const uint8_t *bytes, size_t length,
                                     uint64_t hash, uint64_t count);

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
  size_t capacity, entries; /* slots, and slots in use */
  size_t limit;             /* bytes the slots may take; 0: no limit */
} ngram_table;

void train_ngram_table_free(ngram_table *t);
/* An empty table of `capacity` slots (any number above its entries). */
bool train_ngram_table_init(ngram_table *t, size_t capacity);

/* The slot where the probe for `key` starts: the hash's high bits scaled
** to the capacity, which need not be a power of two, so that the n-gram
** model's tables can be sized to their entries (a power of two would leave
** them up to 4 times the size of their entries instead of 1.5). */
static inline size_t train_ngram_home(const ngram_table *t, uint64_t key) {
  return (size_t)(((unsigned __int128)train_mix64(key) * t->capacity) >> 64);
}

/* The slot holding `key`, or the free slot where it would go. In the header
** because the counting and segmenting loops call it for every byte. */
static inline ngram_slot *train_ngram_find(const ngram_table *t, uint64_t key) {
  size_t k = train_ngram_home(t, key);
  while (t->slots[k].key != key && t->slots[k].key != EMPTY_KEY)
    if (++k == t->capacity) k = 0;
  return &t->slots[k];
}

/* Moves the entries to a table of `capacity` slots; false when out of
** memory (t unchanged). */
bool train_ngram_table_resize(ngram_table *t, size_t capacity);
/* Adds to a key's count: BP_OK, BP_NOMEM, or BP_TOOBIG when the table would
** outgrow its limit. */
int train_ngram_table_add(ngram_table *t, uint64_t key, uint64_t count);

/* ---- Spill files (train_spill.c) -------------------------------------------- */

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

void train_block_free(block *b);
/* Appends a view of bytes owned elsewhere; false when out of memory. */
bool train_block_push(block *b, const uint8_t *bytes, size_t length, uint64_t count);
/* Appends one record to a spill file; false when the write fails. */
bool train_record_write(FILE *f, const uint8_t *bytes, size_t length, uint64_t count);
/* BP_IO: "cannot <what> a temporary file: <errno's message>". */
int train_spill_error(bp_error *err, const char *what);
/* Reads the next records of f into b (emptied first), about `limit` bytes
** of them with their views; *more is false at the end of the file. */
int train_block_read(FILE *f, block *b, size_t limit, bool *more, bp_error *err);
/* Adds up piece bucket k of t (train_segment.c spills pieces there by
** hash) into *sum, reading it back through *b a block at a time. */
int train_sum_piece_bucket(bp_trainer *t, int k, block *b, string_counter *sum, bp_error *err);

/* ---- The trainer (train.c) ---------------------------------------------------- */

/* How passes run: on how many threads, and where progress goes. The
** trainer's comes from its options, bp_model_shrink's from its own. */
typedef struct train_runner {
  int threads; /* 1..MAX_THREADS */
  int (*progress)(void *context, const char *phase, double done);
  void *progress_context;
} train_runner;

struct bp_trainer {
  bp_train_options options;
  train_runner runner; /* the options' threads and progress */
  string_counter chunks;
  FILE *chunk_file; /* chunks spilled when over a third of the memory */
  uint64_t bytes;   /* total, with repetitions */
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
  /* Partitions the last n-gram length was counted in: the next length,
  ** with more candidates, starts there rather than at one. */
  uint64_t ngram_partitions;
  /* Training in rounds (train_rounds.c): the state this trainer counts a
  ** round of, or NULL for a trainer of bp_trainer_new. */
  struct train_round *round;
};

/* Once some chunks were spilled to the chunk file, moves the rest there
** too, so that a pass reads them all from one place. */
int train_spill_remaining_chunks(bp_trainer *t, bp_error *err);
/* Spills the chunks to the chunk file when, beside the n-gram model and
** `other` bytes, they would take more than half of max_memory: a pass then
** reads them back in blocks of the memory left. */
int train_spill_chunks_if_crowded(bp_trainer *t, size_t other, bp_error *err);

/* What max_memory leaves to a pass's spillable parts (blocks of chunks read
** back, counting tables) beside what stays in memory through it: the
** n-gram model, the chunks when not spilled, the pieces kept, and `other`
** bytes the caller holds. Never less than a quarter of max_memory (nor
** MIN_SPARE_MEMORY), so that a model larger than max_memory still trains,
** above it; 0 when there is no limit. */
#define MIN_SPARE_MEMORY ((size_t)1 << 20)
size_t train_spare_memory(const bp_trainer *t, size_t other);
/* Bytes the n-gram model, or the counts it is made from, takes. */
size_t train_ngram_memory(const bp_trainer *t);
/* Frees what train_rounds.c hangs on a trainer. */
void train_round_free(struct train_round *round);

/* Gives the memory just freed back to the system. glibc keeps up to twice
** its largest recent allocation free for reuse instead (its threshold for
** mmap grows with what was freed): tens of MB beside tables that max_memory
** bounds, so the resident peak would exceed it. Called once a large
** structure is freed, not for every allocation. */
void train_release_free_memory(void);

/* Reports progress to the runner's callback; true when it asks to stop. */
bool train_report(const train_runner *r, const char *phase, double done);

/* ---- Running work on several threads (train_workers.c) ------------------------ */

/* One pass of work split into `count` shares. Share 0 runs on the calling
** thread, which alone reports progress (a progress callback may use the
** caller's resources); the other shares watch `stop`. */
typedef struct work {
  const train_runner *runner;
  bp_trainer *trainer; /* steps 2 and 3 read its tables; NULL when shrinking */
  int (*run)(struct work *work, int index, bp_error *err);
  int count;
  atomic_int stop;
  void *data; /* what the pass needs */
} work;

/* Runs every share of w, on up to w->count threads, and returns the first
** error that is not BP_INTERRUPT, else the first BP_INTERRUPT, else BP_OK. */
int train_run_work(work *w, bp_error *err);
/* The part of [0, total) that share `index` of `count` works on. */
void train_share_range(size_t total, int index, int count, size_t *begin, size_t *end);
/* Reports progress from share 0 and tells every share whether to stop. */
bool train_should_stop(work *w, int index, const char *phase, double done);
/* Runs `run` on the threads for every block of chunks: the chunks in
** memory as one block, or, once they were spilled, the chunk file read back
** a block of about `block_bytes` at a time. *chunks (a field of `pass`)
** points at the block. */
int train_share_chunk_blocks(bp_trainer *t, int (*run)(work *, int, bp_error *), void *pass,
                             const block **chunks, size_t block_bytes, bp_error *err);

/* ---- The steps ------------------------------------------------------------------ */

/* Step 2 (train_ngrams.c): counts the n-grams of every chunk into
** t->counts1, t->counts2 and t->tables, then turns them into the n-gram
** model t->logs1, t->logs2, t->tables. */
int train_count_ngrams(bp_trainer *t, bp_error *err);
int train_prune_ngrams(bp_trainer *t, bp_error *err);
/* The parts of train_count_ngrams, for training in rounds
** (train_rounds.c): the 1- and 2-grams added to t->counts1 and t->counts2;
** the n-grams of one length n >= 3 whose (n-1)-parts are frequent (by
** t->counts2 or t->tables[n - 1] and min_count), those counted at least
** min_kept times into t->tables[n]. */
int train_count_short_ngrams(bp_trainer *t, bp_error *err);
int train_count_ngrams_of_length(bp_trainer *t, int n, uint64_t min_kept, bp_error *err);
/* Where train_count_ngrams_to_sink puts the counts of each partition of
** the n-grams (disjoint sets of n-grams), instead of one table in memory:
** take owns `counts` from then on. When a partition outgrows the memory,
** the partitions not yet counted are split; those taken stay valid. */
typedef struct ngram_sink {
  int (*take)(void *context, ngram_table *counts, bp_error *err);
  void *context;
} ngram_sink;
int train_count_ngrams_to_sink(bp_trainer *t, int n, const ngram_sink *sink, bp_error *err);

static inline uint64_t train_ngram_mask(int n) {
  return n >= 8 ? UINT64_MAX : (1ull << (8 * n)) - 1;
}

/* log P of the n-gram ending at the lowest byte of `rolling`, or -inf. In
** the header because segmenting calls it for every byte and state. */
static inline double train_ngram_log(const bp_trainer *t, int n, uint64_t rolling) {
  if (n == 1) return t->logs1[rolling & 0xFF];
  if (n == 2) return t->logs2[rolling & 0xFFFF];
  uint64_t key = rolling & train_ngram_mask(n);
  const ngram_slot *s = train_ngram_find(&t->tables[n], key);
  return s->key == key ? s->log : -INFINITY;
}

/* Step 3 (train_segment.c): segments every chunk with the n-gram model and
** counts the pieces, in t->pieces or the bucket files. */
int train_count_pieces(bp_trainer *t, bp_error *err);
/* Moves a piece counter's entries to t's bucket files (emptying it), as
** counting does past its memory; train_prune_pieces sums the buckets. */
int train_spill_pieces(bp_trainer *t, string_counter *c, bp_error *err);

/* Step 4 (train_prune.c): prunes the counted pieces to the vocabulary and
** builds the model. */
int train_prune_pieces(bp_trainer *t, bp_model **model, bp_error *err);

#endif /* BYTEPIECE_TRAIN_INTERNAL_H */
