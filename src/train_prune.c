/*
** train_prune.c: step 4 of training, pruning pieces; and shrinking a
** trained model.
**
** Single bytes always stay; pieces too long or too rare are re-split by a
** unigram tokenizer of the kept ones, which receive their counts; pieces
** that no piece's best split uses are removed until none is; the
** vocabulary is cut to size the same way, and the model built with ids in
** (length, bytes) order. bp_model_shrink runs the last of these, cutting to
** size, on a trained model's pieces, on its own threads and progress
** (bp_shrink_options) instead of a trainer's.
*/
#include "train_internal.h"

#include <stdlib.h>
#include <string.h>

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
static int build_intermediate_model(const piece_list *list, bp_model **m, bp_error *err) {
  for (size_t i = 0; i < list->count; i++)
    list->pieces[i].id = (uint32_t)(i + BP_FIRST_PIECE_ID);
  return bp_model_build_with_digest(list->pieces, list->count, false, BP_DIGEST_NONE, NULL,
                                    NULL, m, err);
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
  train_share_range(pass->source_count, index, w->count, &begin, &end);
  bp_ids ids = {0};
  int rc = BP_OK;
  for (size_t s = begin; s < end && rc == BP_OK; s++) {
    ids.count = 0;
    rc = bp_segment_whole(pass->model, pass->sources[s].bytes, pass->sources[s].length, &ids,
                          err);
    for (size_t k = 0; rc == BP_OK && k < ids.count; k++)
      if (!count_add(&hits[ids.ids[k] - BP_FIRST_PIECE_ID], pass->sources[s].count))
        rc = bp_fail(err, BP_TOOBIG, COUNTS_TOO_BIG);
    if (rc == BP_OK && (s - begin) % 65536 == 65535 &&
        train_should_stop(w, index, "pruning pieces",
                          (double)(s - begin) / (double)(end - begin)))
      rc = bp_fail(err, BP_INTERRUPT, "interrupted");
  }
  bp_ids_free(&ids);
  return rc;
}

/* Returns in *hits (to free with bp_free) the summed counts of the splits
** of `sources` by the tokenizer m, which has `piece_count` pieces. */
static int count_splits(const train_runner *r, const bp_model *m, size_t piece_count,
                        const bp_piece *sources, size_t source_count, uint64_t **hits,
                        bp_error *err) {
  *hits = NULL;
  split_pass pass = {m, sources, source_count, piece_count, {NULL}};
  work w = {.runner = r, .run = split_share, .count = r->threads, .data = &pass};
  int rc = train_run_work(&w, err);
  for (int s = 1; s < w.count; s++) {
    for (size_t i = 0; rc == BP_OK && i < piece_count; i++)
      if (!count_add(&pass.hits[0][i], pass.hits[s][i]))
        rc = bp_fail(err, BP_TOOBIG, COUNTS_TOO_BIG);
    bp_free(pass.hits[s]);
  }
  /* The recounted pieces become a tokenizer's counts (remove_wasted):
  ** their total must fit too. */
  uint64_t total = 0;
  for (size_t i = 0; rc == BP_OK && i < piece_count; i++)
    if (!count_add(&total, pass.hits[0][i])) rc = bp_fail(err, BP_TOOBIG, COUNTS_TOO_BIG);
  if (rc == BP_OK)
    *hits = pass.hits[0];
  else
    bp_free(pass.hits[0]);
  return rc;
}

/* The same with a tokenizer of `pieces`. */
static int split_and_count(const train_runner *r, piece_list *pieces, const bp_piece *sources,
                           size_t source_count, uint64_t **hits, bp_error *err) {
  bp_model *m;
  int rc = build_intermediate_model(pieces, &m, err);
  if (rc != BP_OK) return rc;
  rc = count_splits(r, m, pieces->count, sources, source_count, hits, err);
  bp_model_release(m);
  return rc;
}

static int add_hits(piece_list *kept, uint64_t *hits, bp_error *err) {
  int rc = BP_OK;
  uint64_t total = 0;
  for (size_t i = 0; i < kept->count && rc == BP_OK; i++)
    if (!count_add(&kept->pieces[i].count, hits[i]) ||
        !count_add(&total, kept->pieces[i].count))
      rc = bp_fail(err, BP_TOOBIG, COUNTS_TOO_BIG);
  bp_free(hits);
  return rc;
}

