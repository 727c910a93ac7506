/*
** pool.h: an ordered pool of worker threads for the whole-table aggregates
** (pool.c).
**
**     bpsql_pool_new(threads, &settings, &pool);
**     for each row: bpsql_pool_submit(pool, copy_of_text, len, input, model, &err);
**     bpsql_pool_drain(pool, &err);          -- in xFinal
**     bpsql_pool_free(pool);
**
** The thread that submits (SQLite's, in xStep) hands over a copy of each
** row's text; settings.work runs on the tasks in any order on `threads`
** threads: threads - 1 workers and the submitting thread itself, which
** works on tasks while it has no room for the next one. settings.deliver
** is called on the submitting thread, in the order the rows were
** submitted, so whatever it writes or adds up is the same for any number
** of threads. At most settings.max_tasks tasks and about
** settings.max_bytes bytes of text are in flight: submitting blocks
** (working on tasks, delivering what is done) until there is room, so
** memory does not grow with the input. With one thread no thread is
** started: each task is worked on and delivered as it is submitted.
*/
#ifndef BPSQL_POOL_H
#define BPSQL_POOL_H

#include "bytepiece.h"

#include <stddef.h>
#include <stdint.h>

/* One row in flight. The worker reads text and fills the results; the
** pool frees text and output (sqlite3_free) once it is delivered. */
typedef struct bpsql_task {
  char *text; /* the row's own copy, sqlite3_malloc64 */
  size_t len;
  int input;       /* BP_INPUT_TEXT or BP_INPUT_BYTES */
  bp_model *model; /* the row's own model, or NULL; released with the task */
  uint64_t index;  /* 0, 1, 2, ... in submission order */
  /* Results, set by work. */
  int rc; /* BP_OK, or the error in err */
  bp_error err;
  uint8_t *output; /* sqlite3_malloc64, or NULL */
  size_t output_len;
  uint64_t count; /* tokens */
} bpsql_task;

typedef struct bpsql_pool_settings {
  /* Runs on any of the threads: reads task->text, sets the results.
  ** `worker` (0 .. threads - 1; threads - 1 is the submitting thread) says
  ** which runs it: one worker runs one task at a time, so state of its own
  ** needs no lock. `interrupt` stops it when the pool is told to stop. */
  void (*work)(void *context, int worker, bpsql_task *task, const bp_interrupt *interrupt);
  /* Runs on the submitting thread, in submission order; a code other than
  ** BP_OK (with *err set) stops the pool and is returned by the submit or
  ** drain that delivered it, and by every later call. */
  int (*deliver)(void *context, bpsql_task *task, bp_error *err);
  void *context;
  /* The submitting thread's own check (sqlite3_interrupt), asked while it
  ** waits for the workers; nonzero stops the pool with BP_INTERRUPT. */
  bp_interrupt interrupt;
  size_t max_tasks; /* rows in flight, at least 1 */
  size_t max_bytes; /* bytes of text in flight (one row may be larger) */
} bpsql_pool_settings;

typedef struct bpsql_pool bpsql_pool;

/* threads from 1 to 64. BP_NOMEM, or BP_IO when a thread cannot be
** started (with the reason). */
int bpsql_pool_new(int threads, const bpsql_pool_settings *settings, bpsql_pool **out,
                   bp_error *err);
/* Takes over text (sqlite3_malloc64) and the reference to model (may be
** NULL), released even on failure. */
int bpsql_pool_submit(bpsql_pool *pool, char *text, size_t len, int input, bp_model *model,
                      bp_error *err);
/* Waits for every task submitted and delivers it. */
int bpsql_pool_drain(bpsql_pool *pool, bp_error *err);
/* Stops the workers (tasks not yet delivered are dropped) and frees. */
void bpsql_pool_free(bpsql_pool *pool);

#endif /* BPSQL_POOL_H */
