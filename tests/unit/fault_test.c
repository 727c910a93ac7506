/*
** fault_test.c: out-of-memory fault injection over every SQL operation of the
** extension, in SQLite's own manner. The extension is linked in (SQLITE_CORE)
** and SQLite's allocator is wrapped, so that every allocation of the library,
** the binding and SQLite itself can be made to fail. For each operation and
** for N = 1, 2, ... allocation N fails, once (transient) or with every one
** after it (persistent), until the operation runs without meeting a fault.
** Each run must end either with the right result or with SQLITE_NOMEM or an
** "out of memory" message; the stored models must be as before; and once the
** connection is closed, every allocation made must have been freed. Loading
** the extension meets the same faults, each failed load followed by one
** that must succeed.
** Prints a line per operation with its fault points, then
** "fault: N passed, N failed".
**   fault_test DATA_DIRECTORY     (tests/data: small.model, small.zip, small.sp.model)
*/
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include "sqlite3_bytepiece.h"

static int passed, failed;

/* ---- The failing allocator ---------------------------------------------- */

static sqlite3_mem_methods system_methods;
static long live_allocations; /* allocations not yet freed */
static long allocation_calls; /* since the fault was armed */
static long fail_at;          /* 0: no fault armed */
static int fail_persistently;
static int fault_fired;

static int should_fail(void) {
  if (!fail_at) return 0;
  long call = __atomic_add_fetch(&allocation_calls, 1, __ATOMIC_RELAXED);
  if (call == fail_at || (fail_persistently && call > fail_at)) {
    __atomic_store_n(&fault_fired, 1, __ATOMIC_RELAXED);
    return 1;
  }
  return 0;
}

static void *fault_malloc(int n) {
  if (should_fail()) return NULL;
  void *p = system_methods.xMalloc(n);
  if (p) __atomic_add_fetch(&live_allocations, 1, __ATOMIC_RELAXED);
  return p;
}

static void fault_free(void *p) {
  if (p) __atomic_sub_fetch(&live_allocations, 1, __ATOMIC_RELAXED);
  system_methods.xFree(p);
}

static void *fault_realloc(void *p, int n) {
  if (should_fail()) return NULL;
  return system_methods.xRealloc(p, n);
}

static int fault_size(void *p) { return system_methods.xSize(p); }
static int fault_roundup(int n) { return system_methods.xRoundup(n); }
static int fault_init(void *data) { return system_methods.xInit(data); }
static void fault_shutdown(void *data) { system_methods.xShutdown(data); }

static void arm(long n, int persistent) {
  allocation_calls = 0;
  fault_fired = 0;
  fail_persistently = persistent;
  __atomic_store_n(&fail_at, n, __ATOMIC_SEQ_CST);
}

static void disarm(void) { __atomic_store_n(&fail_at, 0, __ATOMIC_SEQ_CST); }

/* ---- Running SQL and recording what it gives ------------------------------- */

typedef struct {
  char *text;
  size_t length, capacity;
} output;

static void output_add(output *o, const char *s, size_t n) {
  if (o->length + n + 1 > o->capacity) {
    o->capacity = (o->length + n + 1) * 2;
    o->text = realloc(o->text, o->capacity);
    if (!o->text) abort();
  }
  memcpy(o->text + o->length, s, n);
  o->length += n;
  o->text[o->length] = 0;
}

/* Runs every statement of sql, appending its rows to out. Returns the first
** error code (SQLITE_OK when all ran); *message gets a copy of its message. */
static int run_sql(sqlite3 *db, const char *sql, output *out, char **message) {
  *message = NULL;
  while (sql && *sql) {
    sqlite3_stmt *stmt = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, &tail);
    if (rc == SQLITE_OK && !stmt) break; /* only whitespace left */
    while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      rc = SQLITE_OK;
      for (int i = 0; i < sqlite3_column_count(stmt); i++) {
        const unsigned char *value = sqlite3_column_text(stmt, i);
        if (!value && sqlite3_column_type(stmt, i) != SQLITE_NULL) {
          rc = SQLITE_NOMEM;
          break;
        }
        const char *shown = value ? (const char *)value : "NULL";
        output_add(out, shown, strlen(shown));
        output_add(out, "|", 1);
      }
      output_add(out, "\n", 1);
    }
    if (rc == SQLITE_DONE) rc = SQLITE_OK;
    if (rc != SQLITE_OK) {
      int code = sqlite3_extended_errcode(db);
      if (rc == SQLITE_NOMEM) code = SQLITE_NOMEM;
      *message = strdup(sqlite3_errmsg(db));
      sqlite3_finalize(stmt);
      return code ? code : rc;
    }
    sqlite3_finalize(stmt);
    sql = tail;
  }
  return SQLITE_OK;
}