/* Adds the count of every piece of `dropped` to the pieces of `kept` that
** its best split (by a tokenizer of `kept`) uses: the reference's
** split_pieces. */
static int resplit(const train_runner *r, piece_list *kept, const bp_piece *dropped,
                   size_t dropped_count, bp_error *err) {
  if (!dropped_count) return BP_OK;
  uint64_t *added;
  int rc = split_and_count(r, kept, dropped, dropped_count, &added, err);
  if (rc == BP_OK) rc = add_hits(kept, added, err);
  return rc;
}

/* The same for the dropped pieces of a file, a block at a time; the kept
** counts change only once all are split. */
static int resplit_file(bp_trainer *t, piece_list *kept, FILE *dropped, bp_error *err) {
  bp_model *m;
  int rc = build_intermediate_model(kept, &m, err);
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
    /* A quarter of what the pieces kept leave, as much again for the
    ** sources made of the block. */
    rc = train_block_read(dropped, &b, train_spare_memory(t, 0) / 4, &more, err);
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
      sources[i] =
          (bp_piece){b.views[i].bytes, (uint32_t)b.views[i].length, 0, b.views[i].count, 0.0};
    uint64_t *hits;
    rc = count_splits(&t->runner, m, kept->count, sources, b.count, &hits, err);
    if (rc == BP_OK) {
      for (size_t i = 0; i < kept->count && rc == BP_OK; i++)
        if (!count_add(&total[i], hits[i])) rc = bp_fail(err, BP_TOOBIG, COUNTS_TOO_BIG);
      bp_free(hits);
    }
  }
  if (rc == BP_OK)
    rc = add_hits(kept, total, err);
  else
    bp_free(total);
  bp_free(sources);
  train_block_free(&b);
  bp_model_release(m);
  return rc;
}

static bool keeps_piece(const bp_trainer *t, size_t length, uint64_t count) {
  return length == 1 ||
         (length <= (size_t)t->options.max_piece_length && count >= t->options.min_count);
}

/* For spilled pieces: sums each bucket's counts, keeps in t->pieces what
** step b keeps, and writes the rest to the dropped file. */
static int sort_out_buckets(bp_trainer *t, bp_error *err) {
  if (!(t->dropped_file = tmpfile())) return train_spill_error(err, "create");
  block b = {0};
  int rc = BP_OK;
  for (int k = 0; k < PIECE_BUCKETS && rc == BP_OK; k++) {
    string_counter sum = {0};
    rc = train_sum_piece_bucket(t, k, &b, &sum, err);
    for (size_t i = 0; i < sum.capacity && rc == BP_OK; i++) {
      const counted_string *s = &sum.slots[i];
      if (!s->count) continue;
      const uint8_t *bytes = (const uint8_t *)sum.arena.data + s->offset;
      if (keeps_piece(t, s->length, s->count)) {
        if (!train_string_counter_add(&t->pieces, bytes, s->length, s->count))
          rc = bp_fail_nomem(err);
      } else if (!train_record_write(t->dropped_file, bytes, s->length, s->count)) {
        rc = train_spill_error(err, "write");
      }
    }
    train_string_counter_free(&sum);
    train_release_free_memory();
    fclose(t->piece_buckets[k]);
    t->piece_buckets[k] = NULL;
  }
  train_block_free(&b);
  return rc;
}

