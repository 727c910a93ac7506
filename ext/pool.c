/*
** pool.c: the ordered worker pool of pool.h.
**
** Tasks live in a ring of max_tasks slots, numbered by three counters that
** only grow: `submitted` (the next slot the submitter fills), `taken` (the
** next a worker picks up) and `delivered` (the next the submitter hands to
** deliver). delivered <= taken <= submitted <= delivered + max_tasks, so a
** slot is reused only once it was delivered. Workers take slots in order
** but finish in any order; each marks its slot done, and the submitter
** delivers from `delivered` on while slots are done, so delivery is always
** in submission order. One mutex guards the counters and the done flags;
** the text and results of a slot are touched by one thread at a time (the
** submitter until it is submitted, its worker until done, the submitter
** again after), so the work itself runs unlocked.
**
** The submitting thread is one of the `threads`: threads - 1 workers are
** started, and while the ring is full (or at the drain) the submitter
** takes the oldest task no worker has taken and works on it itself, as
** worker threads - 1, instead of sleeping until a worker is done. Reading
** the rows is a small part of the work, so the submitter is mostly an
** encoder too: with `threads` on as many cores, `threads` threads are busy
** and none waits to be woken for every row. It sleeps only when every task
** in the ring is taken and the oldest is not done. With one thread no
** worker is started and each task is worked on as it is submitted.
**
** Stopping: an error from deliver, the submitter's interrupt check or
** bpsql_pool_free sets `stop`; workers see it before taking a task and,
** through their bp_interrupt, inside a long encoding. The submitter's own
** tasks are stopped by its interrupt check as well.
*/
#include "pool.h"

#include "sql_support.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

SQLITE_EXTENSION_INIT3

#define MAX_POOL_THREADS 64

typedef struct slot {
  bpsql_task task;
  int done;
} slot;

/* A worker thread and the index its tasks are told. */
typedef struct pool_worker {
  struct bpsql_pool *pool;
  int index;
  pthread_t thread;
} pool_worker;

struct bpsql_pool {
  bpsql_pool_settings settings;
  int threads; /* workers started: threads - 1; the submitter is worker `threads` */
  slot *slots; /* max_tasks of them */
  uint64_t submitted, taken, delivered;
  size_t bytes; /* of text submitted and not yet delivered */
  atomic_int stop;
  int failed;      /* the first error (BP_OK while none), kept for later calls */
  int interrupted; /* the submitter's interrupt check stopped its task */
  bp_error error;
  pthread_mutex_t lock;
  pthread_cond_t work_ready; /* a task was submitted, or stop */
  pthread_cond_t work_done;  /* a task is done */
  pool_worker workers[MAX_POOL_THREADS];
};

/* A worker's bp_interrupt: the pool was told to stop. */
static int pool_stopping(void *context) {
  bpsql_pool *pool = context;
  return atomic_load(&pool->stop);
}

/* The submitter's, for the tasks it works on: the caller's own check is
** asked too (on the thread it belongs to). */
static int submitter_stopping(void *context) {
  bpsql_pool *pool = context;
  if (atomic_load(&pool->stop)) return 1;
  const bp_interrupt *i = &pool->settings.interrupt;
  if (i->check && i->check(i->context)) {
    pool->interrupted = 1;
    return 1;
  }
  return 0;
}

static void run_task(bpsql_pool *pool, int worker, bpsql_task *task,
                     const bp_interrupt *interrupt) {
  task->rc = BP_OK;
  task->output = NULL;
  task->output_len = 0;
  task->count = 0;
  pool->settings.work(pool->settings.context, worker, task, interrupt);
}

static void *worker_main(void *argument) {
  const pool_worker *w = argument;
  bpsql_pool *pool = w->pool;
  const bp_interrupt interrupt = {pool_stopping, pool};
  pthread_mutex_lock(&pool->lock);
  for (;;) {
    while (!atomic_load(&pool->stop) && pool->taken == pool->submitted)
      pthread_cond_wait(&pool->work_ready, &pool->lock);
    if (atomic_load(&pool->stop)) break;
    slot *s = &pool->slots[pool->taken++ % pool->settings.max_tasks];
    pthread_mutex_unlock(&pool->lock);
    run_task(pool, w->index, &s->task, &interrupt);
    pthread_mutex_lock(&pool->lock);
    s->done = 1;
    pthread_cond_signal(&pool->work_done);
  }
  pthread_mutex_unlock(&pool->lock);
  return NULL;
}