/* ---- The operations ---------------------------------------------------------- */

static char data_directory[1024], work_directory[1024];

/* Every operation starts from a database with a model 'm' and documents.
** An operation that changes bp_models is one statement, so that a failure
** must leave bp_models exactly as it was. */
static const char *common_setup =
    "INSERT INTO bp_models(name, model) VALUES ('m', bp_model_load('%D/small.model'));"
    "CREATE TABLE docs(id INTEGER PRIMARY KEY, body);"
    "INSERT INTO docs(body) VALUES"
    " ('static int matcher_build(bp_matcher *m) { return 0; }\n\n\nnext line'),"
    " ('今天天气不错 hello world 123'), ('cafe\xcc\x81 e\xcc\x81t\xc3\xa9'),"
    " (''), (NULL), (x'00ff41'),"
    " ('The model value is compact; pieces are sorted by length and bytes.\n');";

typedef struct {
  const char *name;
  const char *setup; /* after common_setup; %D is the data directory, %W a work one */
  const char *sql;   /* the operation that meets the faults */
} operation;

static const operation operations[] = {
    {"model load (JSON)", "",
     "INSERT INTO bp_models(name, model) VALUES ('j', bp_model_load('%D/small.model'));"},
    {"model load (zip)", "",
     "INSERT INTO bp_models(name, model) VALUES ('z', bp_model_load('%D/small.zip'));"},
    {"encode, count, decode", "",
     "SELECT bp_encode(body, 'm'), bp_count(body, 'm'), hex(bp_encode_packed(body, 'm')),"
     " bp_decode(bp_encode(body, 'm'), 'm'), hex(bp_decode_bytes(bp_encode(body, 'm'), 'm'))"
     " FROM docs;"},
    {"encode with options", "",
     "SELECT bp_encode(body, 'm', '{\"bos\": true, \"eos\": true}'), bp_count(body, 'm', 0.5, "
     "7),"
     " bp_encode(body, 'm', 0.1, id) FROM docs;"},
    {"encode a model value", "",
     "SELECT bp_encode(body, (SELECT model FROM bp_models WHERE name = 'm')) FROM docs;"},
    {"bp_tokens", "",
     "SELECT docs.id, t.position, t.id, hex(t.piece), t.text, t.start, t.end"
     " FROM docs, bp_tokens(docs.body, 'm') AS t;"
     "SELECT group_concat(id) FROM bp_tokens('abc abc', 'm', 0.3, 5);"},
    {"bp_vocab", "",
     "SELECT count(*), sum(length(piece)), sum(count), printf('%.6f', sum(score)) FROM "
     "bp_vocab('m');"
     "SELECT * FROM bp_vocab('m') WHERE id = 300;"},
    {"budgets and statistics", "",
     "SELECT bp_truncate(body, 5, 'm') FROM docs;"
     "SELECT docs.id, c.* FROM docs, bp_chunks(docs.body, 8, 'm', 2) AS c;"
     "SELECT bp_stats(body, 'm') FROM docs;"},
    {"model save", "", "SELECT bp_model_save('m', '%W/saved.model');"},
    {"SentencePiece save", "",
     "SELECT bp_model_save('m', '%W/saved.sp.model', 'sentencepiece');"},
    {"SentencePiece load", "",
     "INSERT INTO bp_models(name, model) VALUES ('s', bp_model_load('%D/small.sp.model'));"},
    {"bp_models insert", "",
     "INSERT INTO bp_models(name, model) SELECT 'n', model FROM bp_models WHERE name = 'm';"},
    {"bp_models update",
     "INSERT INTO bp_models(name, model) SELECT 'n', model FROM bp_models WHERE name = 'm';",
     "UPDATE bp_models SET name = 'o' WHERE name = 'n';"},
    {"bp_models delete", "", "DELETE FROM bp_models WHERE name = 'm';"},
    {"bp_models scan", "", "SELECT name, vocab_size, length(model) FROM bp_models;"},
    {"training", "",
     "INSERT INTO bp_models(name, model)"
     " SELECT 't', bp_train(body, '{\"vocab_size\": 300, \"min_count\": 1, \"order\": 4}') "
     "FROM docs;"},
    {"training (2 threads, spilling)", "",
     "SELECT length(bp_train(body, json_object('vocab_size', 280, 'min_count', 1,"
     " 'threads', 2, 'max_memory', 1))) FROM docs;"},
    {"training in rounds", "",
     "WITH s0(s) AS (SELECT bp_train_start('{\"vocab_size\": 280, \"min_count\": 1, "
     "\"order\": 3}')),"
     " s1(s) AS (SELECT bp_train_merge((SELECT s FROM s0), p) FROM"
     "  (SELECT bp_train_partial(body, (SELECT s FROM s0)) AS p FROM docs WHERE id % 2"
     "   UNION ALL SELECT bp_train_partial(body, (SELECT s FROM s0)) FROM docs WHERE id % 2 = "
     "0)),"
     " s2(s) AS (SELECT bp_train_merge((SELECT s FROM s1), p) FROM"
     "  (SELECT bp_train_combine(q) AS p FROM"
     "   (SELECT bp_train_partial(body, (SELECT s FROM s1)) AS q FROM docs))),"
     " s3(s) AS (SELECT bp_train_merge((SELECT s FROM s2), p, '{\"max_memory\": 1}') FROM"
     "  (SELECT bp_train_partial(body, (SELECT s FROM s2), '{\"threads\": 2}') AS p FROM docs))"
     " SELECT length(bp_train_model(s)), bp_train_info(s) FROM s3;"},
    {"model shrink", "", "SELECT length(bp_model_shrink('m', 400));"},
    {"token export", "",
     "SELECT json_extract(bp_export(body, '%W/tokens', '{\"model\": \"m\", \"eos\": true}'),"
     " '$.tokens') FROM docs;"
     "SELECT json_extract(bp_export(body, '%W/tokens', json_object('model', 'm', 'threads', 2,"
     " 'dtype', 'uint16', 'format', 'megatron')), '$.documents') FROM docs;"},
    {"FTS5 indexing", "CREATE VIRTUAL TABLE f USING fts5(body, tokenize = 'bytepiece m');",
     "INSERT INTO f(rowid, body) SELECT id, body FROM docs WHERE body IS NOT NULL;"
     "DELETE FROM f WHERE rowid = 2;"
     "INSERT INTO f(f) VALUES ('integrity-check');"},
    {"FTS5 querying",
     "CREATE VIRTUAL TABLE f USING fts5(body, tokenize = 'bytepiece m pieces 1');"
     "INSERT INTO f(rowid, body) SELECT id, body FROM docs WHERE body IS NOT NULL;",
     "SELECT rowid, highlight(f, 0, '[', ']') FROM f WHERE f MATCH 'matcher' ORDER BY rowid;"
     "SELECT rowid FROM f WHERE f MATCH '天气' ORDER BY rowid;"
     "SELECT rowid FROM f WHERE f MATCH bp_fts_query('天气 OR matcher', 'm') ORDER BY rank;"},
};

