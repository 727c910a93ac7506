/*
** train_workers.c: running one pass of work on several threads.
**
** A pass (counting n-grams, segmenting, re-splitting pieces) is split into
** one share per thread. Each share works on its own part of the input
** (train_share_range) and counts into tables of its own, which the caller
** adds up once all are done: sums do not depend on the order of their
** terms, so the result is the same whatever the number of threads. Share 0
** runs on the calling thread and alone reports progress; when any share
** fails or progress asks to stop, the others stop at their next check.
*/
#include "train_internal.h"

#include <string.h>

/* One share of a pass: its thread and what it returned. */
typedef struct share {
  struct work *work;
  int index;
  int rc;
  bp_error err;
  pthread_t thread;
} share;

static void *run_share(void *argument) {
  share *s = argument;
  s->rc = s->work->run(s->work, s->index, &s->err);
  if (s->rc != BP_OK) atomic_store(&s->work->stop, 1);
  return NULL;
}

int train_run_work(work *w, bp_error *err) {
  const int count = w->count;
  /* bp_trainer_new keeps threads in [1, MAX_THREADS]. */
  if (count < 1 || count > MAX_THREADS)
    return bp_fail(err, BP_INVALID, "threads must be an integer from 1 to %d", MAX_THREADS);
  share shares[MAX_THREADS];
  atomic_init(&w->stop, 0);
  int started = 1;
  for (int i = 0; i < count; i++) shares[i] = (share){w, i, BP_OK, {0, ""}, 0};
  for (; started < count; started++)
    if (pthread_create(&shares[started].thread, NULL, run_share, &shares[started]) != 0) break;
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
void train_share_range(size_t total, int index, int count, size_t *begin, size_t *end) {
  *begin = total * (size_t)index / (size_t)count;
  *end = total * (size_t)(index + 1) / (size_t)count;
}

/* Reports progress from share 0 and tells every share whether to stop. */
bool train_should_stop(work *w, int index, const char *phase, double done) {
  if (index == 0 && train_report(w->runner, phase, done)) atomic_store(&w->stop, 1);
  return atomic_load(&w->stop) != 0;
}

/* Runs `run` on the threads for every block of chunks: the chunks in
** memory as one block, or, once they were spilled, the chunk file read back
** a block of about `block_bytes` at a time. *chunks (a field of `pass`)
** points at the block. */
int train_share_chunk_blocks(bp_trainer *t, int (*run)(work *, int, bp_error *), void *pass,
                             const block **chunks, size_t block_bytes, bp_error *err) {
  block b = {0};
  int rc = BP_OK;
  work w = {
      .runner = &t->runner, .trainer = t, .run = run, .count = t->runner.threads, .data = pass};
  *chunks = &b;
  if (!t->chunk_file) {
    for (size_t i = 0; i < t->chunks.capacity && rc == BP_OK; i++) {
      const counted_string *c = &t->chunks.slots[i];
      if (c->count && !train_block_push(&b, (const uint8_t *)t->chunks.arena.data + c->offset,
                                        c->length, c->count))
        rc = bp_fail_nomem(err);
    }
    if (rc == BP_OK) rc = train_run_work(&w, err);
  } else {
    rewind(t->chunk_file);
    bool more = true;
    while (more && rc == BP_OK) {
      rc = train_block_read(t->chunk_file, &b, block_bytes, &more, err);
      if (rc == BP_OK && b.count) rc = train_run_work(&w, err);
    }
  }
  *chunks = NULL;
  train_block_free(&b);
  return rc;
}