static void release_task(bpsql_task *task) {
  sqlite3_free(task->text);
  sqlite3_free(task->output);
  bp_model_release(task->model);
  task->text = NULL;
  task->output = NULL;
  task->model = NULL;
}

/* Records the pool's first error and tells the workers to stop. */
static int pool_fail(bpsql_pool *pool, int rc, const bp_error *err) {
  if (pool->failed == BP_OK) {
    pool->failed = rc;
    pool->error = *err;
  }
  pthread_mutex_lock(&pool->lock);
  atomic_store(&pool->stop, 1);
  pthread_cond_broadcast(&pool->work_ready);
  pthread_mutex_unlock(&pool->lock);
  return rc;
}

/* The caller's interrupt check said stop. */
static int fail_interrupted(bpsql_pool *pool) {
  bp_error err;
  bpsql_error(&err, BP_INTERRUPT, "interrupted");
  return pool_fail(pool, BP_INTERRUPT, &err);
}

static int pool_result(const bpsql_pool *pool, bp_error *err) {
  if (pool->failed != BP_OK) *err = pool->error;
  return pool->failed;
}

/* Delivers the oldest task (done) and frees its slot. Called unlocked. */
static int deliver_oldest(bpsql_pool *pool) {
  slot *s = &pool->slots[pool->delivered % pool->settings.max_tasks];
  bp_error err;
  int rc = s->task.rc;
  if (rc != BP_OK)
    err = s->task.err;
  else
    rc = pool->settings.deliver(pool->settings.context, &s->task, &err);
  size_t len = s->task.len;
  release_task(&s->task);
  pthread_mutex_lock(&pool->lock);
  s->done = 0;
  pool->delivered++;
  pool->bytes -= len;
  pthread_mutex_unlock(&pool->lock);
  return rc == BP_OK ? BP_OK : pool_fail(pool, rc, &err);
}

/* Delivers the done tasks at the front; with `wait`, first waits (asking
** the interrupt check every 100 ms) until the oldest is done. */
static int deliver_ready(bpsql_pool *pool, int wait) {
  for (;;) {
    pthread_mutex_lock(&pool->lock);
    int have = pool->delivered < pool->submitted;
    slot *s = &pool->slots[pool->delivered % pool->settings.max_tasks];
    int timed_out = 0;
    while (wait && have && !s->done && !timed_out) {
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_nsec += 100 * 1000 * 1000;
      if (until.tv_nsec >= 1000 * 1000 * 1000) {
        until.tv_sec++;
        until.tv_nsec -= 1000 * 1000 * 1000;
      }
      timed_out = pthread_cond_timedwait(&pool->work_done, &pool->lock, &until) == ETIMEDOUT;
    }
    int ready = have && s->done;
    pthread_mutex_unlock(&pool->lock);
    if (timed_out && !ready) {
      const bp_interrupt *i = &pool->settings.interrupt;
      if (i->check && i->check(i->context)) return fail_interrupted(pool);
      continue;
    }
    if (!ready) return BP_OK;
    int rc = deliver_oldest(pool);
    if (rc != BP_OK) return rc;
    wait = 0;
  }
}

/* With the ring full, or at the drain: works on the oldest task no worker
** has taken, then delivers what is done; when every task is taken, waits
** for the oldest instead. */
static int work_or_wait(bpsql_pool *pool) {
  pthread_mutex_lock(&pool->lock);
  slot *own = NULL;
  if (pool->taken < pool->submitted)
    own = &pool->slots[pool->taken++ % pool->settings.max_tasks];
  pthread_mutex_unlock(&pool->lock);
  if (!own) return deliver_ready(pool, 1);
  const bp_interrupt interrupt = {submitter_stopping, pool};
  run_task(pool, pool->threads, &own->task, &interrupt);
  pthread_mutex_lock(&pool->lock);
  own->done = 1;
  pthread_mutex_unlock(&pool->lock);
  if (pool->interrupted) return fail_interrupted(pool);
  return deliver_ready(pool, 0);
}