/* Expands %D and %W. */
static char *expand(const char *sql) {
  size_t size = strlen(sql) + 1;
  for (const char *p = sql; (p = strchr(p, '%')); p++) size += 1024;
  char *out = malloc(size), *o = out;
  if (!out) abort();
  for (const char *p = sql; *p; p++) {
    if (p[0] == '%' && (p[1] == 'D' || p[1] == 'W')) {
      const char *d = p[1] == 'D' ? data_directory : work_directory;
      o += sprintf(o, "%s", d);
      p++;
    } else {
      *o++ = *p;
    }
  }
  *o = 0;
  return out;
}

static const char *state_sql =
    "SELECT name, vocab_size, hex(substr(model, 17, 32)) FROM bp_models ORDER BY name;";

static sqlite3 *open_prepared(const operation *op) {
  sqlite3 *db = NULL;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) abort();
  char *setup = malloc(strlen(common_setup) + strlen(op->setup) + 1);
  if (!setup) abort();
  strcpy(setup, common_setup);
  strcat(setup, op->setup);
  char *sql = expand(setup);
  char *message;
  output ignored = {0};
  if (run_sql(db, sql, &ignored, &message) != SQLITE_OK) {
    printf("setup of '%s' failed: %s\n", op->name, message);
    exit(1);
  }
  free(ignored.text);
  free(sql);
  free(setup);
  return db;
}

static int is_out_of_memory(int code, const char *message) {
  return code == SQLITE_NOMEM || (message && strstr(message, "out of memory"));
}

/* A file left in the work directory other than the saved models and
** exported tokens: a temporary file that a failed save or export did not
** remove. */
static int stray_files(void) {
  DIR *d = opendir(work_directory);
  if (!d) return 1;
  int stray = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "saved.model") &&
        strcmp(e->d_name, "saved.sp.model") && strcmp(e->d_name, "tokens.bin") &&
        strcmp(e->d_name, "tokens.idx"))
      stray++;
  closedir(d);
  return stray;
}

