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
**
** This file holds the trainer itself: its options, step 1 (bp_trainer_add)
** and the steps in order (bp_trainer_finish). The hash tables, spill files,
** threads and steps 2 to 4 are in train_*.c; train_internal.h lists them.
*/
#include "train_internal.h"

#include <string.h>
#include <utf8proc.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* ---- The trainer -------------------------------------------------------------- */

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

int bp_trainer_new(const bp_train_options *options, bp_trainer **out, bp_error *err) {
  *out = NULL;
  if (options->order < 1 || options->order > MAX_ORDER)
    return bp_fail(err, BP_INVALID, "order must be an integer from 1 to %d", MAX_ORDER);
  if (options->vocab_size < 259)
    return bp_fail(err, BP_INVALID,
                   "vocab_size must be at least 259 (256 bytes and 3 reserved ids)");
  if (options->max_piece_length < 1 || options->max_piece_length > BP_MAX_PIECE_BYTES)
    return bp_fail(err, BP_INVALID, "max_piece_length must be an integer from 1 to %d",
                   BP_MAX_PIECE_BYTES);
  if (options->min_count < 1) return bp_fail(err, BP_INVALID, "min_count must be at least 1");
  if (options->threads < 1 || options->threads > MAX_THREADS)
    return bp_fail(err, BP_INVALID, "threads must be an integer from 1 to %d", MAX_THREADS);
  bp_trainer *t = bp_malloc(sizeof *t);
  if (!t) return bp_fail_nomem(err);
  memset(t, 0, sizeof *t);
  t->options = *options;
  t->runner = (train_runner){options->threads, options->progress, options->progress_context};
  pthread_mutex_init(&t->bucket_lock, NULL);
  *out = t;
  return BP_OK;
}

void bp_trainer_free(bp_trainer *t) {
  if (!t) return;
  train_string_counter_free(&t->chunks);
  train_string_counter_free(&t->pieces);
  if (t->chunk_file) fclose(t->chunk_file);
  if (t->dropped_file) fclose(t->dropped_file);
  for (int b = 0; b < PIECE_BUCKETS; b++)
    if (t->piece_buckets[b]) fclose(t->piece_buckets[b]);
  pthread_mutex_destroy(&t->bucket_lock);
  train_round_free(t->round);
  bp_free(t->counts2);
  bp_free(t->logs2);
  for (int n = 0; n <= MAX_ORDER; n++) train_ngram_table_free(&t->tables[n]);
  bp_free(t);
}

uint64_t bp_trainer_bytes(const bp_trainer *t) { return t->bytes; }

bool train_report(const train_runner *r, const char *phase, double done) {
  return r->progress && r->progress(r->progress_context, phase, done) != 0;
}

/* The length of the character at p, and whether it is a decimal digit. */
static size_t character(const uint8_t *p, const uint8_t *end, bool text, bool *digit) {
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
      if (!train_string_counter_add(&t->chunks, p, n, 1)) return false;
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
    if (!train_string_counter_add(&t->chunks, p, (size_t)(chunk_end - p), 1)) return false;
    p = chunk_end;
  }
  return true;
}