/* Re-splits every piece with a tokenizer of all of them, recounts, and drops
** pieces no split uses, until the number of pieces stops changing. */
static int remove_wasted(const train_runner *r, piece_list *list, bp_error *err) {
  for (;;) {
    uint64_t *recount;
    int rc = split_and_count(r, list, list->pieces, list->count, &recount, err);
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
static int fit_vocab_size(const train_runner *r, piece_list *list, uint32_t vocab_size,
                          bp_error *err) {
  size_t room = vocab_size - BP_FIRST_PIECE_ID;
  if (list->count <= room) return BP_OK;
  qsort(list->pieces, list->count, sizeof *list->pieces, compare_by_merit);
  piece_list kept = {list->pieces, room};
  int rc = resplit(r, &kept, list->pieces + room, list->count - room, err);
  if (rc != BP_OK) return rc;
  list->count = room;
  return remove_wasted(r, list, err);
}

/* The trained model: ids in (length, bytes) order, and its digest. */
static int build_trained_model(piece_list *list, bp_model **model, bp_error *err) {
  uint64_t total = 0;
  for (size_t i = 0; i < list->count; i++)
    if (!count_add(&total, list->pieces[i].count))
      return bp_fail(err, BP_TOOBIG, COUNTS_TOO_BIG);
  qsort(list->pieces, list->count, sizeof *list->pieces, compare_for_ids);
  for (size_t i = 0; i < list->count; i++)
    list->pieces[i].id = (uint32_t)(i + BP_FIRST_PIECE_ID);
  return bp_model_build(list->pieces, list->count, model, err);
}

int train_prune_pieces(bp_trainer *t, bp_model **model, bp_error *err) {
  if (t->piece_buckets[0]) {
    int rc = sort_out_buckets(t, err);
    if (rc != BP_OK) return rc;
  }
  /* a. every single byte is a piece */
  for (int b = 0; b < 256; b++) {
    uint8_t byte = (uint8_t)b;
    uint64_t hash = train_hash_bytes(&byte, 1);
    bool present = false;
    for (size_t k = hash & (t->pieces.capacity - 1); t->pieces.slots[k].count;
         k = (k + 1) & (t->pieces.capacity - 1))
      if (t->pieces.slots[k].length == 1 &&
          (uint8_t)t->pieces.arena.data[t->pieces.slots[k].offset] == byte)
        present = true;
    if (!present && !train_string_counter_add(&t->pieces, &byte, 1, 1))
      return bp_fail_nomem(err);
  }
  /* b. keep short and frequent pieces; re-split the others into them */
  bp_piece *all = bp_malloc(t->pieces.entries * sizeof *all);
  if (!all) return bp_fail_nomem(err);
  size_t kept = 0, dropped = t->pieces.entries;
  for (size_t i = 0; i < t->pieces.capacity; i++) {
    const counted_string *s = &t->pieces.slots[i];
    if (!s->count) continue;
    bp_piece p = {(const uint8_t *)t->pieces.arena.data + s->offset,
                  (uint32_t)(s->length > UINT32_MAX ? UINT32_MAX : s->length), 0, s->count,
                  0.0};
    if (keeps_piece(t, s->length, s->count))
      all[kept++] = p;
    else
      all[--dropped] = p;
  }
  /* Deterministic order, whatever the hash table's. */
  qsort(all, kept, sizeof *all, compare_for_ids);
  piece_list list = {all, kept};
  int rc = t->dropped_file
               ? resplit_file(t, &list, t->dropped_file, err)
               : resplit(&t->runner, &list, all + kept, t->pieces.entries - kept, err);
  /* c. remove wasted pieces; d. fit the vocabulary size */
  if (rc == BP_OK) rc = remove_wasted(&t->runner, &list, err);
  if (rc == BP_OK) rc = fit_vocab_size(&t->runner, &list, t->options.vocab_size, err);
  if (rc == BP_OK) rc = build_trained_model(&list, model, err);
  bp_free(all);
  return rc;
}

void bp_shrink_options_init(bp_shrink_options *o) {
  memset(o, 0, sizeof *o);
  o->threads = 1;
}

int bp_model_shrink(const bp_model *m, uint32_t vocab_size, const bp_shrink_options *options,
                    bp_model **out, bp_error *err) {
  *out = NULL;
  bp_shrink_options defaults;
  bp_shrink_options_init(&defaults);
  if (!options) options = &defaults;
  if (vocab_size < 259)
    return bp_fail(err, BP_INVALID,
                   "vocab_size must be at least 259 (256 bytes and 3 reserved ids)");
  if (options->threads < 1 || options->threads > MAX_THREADS)
    return bp_fail(err, BP_INVALID, "threads must be an integer from 1 to %d", MAX_THREADS);
  if (bp_model_vocab_size(m) <= vocab_size) {
    *out = bp_model_retain((bp_model *)m);
    return BP_OK;
  }
  if (!bp_model_has_counts(m))
    return bp_fail(err, BP_INVALID,
                   "the model has scores but no training counts (it came "
                   "from SentencePiece); shrinking re-splits counts");
  piece_list list = {bp_malloc(m->piece_count * sizeof(bp_piece)), m->piece_count};
  if (!list.pieces) return bp_fail_nomem(err);
  for (uint32_t i = 0; i < m->piece_count; i++)
    list.pieces[i] = (bp_piece){m->bytes + m->offsets[i], m->offsets[i + 1] - m->offsets[i], 0,
                                m->counts[i], 0.0};
  const train_runner runner = {options->threads, options->progress, options->progress_context};
  /* As bp_trainer_finish before its own pruning: a stop asked for now is
  ** seen before the first pass, however few pieces each share has. */
  int rc = train_report(&runner, "pruning pieces", 0)
               ? bp_fail(err, BP_INTERRUPT, "interrupted")
               : fit_vocab_size(&runner, &list, vocab_size, err);
  if (rc == BP_OK) rc = build_trained_model(&list, out, err);
  bp_free(list.pieces);
  return rc;
}