/* Runs op under allocation faults, N = 1, 2, ... until one run meets none;
** returns the number of fault points. */
static long run_with_faults(const operation *op, const char *expected, long baseline,
                            int persistent) {
  char *sql = expand(op->sql);
  int failed_before = failed;
  long n;
#define REPORT(...)                                   \
  do {                                                \
    if (failed == failed_before) printf(__VA_ARGS__); \
    failed++;                                         \
  } while (0)
  for (n = 1;; n++) {
    sqlite3 *db = open_prepared(op);
    output before = {0}, result = {0}, after = {0};
    char *message;
    if (run_sql(db, state_sql, &before, &message) != SQLITE_OK) abort();
    arm(n, persistent);
    int rc = run_sql(db, sql, &result, &message);
    disarm();
    int fired = fault_fired;
    char *state_message;
    if (run_sql(db, state_sql, &after, &state_message) != SQLITE_OK) {
      REPORT("FAILED %s, fault %ld: reading bp_models afterwards: %s\n", op->name, n,
             state_message);
    }
    if (rc == SQLITE_OK) {
      if (strcmp(result.text ? result.text : "", expected) != 0) {
        REPORT("FAILED %s, fault %ld (%s): a wrong result instead of an error\n", op->name, n,
               persistent ? "persistent" : "transient");
      }
    } else if (!is_out_of_memory(rc, message)) {
      REPORT("FAILED %s, fault %ld (%s): error %d '%s' is not out of memory\n", op->name, n,
             persistent ? "persistent" : "transient", rc, message);
    } else if (strcmp(before.text ? before.text : "", after.text ? after.text : "") != 0) {
      REPORT("FAILED %s, fault %ld (%s): bp_models changed by a failed operation\n", op->name,
             n, persistent ? "persistent" : "transient");
    }
    free(message);
    free(before.text);
    free(result.text);
    free(after.text);
    if (sqlite3_close(db) != SQLITE_OK) {
      REPORT("FAILED %s, fault %ld: the connection would not close\n", op->name, n);
    }
    if (live_allocations != baseline) {
      REPORT("FAILED %s, fault %ld (%s): %ld allocations leaked\n", op->name, n,
             persistent ? "persistent" : "transient", live_allocations - baseline);
      baseline = live_allocations;
    }
    if (stray_files()) {
      REPORT("FAILED %s, fault %ld: a temporary file was left behind\n", op->name, n);
    }
    if (!fired) break;
  }
  free(sql);
  if (failed == failed_before)
    passed++;
  else
    printf("  (%d failed runs in all)\n", failed - failed_before);
  return n - 1;
#undef REPORT
}

/* Loading under faults: a load that fails at allocation N, for N = 1, 2,
** ..., then a load without faults. The connection must then work (the
** registrations the first load made may not use state the second one
** replaced), close, and free everything. Returns the number of fault
** points. */
/* What a load registered: functions, modules, and whether the FTS5
** tokenizer is there (without a model its constructor fails, saying so). */
#define REGISTERED_SQL                                                            \
  "SELECT count(*) FROM bp_models; SELECT bp_version();"                          \
  "SELECT count(DISTINCT name || '/' || narg) FROM pragma_function_list "         \
  "WHERE name LIKE 'bp\\_%' ESCAPE '\\';"                                         \
  "SELECT count(*) FROM pragma_module_list WHERE name LIKE 'bp\\_%' ESCAPE '\\';" \
  "SELECT count(*) FROM pragma_module_list WHERE name = 'fts5';"

static int fts5_tokenizer_registered(sqlite3 *db) {
  int rc = sqlite3_exec(db, "CREATE VIRTUAL TABLE temp.f USING fts5(x, tokenize = 'bytepiece')",
                        NULL, NULL, NULL);
  int found = rc == SQLITE_OK || !strstr(sqlite3_errmsg(db), "no such tokenizer");
  sqlite3_exec(db, "DROP TABLE IF EXISTS temp.f", NULL, NULL, NULL);
  return found;
}