int bpsql_pool_new(int threads, const bpsql_pool_settings *settings, bpsql_pool **out,
                   bp_error *err) {
  *out = NULL;
  if (threads < 1 || threads > MAX_POOL_THREADS)
    return bpsql_error(err, BP_INVALID, "threads must be from 1 to %d, not %d",
                       MAX_POOL_THREADS, threads);
  bpsql_pool *pool = sqlite3_malloc64(sizeof *pool);
  if (!pool) return bpsql_error(err, BP_NOMEM, "out of memory");
  memset(pool, 0, sizeof *pool);
  pool->settings = *settings;
  /* One thread works on the submitting thread: a ring of one slot. */
  if (threads == 1) pool->settings.max_tasks = 1;
  if (pool->settings.max_tasks < 1) pool->settings.max_tasks = 1;
  pool->slots = sqlite3_malloc64(pool->settings.max_tasks * sizeof *pool->slots);
  if (!pool->slots) {
    sqlite3_free(pool);
    return bpsql_error(err, BP_NOMEM, "out of memory");
  }
  memset(pool->slots, 0, pool->settings.max_tasks * sizeof *pool->slots);
  atomic_init(&pool->stop, 0);
  pool->failed = BP_OK;
  if (pthread_mutex_init(&pool->lock, NULL) != 0) {
    sqlite3_free(pool->slots);
    sqlite3_free(pool);
    return bpsql_error(err, BP_NOMEM, "out of memory");
  }
  pthread_cond_init(&pool->work_ready, NULL);
  pthread_cond_init(&pool->work_done, NULL);
  *out = pool;
  for (int i = 0; i < threads - 1; i++) {
    pool->workers[i] = (pool_worker){pool, i, 0};
    int rc = pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]);
    if (rc != 0) {
      bpsql_pool_free(pool);
      *out = NULL;
      return bpsql_error(err, BP_IO, "cannot start a worker thread: %s", strerror(rc));
    }
    pool->threads++;
  }
  return BP_OK;
}

int bpsql_pool_submit(bpsql_pool *pool, char *text, size_t len, int input, bp_model *model,
                      bp_error *err) {
  if (pool->failed != BP_OK) {
    sqlite3_free(text);
    bp_model_release(model);
    return pool_result(pool, err);
  }
  /* Room for the task: a free slot, and the bytes in flight under the
  ** bound unless nothing is in flight (a row larger than the bound goes
  ** alone). */
  int rc = deliver_ready(pool, 0);
  for (;;) {
    if (rc != BP_OK) {
      sqlite3_free(text);
      bp_model_release(model);
      return pool_result(pool, err);
    }
    pthread_mutex_lock(&pool->lock);
    uint64_t in_flight = pool->submitted - pool->delivered;
    int room = in_flight < pool->settings.max_tasks &&
               (in_flight == 0 || pool->bytes + len <= pool->settings.max_bytes);
    if (room) {
      slot *s = &pool->slots[pool->submitted % pool->settings.max_tasks];
      s->task = (bpsql_task){
          .text = text, .len = len, .input = input, .model = model, .index = pool->submitted};
      s->done = 0;
      pool->submitted++;
      pool->bytes += len;
      pthread_cond_signal(&pool->work_ready);
    }
    pthread_mutex_unlock(&pool->lock);
    if (room) break;
    rc = work_or_wait(pool);
  }
  /* Without workers, the task is worked on and delivered right away. */
  if (pool->threads == 0) rc = work_or_wait(pool);
  return rc == BP_OK ? BP_OK : pool_result(pool, err);
}

int bpsql_pool_drain(bpsql_pool *pool, bp_error *err) {
  while (pool->failed == BP_OK && pool->delivered < pool->submitted)
    if (work_or_wait(pool) != BP_OK) break;
  return pool_result(pool, err);
}

void bpsql_pool_free(bpsql_pool *pool) {
  if (!pool) return;
  pthread_mutex_lock(&pool->lock);
  atomic_store(&pool->stop, 1);
  pthread_cond_broadcast(&pool->work_ready);
  pthread_mutex_unlock(&pool->lock);
  for (int i = 0; i < pool->threads; i++) pthread_join(pool->workers[i].thread, NULL);
  for (uint64_t i = pool->delivered; i < pool->submitted; i++)
    release_task(&pool->slots[i % pool->settings.max_tasks].task);
  pthread_cond_destroy(&pool->work_ready);
  pthread_cond_destroy(&pool->work_done);
  pthread_mutex_destroy(&pool->lock);
  sqlite3_free(pool->slots);
  sqlite3_free(pool);
}