void train_release_free_memory(void) {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

/* Moves the distinct chunks counted so far to the chunk file. A chunk can
** then be counted in several places; every step is a sum over occurrences,
** so that changes nothing. */
static int spill_chunks(bp_trainer *t, bp_error *err) {
  if (!t->chunk_file && !(t->chunk_file = tmpfile())) return train_spill_error(err, "create");
  for (size_t i = 0; i < t->chunks.capacity; i++) {
    const counted_string *c = &t->chunks.slots[i];
    if (c->count &&
        !train_record_write(t->chunk_file, (const uint8_t *)t->chunks.arena.data + c->offset,
                            c->length, c->count))
      return train_spill_error(err, "write");
  }
  train_string_counter_free(&t->chunks);
  train_release_free_memory();
  return BP_OK;
}

int train_spill_remaining_chunks(bp_trainer *t, bp_error *err) {
  return t->chunk_file ? spill_chunks(t, err) : BP_OK;
}

size_t train_ngram_memory(const bp_trainer *t) {
  size_t bytes =
      (t->counts2 ? 65536 * sizeof *t->counts2 : 0) + (t->logs2 ? 65536 * sizeof *t->logs2 : 0);
  for (int n = 0; n <= MAX_ORDER; n++) bytes += t->tables[n].capacity * sizeof(ngram_slot);
  return bytes;
}

/* The chunks as a pass over them in memory holds them: the counter and a
** view of each. */
static size_t chunks_memory(const bp_trainer *t) {
  if (t->chunk_file) return 0;
  return train_string_counter_memory(&t->chunks) + t->chunks.entries * sizeof(chunk_view);
}

size_t train_spare_memory(const bp_trainer *t, size_t other) {
  const uint64_t max = t->options.max_memory;
  if (!max) return 0;
  uint64_t held = (uint64_t)train_ngram_memory(t) + chunks_memory(t) +
                  train_string_counter_memory(&t->pieces) + other;
  uint64_t spare = held < max ? max - held : 0;
  if (spare < max / 4) spare = max / 4;
  if (spare < MIN_SPARE_MEMORY) spare = MIN_SPARE_MEMORY;
  return (size_t)spare;
}

/* While text is read, the chunks in memory may take a third of max_memory. */
static bool chunks_past_their_third(const bp_trainer *t) {
  return t->options.max_memory &&
         train_string_counter_memory(&t->chunks) > t->options.max_memory / 3;
}

int train_spill_chunks_if_crowded(bp_trainer *t, size_t other, bp_error *err) {
  const uint64_t max = t->options.max_memory;
  if (!max || t->chunk_file) return BP_OK;
  uint64_t held = (uint64_t)train_ngram_memory(t) + other;
  uint64_t room = held < max ? max - held : 0;
  if (chunks_memory(t) <= room / 2) return BP_OK;
  /* Said once (the chunks stay in the file from then on), so that a run
  ** with progress shows why its passes read the chunks back. */
  if (train_report(&t->runner, "spilling chunks to make room for the n-gram model", 0))
    return bp_fail(err, BP_INTERRUPT, "interrupted");
  return spill_chunks(t, err);
}

int bp_trainer_add(bp_trainer *t, const char *text, size_t len, int input, bp_error *err) {
  char *normalized = NULL;
  size_t normalized_len = len;
  if (input == BP_INPUT_TEXT) {
    int rc = bp_normalize(text, len, &normalized, &normalized_len, err);
    if (rc != BP_OK) return rc;
  }
  const uint8_t *bytes = (const uint8_t *)(normalized ? normalized : text);
  /* The counter's size before this text, which fits its third. */
  const size_t arena_bytes = t->chunks.arena.capacity, slots = t->chunks.capacity;
  bool ok = add_chunks(t, bytes, normalized_len, input == BP_INPUT_TEXT);
  bp_free(normalized);
  if (!ok) return bp_fail_nomem(err);
  t->bytes += normalized_len;
  if (chunks_past_their_third(t)) {
    int rc = spill_chunks(t, err);
    if (rc == BP_OK && !train_string_counter_reserve(&t->chunks, arena_bytes, slots))
      rc = bp_fail_nomem(err);
    return rc;
  }
  return BP_OK;
}

int bp_trainer_reader_new(const bp_trainer *t, int readers, bp_trainer **reader,
                          bp_error *err) {
  *reader = NULL;
  if (readers < 1 || readers > MAX_THREADS)
    return bp_fail(err, BP_INVALID, "readers must be an integer from 1 to %d", MAX_THREADS);
  /* Only reading: no threads, no progress, a share of the memory (never 0,
  ** which would mean no limit). A reader has no round: what a round counts
  ** is t's business once it absorbed the chunks. */
  bp_train_options options = t->options;
  options.threads = 1;
  options.progress = NULL;
  options.progress_context = NULL;
  if (options.max_memory) {
    options.max_memory /= (uint64_t)readers;
    if (!options.max_memory) options.max_memory = 1;
  }
  return bp_trainer_new(&options, reader, err);
}

/* Appends the records of a reader's chunk file to t's. */
static int append_chunk_file(bp_trainer *t, FILE *from, bp_error *err) {
  if (!t->chunk_file && !(t->chunk_file = tmpfile())) return train_spill_error(err, "create");
  rewind(from);
  char buffer[65536];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, from)) > 0)
    if (fwrite(buffer, 1, n, t->chunk_file) != n) return train_spill_error(err, "write");
  return ferror(from) ? train_spill_error(err, "read") : BP_OK;
}

int bp_trainer_absorb(bp_trainer *t, bp_trainer *reader, bp_error *err) {
  int rc = BP_OK;
  t->bytes += reader->bytes;
  if (reader->chunk_file) rc = append_chunk_file(t, reader->chunk_file, err);
  if (rc == BP_OK && !t->chunks.slots) {
    /* The first reader's chunks are taken over, not copied. */
    t->chunks = reader->chunks;
    reader->chunks = (string_counter){0};
  }
  const string_counter *c = &reader->chunks;
  for (size_t i = 0; i < c->capacity && rc == BP_OK; i++) {
    const counted_string *s = &c->slots[i];
    if (!s->count) continue;
    if (!train_string_counter_add_hashed(&t->chunks, (const uint8_t *)c->arena.data + s->offset,
                                         s->length, s->hash, s->count))
      rc = bp_fail_nomem(err);
    else if (chunks_past_their_third(t))
      rc = spill_chunks(t, err);
  }
  if (rc == BP_OK && chunks_past_their_third(t)) rc = spill_chunks(t, err);
  bp_trainer_free(reader);
  return rc;
}

int bp_trainer_finish(bp_trainer *t, bp_model **model, bp_error *err) {
  *model = NULL;
  if (t->bytes == 0) return bp_fail(err, BP_INVALID, "no text to train on");
  const char *interrupted = "interrupted";
  /* Once some chunks are in the file, all go there. */
  int rc = train_spill_remaining_chunks(t, err);
  if (rc == BP_OK) rc = train_count_ngrams(t, err);
  if (rc == BP_OK) rc = train_prune_ngrams(t, err);
  if (rc == BP_OK && train_report(&t->runner, "segmenting", 0))
    rc = bp_fail(err, BP_INTERRUPT, "%s", interrupted);
  if (rc == BP_OK) rc = train_count_pieces(t, err);
  if (rc == BP_OK && train_report(&t->runner, "pruning pieces", 0))
    rc = bp_fail(err, BP_INTERRUPT, "%s", interrupted);
  /* The n-gram model is no longer needed. */
  for (int n = 0; n <= MAX_ORDER; n++) train_ngram_table_free(&t->tables[n]);
  bp_free(t->logs2);
  t->logs2 = NULL;
  train_release_free_memory();
  if (rc == BP_OK) rc = train_prune_pieces(t, model, err);
  return rc;
}