static long load_with_faults(void) {
  long baseline = -1, n;
  char *registered = NULL;
  for (n = 0;; n++) {
    sqlite3 *db = NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) abort();
    char *error = NULL;
    if (n > 0) arm(n, 0);
    int rc = sqlite3_bytepiece_init(db, &error, NULL);
    disarm();
    int fired = fault_fired;
    sqlite3_free(error);
    error = NULL;
    if (rc != SQLITE_OK) rc = sqlite3_bytepiece_init(db, &error, NULL);
    output result = {0};
    char *message = NULL;
    if (rc != SQLITE_OK) {
      printf("FAILED loading after a load failed at allocation %ld: %s\n", n,
             error ? error : "?");
      failed++;
    } else if (run_sql(db, REGISTERED_SQL, &result, &message) != SQLITE_OK) {
      printf("FAILED loading, fault %ld: %s\n", n, message);
      failed++;
    } else if (!registered) {
      registered = result.text; /* the fault-free load's: everything */
      result.text = NULL;
    } else if (strcmp(result.text, registered) != 0) {
      printf("FAILED loading, fault %ld: registered '%s' instead of '%s'\n", n, result.text,
             registered);
      failed++;
    }
    free(message);
    message = NULL;
    if (rc == SQLITE_OK &&
        (run_sql(db, "SELECT bp_count('abc', 'none');", &result, &message) != SQLITE_ERROR ||
         !message || !strstr(message, "no model named 'none'"))) {
      printf("FAILED loading, fault %ld: bp_count gave '%s'\n", n, message ? message : "");
      failed++;
    }
    if (rc == SQLITE_OK && !fts5_tokenizer_registered(db)) {
      printf("FAILED loading, fault %ld: no bytepiece FTS5 tokenizer\n", n);
      failed++;
    }
    free(message);
    free(result.text);
    sqlite3_free(error);
    if (sqlite3_close(db) != SQLITE_OK) {
      printf("FAILED loading, fault %ld: the connection would not close\n", n);
      failed++;
    }
    if (baseline < 0)
      baseline = live_allocations; /* after one-time set-up */
    else if (live_allocations != baseline) {
      printf("FAILED loading, fault %ld: %ld allocations leaked\n", n,
             live_allocations - baseline);
      failed++;
      baseline = live_allocations;
    }
    if (n > 0 && !fired) break;
  }
  free(registered);
  return n - 1;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  snprintf(data_directory, sizeof data_directory, "%s", argv[1]);
  char template[] = "/tmp/bp-fault-XXXXXX";
  if (!mkdtemp(template)) return 2;
  snprintf(work_directory, sizeof work_directory, "%s", template);

  sqlite3_config(SQLITE_CONFIG_GETMALLOC, &system_methods);
  static sqlite3_mem_methods methods = {fault_malloc,  fault_free, fault_realloc,  fault_size,
                                        fault_roundup, fault_init, fault_shutdown, NULL};
  sqlite3_config(SQLITE_CONFIG_MALLOC, &methods);
  int failed_before = failed;
  long load_points = load_with_faults();
  if (load_points == 0) {
    printf("FAILED loading: no allocation was met\n");
    failed++;
  }
  if (failed == failed_before) passed++;
  printf("fault points: %-32s %6ld\n", "loading", load_points);
  sqlite3_auto_extension((void (*)(void))sqlite3_bytepiece_init);

  long total_points = 0;
  for (size_t i = 0; i < sizeof operations / sizeof *operations; i++) {
    const operation *op = &operations[i];
    const char *only = getenv("BP_FAULT_ONLY");
    if (only && !strstr(op->name, only)) continue;
    /* The reference run: what the operation gives when memory is plenty.
    ** Run twice, so that one-time global set-up is not taken for a leak. */
    output expected = {0};
    for (int round = 0; round < 2; round++) {
      sqlite3 *db = open_prepared(op);
      char *sql = expand(op->sql), *message;
      free(expected.text);
      expected = (output){0};
      if (run_sql(db, sql, &expected, &message) != SQLITE_OK) {
        printf("FAILED %s without faults: %s\n", op->name, message);
        failed++;
      }
      free(message);
      free(sql);
      sqlite3_close(db);
    }
    long baseline = live_allocations;
    const char *want = expected.text ? expected.text : "";
    long transient = run_with_faults(op, want, baseline, 0);
    long persistent = run_with_faults(op, want, baseline, 1);
    if (transient == 0 || persistent == 0) {
      printf("FAILED %s: no allocation was met\n", op->name);
      failed++;
    }
    printf("fault points: %-32s %6ld (transient and persistent: %ld)\n", op->name, transient,
           persistent);
    total_points += transient;
    free(expected.text);
  }
  char saved[1100];
  snprintf(saved, sizeof saved, "%s/saved.model", work_directory);
  unlink(saved);
  snprintf(saved, sizeof saved, "%s/saved.sp.model", work_directory);
  unlink(saved);
  rmdir(work_directory);
  printf("fault points in all: %ld\n", total_points);
  printf("fault: %d passed, %d failed\n", passed, failed);
  return failed != 0;
}
