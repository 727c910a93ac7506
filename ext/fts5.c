/*
** fts5.c: a BytePiece tokenizer for FTS5 that finds every occurrence.
**
**     CREATE VIRTUAL TABLE docs_fts USING fts5(body, tokenize = 'bytepiece zh80k');
**     SELECT highlight(docs_fts, 0, '[', ']') FROM docs_fts WHERE docs_fts MATCH '天气';
**     SELECT rowid FROM docs_fts WHERE docs_fts MATCH bp_fts_query('天气 OR linux');
**
** Arguments: an optional model name from bp_models (else the default
** model), then key/value options: `pieces 0|1` (default 1); `subwords 0|1`
** of earlier versions is accepted and has no effect. Unknown keys are an
** error.
**
** Index layout. Text is normalized to NFC and read character by character
** (bp_char_next): a run of letters and digits of a script that spaces its
** words (Latin, Cyrillic, ...) is one term, lower-cased (bp_text_fold);
** every character of a script written without spaces (Han, kana, Hangul,
** Thai, ...) and every symbol is a term of its own at its own position;
** the white space and punctuation between two terms is one term (its
** punctuation, white space as one space), so a phrase does not match across
** a separator the query does not have. A phrase query is read the same
** way, so `"天气"` is the phrase 天 气 and finds every document that holds
** those characters in a row, whatever the model makes of them. With
** pieces 1 (the default), each piece of the model's segmentation of a
** document that spans two or more such characters is also indexed, at the
** position of its first character (FTS5_TOKEN_COLOCATED): it cannot match
** a phrase of characters (it is never a single character), but
** bp_fts_query adds it as an alternative, so documents where the query is a
** whole piece rank above those where it straddles pieces. The pieces' ends
** are walked as the terms are reported (no array of them, no pass that
** does not hear sqlite3_interrupt). Offsets are into the original text, so
** highlight() and snippet() mark exactly the characters of a match and
** always cut between characters. With pieces 0 the model is never used:
** such an index does not depend on it, and nothing below applies.
**
** The model record. FTS5 does not tell a tokenizer which table it serves,
** so a tokenizer finds its tables by their declarations: the fts5 tables of
** every attached schema (sqlite_schema) whose tokenize= arguments give the
** same model name and pieces 1, a group. Each table keeps in its own
** <table>_config shadow table, under the key RECORD_KEY (FTS5 ignores keys
** it does not know), the digest and name of the model that built its index;
** the record moves and goes with the table. At the first use in each
** statement (tokenizer_check; again whenever the store or a database
** changed), every table of the group is checked: a record of the model in
** use is fine; an empty index (CREATE, delete-all, the start of rebuild)
** gets the record when a document is indexed; any other table is stale,
** and then only the indexing of a document while a table was found empty
** (the one being built) goes on, everything else fails with SQLITE_ERROR
** (FTS5 passes no message of a tokenizer on: the user sees "SQL logic
** error"; the reason and remedy go to sqlite3_log). So every connection
** notices a changed model at its next statement, and a rebuild from any
** connection clears it. A table declared without a model name goes on with
** the model its record names while that name holds the recorded digest, so
** storing a second model (which leaves no default) changes nothing.
**
** The model is resolved (and compiled) when the tokenizer is first used,
** not when the table is opened (but for CREATE VIRTUAL TABLE, which fails
** on a wrong name), so a table whose model is gone can still be dropped.
**
** Registered through FTS5's version 2 tokenizer interface where SQLite has
** it (3.47 and later, built against such headers; the locale it passes is
** not needed here), else through version 1, which SQLite 3.40 has.
*/
#include "binding.h"

#include <string.h>

SQLITE_EXTENSION_INIT3

/* Terms are at most this long (a longer word is indexed by its first bytes,
** in documents and queries alike). */
#define TERM_BYTES 256

/* A query phrase starting with this byte names one piece term
** (bp_fts_query writes it); document text never yields it as a term. */
#define PIECE_MARK '\x01'

/* The key of the model record in an FTS5 table's <table>_config shadow
** table (FTS5 loads the keys it knows and ignores the others). Its value
** is the digest of the model that built the index, in hex, a space, and
** the model's name. */
#define RECORD_KEY "bytepiece-model"
#define DIGEST_HEX 64

struct Fts5Tokenizer {
  bpsql_connection *connection;
  char *name;             /* the declared model name; NULL: the default model */
  int pieces;             /* index the model's pieces for ranking */
  bp_model *model;        /* the model in use, as of the last check */
  char *model_name;       /* the name it was resolved by (for the default: its name) */
  bp_interrupt interrupt; /* indexing a huge document stops on sqlite3_interrupt */
  /* The last check of the tables this tokenizer may serve (table_check),
  ** trusted while `stamp` is unchanged: queries may go on when no table
  ** was stale, documents also when one was being built. */
  bool fine_for_queries, fine_for_documents;
  sqlite3_uint64 stamp;
  /* When the check wrote records: a statement counting them, run at each
  ** later use, since a rollback takes them away and changes no stamp. */
  sqlite3_stmt *written;
  int written_count;
};

/* Whether the statement running is a CREATE (of the table this tokenizer is
** made for: FTS5 makes tokenizers when a table is created or opened, and
** only CREATE VIRTUAL TABLE creates one). Opening a table for any other
** statement, DROP TABLE included, must not need its model. */
static bool creating_table(sqlite3 *db) {
  for (sqlite3_stmt *s = sqlite3_next_stmt(db, NULL); s; s = sqlite3_next_stmt(db, s)) {
    const char *sql = sqlite3_sql(s);
    if (!sqlite3_stmt_busy(s) || !sql) continue;
    while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r') sql++;
    if (sqlite3_strnicmp(sql, "CREATE", 6) == 0) return true;
  }
  return false;
}

/* `subwords` is accepted and ignored: every character is indexed now, which
** is what it approximated, and tables declared with it must still open. */
static bool is_option(const char *key) {
  return strcmp(key, "pieces") == 0 || strcmp(key, "subwords") == 0;
}

/* Reads the tokenizer's arguments: [model name] then key/value options.
** *name points into `arguments` (NULL: the default model). */
static int parse_arguments(const char *const *arguments, int count, const char **name,
                           int *pieces) {
  int i = 0;
  *name = NULL;
  *pieces = 1;
  if (count > 0 && !is_option(arguments[0])) *name = arguments[i++];
  for (; i < count; i += 2) {
    if (!is_option(arguments[i]) || i + 1 >= count ||
        (strcmp(arguments[i + 1], "0") != 0 && strcmp(arguments[i + 1], "1") != 0))
      return SQLITE_ERROR;
    if (strcmp(arguments[i], "pieces") == 0) *pieces = arguments[i + 1][0] == '1';
  }
  return SQLITE_OK;
}

static int tokenizer_create(void *user_data, const char **arguments, int count,
                            Fts5Tokenizer **out) {
  *out = NULL;
  const char *name;
  int pieces;
  if (parse_arguments(arguments, count, &name, &pieces) != SQLITE_OK)
    return SQLITE_ERROR; /* FTS5 reports "error in tokenizer constructor" */
  if (creating_table(bpsql_connection_db(user_data))) {
    /* A new table gets its model now, so that a wrong name fails the CREATE. */
    bp_model *model;
    char *message;
    int rc = bpsql_resolve_model_name(user_data, name, "bytepiece tokenizer", &message, &model);
    sqlite3_free(message);
    if (rc != SQLITE_OK) return rc;
    bp_model_release(model);
  }
  Fts5Tokenizer *t = sqlite3_malloc64(sizeof *t);
  if (!t) return SQLITE_NOMEM;
  memset(t, 0, sizeof *t);
  if (name && !(t->name = sqlite3_mprintf("%s", name))) {
    sqlite3_free(t);
    return SQLITE_NOMEM;
  }
  t->connection = bpsql_connection_retain(user_data);
  t->pieces = pieces;
  t->interrupt = (bp_interrupt){bpsql_sql_interrupted, bpsql_connection_db(user_data)};
  *out = t;
  return SQLITE_OK;
}

static void tokenizer_delete(Fts5Tokenizer *t) {
  if (!t) return;
  bp_model_release(t->model);
  bpsql_connection_release(t->connection);
  sqlite3_free(t->name);
  sqlite3_free(t->model_name);
  sqlite3_finalize(t->written);
  sqlite3_free(t);
}

/* ---- The tables a tokenizer serves -----------------------------------------
** FTS5 does not tell a tokenizer which table it serves, so the tables are
** found by their declarations: every fts5 table of every attached schema
** whose tokenize= arguments resolve to the same model name and pieces 1.
** Tables declared alike are checked together (a group). */

typedef struct fts_table {
  char *schema, *name;
  bool contentless; /* content='': FTS5 cannot rebuild it */
  bool has_record;  /* a model record was found */
  char digest[DIGEST_HEX + 1];
  char *record_name; /* the model name in the record */
  bool empty;        /* nothing indexed: no row in <table>_idx */
} fts_table;

typedef struct fts_group {
  fts_table *tables;
  int count, capacity;
} fts_group;

static void group_free(fts_group *g) {
  for (int i = 0; i < g->count; i++) {
    sqlite3_free(g->tables[i].schema);
    sqlite3_free(g->tables[i].name);
    sqlite3_free(g->tables[i].record_name);
  }
  sqlite3_free(g->tables);
  memset(g, 0, sizeof *g);
}

/* An SQL token of a CREATE VIRTUAL TABLE statement, as SQLite stores it. */
static bool is_word_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '$' || (unsigned char)c >= 0x80;
}

static const char *skip_sql_space(const char *p) {
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f') p++;
    if (p[0] == '-' && p[1] == '-') {
      while (*p && *p != '\n') p++;
    } else if (p[0] == '/' && p[1] == '*') {
      const char *end = strstr(p + 2, "*/");
      p = end ? end + 2 : p + strlen(p);
    } else {
      return p;
    }
  }
}

/* The end of the token at p: a quoted string or identifier ('', "", ``,
** []), a word, or one other character. */
static const char *sql_token_end(const char *p) {
  char close = *p == '[' ? ']' : *p;
  if (close == '\'' || close == '"' || close == '`' || close == ']') {
    for (p++; *p; p++)
      if (*p == close) {
        if (close != ']' && p[1] == close)
          p++;
        else
          return p + 1;
      }
    return p;
  }
  if (is_word_byte(*p)) {
    while (is_word_byte(*p)) p++;
    return p;
  }
  return *p ? p + 1 : p;
}

/* A copy of the token [p, end) with its quotes removed (as sqlite3Dequote
** and FTS5's dequoting do), or NULL when out of memory. */
static char *dequoted(const char *p, const char *end) {
  char *out = sqlite3_malloc64((sqlite3_uint64)(end - p) + 1);
  if (!out) return NULL;
  char close = *p == '[' ? ']' : *p;
  size_t n = 0;
  if (close == '\'' || close == '"' || close == '`' || close == ']') {
    for (p++; p < end; p++) {
      if (*p == close) {
        if (close == ']' || p + 1 >= end || p[1] != close) break;
        p++;
      }
      out[n++] = *p;
    }
  } else {
    memcpy(out, p, (size_t)(end - p));
    n = (size_t)(end - p);
  }
  out[n] = 0;
  return out;
}

static bool token_is(const char *p, const char *end, const char *word) {
  size_t n = strlen(word);
  return (size_t)(end - p) == n && sqlite3_strnicmp(p, word, (int)n) == 0;
}

/* Splits the value of tokenize= into words as FTS5 does (barewords, or
** '...' literals, dequoted) and reads them: whether it names the bytepiece
** tokenizer with pieces 1, and its model name (to free) in *name. */
static int parse_tokenize(const char *value, bool *bytepiece, char **name) {
  *bytepiece = false;
  *name = NULL;
  char *words[64];
  int count = 0, rc = SQLITE_OK;
  for (const char *p = skip_sql_space(value); *p && count < 64; p = skip_sql_space(p)) {
    const char *end = *p == '\'' ? sql_token_end(p) : p;
    if (*p != '\'')
      while (*end && is_word_byte(*end)) end++;
    if (end == p) break; /* FTS5 would not accept it */
    if (!(words[count] = dequoted(p, end))) {
      rc = SQLITE_NOMEM;
      break;
    }
    count++;
    p = end;
  }
  const char *model;
  int pieces;
  if (rc == SQLITE_OK && count > 0 && sqlite3_stricmp(words[0], "bytepiece") == 0 &&
      parse_arguments((const char *const *)words + 1, count - 1, &model, &pieces) ==
          SQLITE_OK &&
      pieces) {
    *bytepiece = true;
    if (model && !(*name = sqlite3_mprintf("%s", model))) rc = SQLITE_NOMEM;
  }
  for (int i = 0; i < count; i++) sqlite3_free(words[i]);
  return rc;
}

/* Reads `sql`, a CREATE VIRTUAL TABLE statement: whether it is an fts5 table
** whose tokenizer is bytepiece with pieces 1 and the model `model` (NULL:
** the default), and whether it is contentless. */
static int parse_declaration(const char *sql, const char *model, bool *member,
                             bool *contentless) {
  *member = *contentless = false;
  const char *p = skip_sql_space(sql), *end;
  /* CREATE VIRTUAL TABLE [IF NOT EXISTS] [schema.]name USING module ( */
  for (;; p = skip_sql_space(end)) {
    end = sql_token_end(p);
    if (end == p) return SQLITE_OK;
    if (token_is(p, end, "USING")) break;
  }
  p = skip_sql_space(end);
  end = sql_token_end(p);
  char *module = dequoted(p, end);
  if (!module) return SQLITE_NOMEM;
  bool fts5 = sqlite3_stricmp(module, "fts5") == 0;
  sqlite3_free(module);
  p = skip_sql_space(end);
  if (!fts5 || *p != '(') return SQLITE_OK;
  p++;
  int rc = SQLITE_OK;
  bool bytepiece = false;
  char *name = NULL;
  while (*p && rc == SQLITE_OK) {
    /* One argument: up to a comma or the closing parenthesis at depth 0. */
    p = skip_sql_space(p);
    const char *key = p, *key_end = sql_token_end(p);
    int depth = 0;
    const char *arg_end = p;
    while (*arg_end && (depth > 0 || (*arg_end != ',' && *arg_end != ')'))) {
      if (*arg_end == '(') depth++;
      if (*arg_end == ')') depth--;
      const char *next = sql_token_end(arg_end);
      arg_end = skip_sql_space(next == arg_end ? arg_end + 1 : next);
    }
    const char *equals = skip_sql_space(key_end);
    if (*equals == '=' && key_end <= arg_end) {
      const char *value = skip_sql_space(equals + 1);
      const char *value_end = sql_token_end(value);
      char *v = value < arg_end ? dequoted(value, value_end) : sqlite3_mprintf("");
      if (!v) {
        rc = SQLITE_NOMEM;
        break;
      }
      if (token_is(key, key_end, "tokenize")) {
        sqlite3_free(name);
        rc = parse_tokenize(v, &bytepiece, &name);
      } else if (token_is(key, key_end, "content")) {
        *contentless = v[0] == 0;
      }
      sqlite3_free(v);
    }
    if (*arg_end != ',') break;
    p = arg_end + 1;
  }
  if (rc == SQLITE_OK)
    *member =
        bytepiece && (name == NULL) == (model == NULL) && (!name || strcmp(name, model) == 0);
  sqlite3_free(name);
  return rc;
}

/* Runs `sql` (made with sqlite3_mprintf, freed here) and gives its first
** row's first column as text (NULL for none or NULL) in *text. */
static int query_text(sqlite3 *db, char *sql, char **text, bool *found) {
  *text = NULL;
  *found = false;
  if (!sql) return SQLITE_NOMEM;
  sqlite3_stmt *stmt;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
  sqlite3_free(sql);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    *found = true;
    const char *v = (const char *)sqlite3_column_text(stmt, 0);
    if (v && !(*text = sqlite3_mprintf("%s", v))) {
      sqlite3_finalize(stmt);
      return SQLITE_NOMEM;
    }
  }
  int finalize_rc = sqlite3_finalize(stmt);
  rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? finalize_rc : rc;
  if (rc != SQLITE_OK) {
    sqlite3_free(*text);
    *text = NULL;
  }
  return rc;
}

/* Reads a table's model record and whether its index is empty. */
static int table_read(sqlite3 *db, fts_table *table) {
  char *value;
  bool found;
  int rc = query_text(
      db,
      sqlite3_mprintf("SELECT v FROM \"%w\".\"%w_config\" WHERE k = '" RECORD_KEY "'",
                      table->schema, table->name),
      &value, &found);
  if (rc != SQLITE_OK) return rc;
  if (value && strlen(value) > DIGEST_HEX && value[DIGEST_HEX] == ' ') {
    table->has_record = true;
    memcpy(table->digest, value, DIGEST_HEX);
    table->digest[DIGEST_HEX] = 0;
    if (!(table->record_name = sqlite3_mprintf("%s", value + DIGEST_HEX + 1)))
      rc = SQLITE_NOMEM;
  }
  sqlite3_free(value);
  if (rc != SQLITE_OK) return rc;
  rc = query_text(
      db,
      sqlite3_mprintf("SELECT 1 FROM \"%w\".\"%w_idx\" LIMIT 1", table->schema, table->name),
      &value, &found);
  sqlite3_free(value);
  table->empty = !found;
  return rc;
}

/* Finds the tables declared with this tokenizer's model and pieces 1, in
** every attached schema, with their records. */
static int group_find(Fts5Tokenizer *t, fts_group *g) {
  memset(g, 0, sizeof *g);
  sqlite3 *db = bpsql_connection_db(t->connection);
  sqlite3_stmt *schemas;
  int rc = sqlite3_prepare_v2(db, "SELECT name FROM pragma_database_list", -1, &schemas, NULL);
  if (rc != SQLITE_OK) return rc;
  while (rc == SQLITE_OK && sqlite3_step(schemas) == SQLITE_ROW) {
    const char *schema = (const char *)sqlite3_column_text(schemas, 0);
    if (!schema) {
      rc = SQLITE_NOMEM;
      break;
    }
    sqlite3_stmt *tables;
    char *sql = sqlite3_mprintf(
        "SELECT name, sql FROM \"%w\".sqlite_schema WHERE type = 'table' AND "
        "sql LIKE 'CREATE VIRTUAL TABLE%%'",
        schema);
    if (!sql) {
      rc = SQLITE_NOMEM;
      break;
    }
    rc = sqlite3_prepare_v2(db, sql, -1, &tables, NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) break;
    while (rc == SQLITE_OK && sqlite3_step(tables) == SQLITE_ROW) {
      const char *name = (const char *)sqlite3_column_text(tables, 0);
      const char *declaration = (const char *)sqlite3_column_text(tables, 1);
      bool member, contentless;
      if (!name || !declaration) {
        rc = SQLITE_NOMEM;
        break;
      }
      rc = parse_declaration(declaration, t->name, &member, &contentless);
      if (rc != SQLITE_OK || !member) continue;
      if (g->count == g->capacity) {
        int capacity = g->capacity ? 2 * g->capacity : 4;
        fts_table *grown =
            sqlite3_realloc64(g->tables, (sqlite3_uint64)capacity * sizeof *grown);
        if (!grown) {
          rc = SQLITE_NOMEM;
          break;
        }
        g->tables = grown;
        g->capacity = capacity;
      }
      fts_table *table = &g->tables[g->count];
      memset(table, 0, sizeof *table);
      table->schema = sqlite3_mprintf("%s", schema);
      table->name = sqlite3_mprintf("%s", name);
      table->contentless = contentless;
      g->count++;
      if (!table->schema || !table->name) rc = SQLITE_NOMEM;
    }
    int finalize_rc = sqlite3_finalize(tables);
    if (rc == SQLITE_OK) rc = finalize_rc;
  }
  int finalize_rc = sqlite3_finalize(schemas);
  if (rc == SQLITE_OK) rc = finalize_rc;
  for (int i = 0; i < g->count && rc == SQLITE_OK; i++) rc = table_read(db, &g->tables[i]);
  if (rc != SQLITE_OK) group_free(g);
  return rc;
}

/* What the last check depended on: the model store (the registry's serial)
** and each attached database's data version (which a commit of another
** connection changes), with how many are attached. */
static sqlite3_uint64 tokenizer_stamp(Fts5Tokenizer *t) {
  sqlite3 *db = bpsql_connection_db(t->connection);
  sqlite3_uint64 stamp = bpsql_connection_serial(t->connection);
#if SQLITE_VERSION_NUMBER >= 3039000
  for (int i = 0;; i++) {
    const char *schema = sqlite3_db_name(db, i);
    if (!schema) break;
    unsigned version = 0;
    sqlite3_file_control(db, schema, SQLITE_FCNTL_DATA_VERSION, &version);
    stamp = stamp * 1000003u + version + (sqlite3_uint64)i;
  }
#endif
  return stamp;
}

static void hex_digest(const bp_model *model, char out[DIGEST_HEX + 1]) {
  const uint8_t *digest = bp_model_digest(model);
  for (int i = 0; i < 32; i++) sqlite3_snprintf(3, out + 2 * i, "%02x", digest[i]);
}

/* Resolves a model name; on failure the reason goes to sqlite3_log. */
static int resolve_logged(Fts5Tokenizer *t, const char *name, bool log, bp_model **model) {
  char *message;
  int rc =
      bpsql_resolve_model_name(t->connection, name, "bytepiece tokenizer", &message, model);
  if (rc != SQLITE_OK && log)
    sqlite3_log(rc, "%s", message ? message : "bytepiece tokenizer: out of memory");
  sqlite3_free(message);
  return rc;
}

/* The model the tables are to be indexed with, and its name: the declared
** name's model; for the default model, the model a record names as long
** as that name still holds the recorded digest (so that adding a second
** model, which leaves no default, changes nothing), else the default. */
static int resolve_default(Fts5Tokenizer *t, const fts_group *g, bp_model **model, char **name);
static int group_model(Fts5Tokenizer *t, const fts_group *g, bp_model **model, char **name) {
  *model = NULL;
  *name = NULL;
  int rc;
  if (t->name) {
    rc = resolve_logged(t, t->name, true, model);
    if (rc == SQLITE_OK && !(*name = sqlite3_mprintf("%s", t->name))) rc = SQLITE_NOMEM;
  } else {
    rc = resolve_default(t, g, model, name);
  }
  if (rc != SQLITE_OK) {
    bp_model_release(*model);
    *model = NULL;
    sqlite3_free(*name);
    *name = NULL;
  }
  return rc;
}

static int resolve_default(Fts5Tokenizer *t, const fts_group *g, bp_model **model,
                           char **name) {
  for (int i = 0; i < g->count; i++) {
    const fts_table *table = &g->tables[i];
    if (!table->has_record) continue;
    bp_model *recorded;
    int rc = resolve_logged(t, table->record_name, false, &recorded);
    if (rc == SQLITE_NOMEM) return rc;
    if (rc != SQLITE_OK) continue; /* the name is gone: the record cannot hold */
    char hex[DIGEST_HEX + 1];
    hex_digest(recorded, hex);
    if (strcmp(hex, table->digest) == 0) {
      *model = recorded;
      return (*name = sqlite3_mprintf("%s", table->record_name)) ? SQLITE_OK : SQLITE_NOMEM;
    }
    bp_model_release(recorded);
  }
  int rc = resolve_logged(t, NULL, true, model);
  if (rc == SQLITE_OK) rc = bpsql_default_model_name(t->connection, name);
  if (rc == SQLITE_OK && !*name) rc = SQLITE_ERROR; /* the store changed in between */
  return rc;
}

/* Writes the model record of a table whose index is empty. */
static int table_record(sqlite3 *db, const fts_table *table, const char *hex,
                        const char *name) {
  char *sql = sqlite3_mprintf(
      "INSERT OR REPLACE INTO \"%w\".\"%w_config\"(k, v) VALUES ('" RECORD_KEY "', '%q %q')",
      table->schema, table->name, hex, name);
  if (!sql) return SQLITE_NOMEM;
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  sqlite3_free(sql);
  return rc;
}

/* Logs why a table's index cannot be used with the model now, and the
** remedy (short: sqlite3_log keeps about 200 bytes of a message). */
static void log_stale(const fts_table *table, const char *hex, const char *name) {
  const char *remedy =
      table->contentless ? "INSERT INTO %s(%s) VALUES('delete-all'), then insert its rows again"
                         : "rebuild it: INSERT INTO %s(%s) VALUES('rebuild')";
  char *text = sqlite3_mprintf(remedy, table->name, table->name);
  if (!table->has_record)
    sqlite3_log(SQLITE_ERROR,
                "bytepiece tokenizer: FTS5 table %s.%s was indexed before its model was "
                "recorded: with model '%s', %s",
                table->schema, table->name, name, text ? text : "out of memory");
  else
    sqlite3_log(SQLITE_ERROR,
                "bytepiece tokenizer: FTS5 table %s.%s was indexed with model '%s' %.12s, "
                "'%s' is now %.12s: %s",
                table->schema, table->name, table->record_name, table->digest, name, hex,
                text ? text : "out of memory");
  sqlite3_free(text);
}

/* Whether the records the last check wrote are still there. */
static bool records_still_written(Fts5Tokenizer *t) {
  if (!t->written) return true;
  bool there = sqlite3_step(t->written) == SQLITE_ROW &&
               sqlite3_column_int(t->written, 0) == t->written_count;
  sqlite3_reset(t->written);
  return there;
}

/* The check at the first use in each statement (and again whenever the
** store or a database changed): for each table of the group, a record of
** the model in use is fine; a table with a missing or another record whose
** index is empty gets the record (when a document is indexed: CREATE,
** delete-all, the start of rebuild); any other table is stale, and then
** nothing but the indexing of a document while a table was found empty
** (the one being built) may go on. FTS5 passes no message of a tokenizer
** on (the user sees "SQL logic error"), so the reasons go to sqlite3_log. */
static int tokenizer_check(Fts5Tokenizer *t, bool document) {
  if (t->model && (document ? t->fine_for_documents : t->fine_for_queries)) {
    /* Resolving notices a changed store; the stamp, any other change. */
    bp_model *model;
    int rc = resolve_logged(t, t->model_name, false, &model);
    if (rc == SQLITE_NOMEM) return rc;
    bool same =
        rc == SQLITE_OK && memcmp(bp_model_digest(model), bp_model_digest(t->model), 32) == 0;
    bp_model_release(model);
    if (same && tokenizer_stamp(t) == t->stamp && records_still_written(t)) return SQLITE_OK;
  }
  t->fine_for_queries = t->fine_for_documents = false;
  sqlite3_finalize(t->written);
  t->written = NULL;
  sqlite3 *db = bpsql_connection_db(t->connection);
  fts_group g;
  int rc = group_find(t, &g);
  if (rc != SQLITE_OK) return rc;
  bp_model *model;
  char *name;
  rc = group_model(t, &g, &model, &name);
  if (rc != SQLITE_OK) {
    group_free(&g);
    return rc == SQLITE_NOMEM ? rc : SQLITE_ERROR;
  }
  char hex[DIGEST_HEX + 1];
  hex_digest(model, hex);
  bool any_empty = false, any_stale = false;
  sqlite3_str *written = sqlite3_str_new(db);
  int written_count = 0;
  for (int i = 0; i < g.count && rc == SQLITE_OK; i++) {
    fts_table *table = &g.tables[i];
    if (table->has_record && strcmp(table->digest, hex) == 0) continue;
    if (table->empty) {
      any_empty = true;
      if (document && (rc = table_record(db, table, hex, name)) == SQLITE_OK) {
        sqlite3_str_appendf(written,
                            "%sSELECT 1 FROM \"%w\".\"%w_config\" WHERE k = '" RECORD_KEY
                            "' AND v = '%q %q'",
                            written_count ? " UNION ALL " : "SELECT count(*) FROM (",
                            table->schema, table->name, hex, name);
        written_count++;
      }
    } else {
      any_stale = true;
    }
  }
  if (rc == SQLITE_OK && any_stale && !(document && any_empty)) {
    for (int i = 0; i < g.count; i++) {
      fts_table *table = &g.tables[i];
      if (!table->empty && !(table->has_record && strcmp(table->digest, hex) == 0))
        log_stale(table, hex, name);
    }
    rc = SQLITE_ERROR;
  }
  if (rc == SQLITE_OK && g.count == 0 && t->model &&
      memcmp(bp_model_digest(model), bp_model_digest(t->model), 32) != 0) {
    /* No table found to keep a record in (declared in a way not read
    ** here): an index this connection started with one model must not go
    ** on with another. */
    sqlite3_log(SQLITE_ERROR,
                "bytepiece tokenizer: the model '%s' changed since this connection opened "
                "the FTS5 table; rebuild it from a new connection",
                name);
    rc = SQLITE_ERROR;
  }
  group_free(&g);
  sqlite3_str_appendall(written, ")");
  char *written_sql = sqlite3_str_finish(written);
  if (rc == SQLITE_OK && !written_sql) rc = SQLITE_NOMEM;
  if (rc == SQLITE_OK && written_count > 0)
    rc = sqlite3_prepare_v3(db, written_sql, -1, SQLITE_PREPARE_PERSISTENT, &t->written, NULL);
  sqlite3_free(written_sql);
  t->written_count = written_count;
  if (rc != SQLITE_OK) {
    bp_model_release(model);
    sqlite3_free(name);
    return rc;
  }
  bp_model_release(t->model);
  sqlite3_free(t->model_name);
  t->model = model;
  t->model_name = name;
  /* An empty index found by a query gets its record at the next document. */
  t->fine_for_documents = document || !any_empty;
  t->fine_for_queries = !any_stale;
  t->stamp = tokenizer_stamp(t);
  return SQLITE_OK;
}

/* The text as it is indexed: its NFC form with the map back to the
** original, and the model's pieces when asked for. The pieces' ends are
** walked while the terms are reported (piece_walk) rather than kept in an
** array: a huge document needs no second pass before its terms, which
** would not hear sqlite3_interrupt, and no 8 bytes a piece. */
typedef struct indexed_text {
  bp_spans spans;
  const char *bytes; /* spans.text */
  size_t length;
  const bp_model *model; /* NULL when pieces were not asked for */
  bp_ids pieces;         /* the model's segmentation of `bytes` */
} indexed_text;

/* The one place that normalizes, encodes and maps offsets back. */
static int indexed_text_make(const bp_model *model, const bp_interrupt *interrupt,
                             const char *text, size_t length, bool with_pieces,
                             indexed_text *out) {
  memset(out, 0, sizeof *out);
  bp_error err;
  int rc =
      bp_encode_spans(NULL, text, length, BP_INPUT_TEXT, 1, NULL, interrupt, &out->spans, &err);
  if (rc == BP_INVALID) {
    /* Not UTF-8: index the bytes as they are rather than lose the row. */
    bp_spans_free(&out->spans);
    rc = bp_encode_spans(NULL, text, length, BP_INPUT_BYTES, 1, NULL, interrupt, &out->spans,
                         &err);
  }
  out->bytes = out->spans.text;
  out->length = out->spans.length;
  if (rc == BP_OK && with_pieces) {
    /* The NFC text as bytes: exactly bp_encode's pieces of the text. */
    out->model = model;
    rc = bp_encode(model, out->bytes, out->length, BP_INPUT_BYTES, NULL, interrupt,
                   &out->pieces, &err);
  }
  if (rc != BP_OK) {
    bp_spans_free(&out->spans);
    bp_ids_free(&out->pieces);
    return bpsql_sqlite_code(rc);
  }
  return SQLITE_OK;
}
static void indexed_text_free(indexed_text *x) {
  bp_spans_free(&x->spans);
  bp_ids_free(&x->pieces);
}

/* A walk over the pieces in order: [start, end) is piece `next - 1`. */
typedef struct piece_walk {
  size_t next, start, end;
} piece_walk;

/* Moves the walk to the piece that holds byte `offset` (or past the last). */
static void piece_walk_to(const indexed_text *x, piece_walk *w, size_t offset) {
  while (w->end <= offset && w->next < x->pieces.count) {
    uint32_t length;
    bp_model_piece(x->model, (uint32_t)x->pieces.ids[w->next++], &length);
    w->start = w->end;
    w->end += length;
  }
}

typedef int (*emit_function)(void *, int, const char *, int, int, int);

/* Reports bytes [start, end) of the normalized text as a term, folded
** or as they are, with offsets into the original. */
static int emit_term(const indexed_text *x, size_t start, size_t end, bool fold, int flags,
                     void *context, emit_function emit) {
  char term[TERM_BYTES];
  size_t n;
  if (fold) {
    n = bp_text_fold(x->bytes + start, end - start, term, sizeof term);
  } else {
    n = end - start;
    if (n > sizeof term) return SQLITE_OK; /* too long to be a query */
    memcpy(term, x->bytes + start, n);
  }
  if (n == 0) return SQLITE_OK;
  size_t from = bp_spans_original_start(&x->spans, start);
  size_t to = bp_spans_original_end(&x->spans, end);
  return emit(context, flags, term, (int)n, (int)from, (int)to);
}

/* Whether bytes [start, end) are two or more characters that stand alone,
** and nothing else: a piece worth indexing for ranking. */
static bool is_piece_of_characters(const indexed_text *x, size_t start, size_t end) {
  int characters = 0;
  for (size_t i = start; i < end;) {
    int32_t code_point;
    int kind;
    i += bp_char_next(x->bytes, x->length, i, &code_point, &kind);
    if (kind != BP_CHAR_ALONE || i > end) return false;
    characters++;
  }
  return characters >= 2;
}

/* Reports the run of white space and punctuation [start, end) between two
** terms as one term: its punctuation, each stretch of white space as one
** space. So a phrase does not match across punctuation or white space the
** query does not have. */
static int emit_separator(const indexed_text *x, size_t start, size_t end, void *context,
                          emit_function emit) {
  char term[TERM_BYTES];
  size_t n = 0;
  for (size_t i = start; i < end;) {
    int32_t code_point;
    int kind;
    size_t m = bp_char_next(x->bytes, x->length, i, &code_point, &kind);
    if (kind == BP_CHAR_SPACE) {
      if (n < sizeof term && (n == 0 || term[n - 1] != ' ')) term[n++] = ' ';
    } else if (n + m <= sizeof term) {
      memcpy(term + n, x->bytes + i, m);
      n += m;
    }
    i += m;
  }
  size_t from = bp_spans_original_start(&x->spans, start);
  size_t to = bp_spans_original_end(&x->spans, end);
  return emit(context, 0, term, (int)n, (int)from, (int)to);
}

/* Reports the terms of the text: words, characters, the separators between
** them and (for a document, with piece ends) the pieces colocated with
** their first character. */
static int emit_terms(const indexed_text *x, const bp_interrupt *interrupt, void *context,
                      emit_function emit) {
  piece_walk walk = {0, 0, 0};
  size_t next_check = 65536; /* a huge document stops on sqlite3_interrupt */
  size_t separator_start = 0, separator_end = 0; /* the run since the last term */
  bool any = false, in_separator = false;
  int rc = SQLITE_OK;
  for (size_t i = 0; i < x->length && rc == SQLITE_OK;) {
    int32_t code_point;
    int kind;
    if (i >= next_check) {
      if (interrupt->check(interrupt->context)) return SQLITE_INTERRUPT;
      next_check = i + 65536;
    }
    size_t n = bp_char_next(x->bytes, x->length, i, &code_point, &kind);
    if (kind == BP_CHAR_SPACE || kind == BP_CHAR_PUNCTUATION) {
      if (!in_separator) separator_start = i;
      in_separator = true;
      separator_end = i + n;
      i += n;
      continue;
    }
    /* White space or punctuation at the start or the end gives no term. */
    if (any && in_separator)
      rc = emit_separator(x, separator_start, separator_end, context, emit);
    any = true;
    in_separator = false;
    if (rc != SQLITE_OK) break;
    if (kind == BP_CHAR_WORD) {
      size_t end = i + n;
      while (end < x->length) {
        size_t m = bp_char_next(x->bytes, x->length, end, &code_point, &kind);
        if (kind != BP_CHAR_WORD) break;
        end += m;
      }
      rc = emit_term(x, i, end, true, 0, context, emit);
      i = end;
      continue;
    }
    rc = emit_term(x, i, i + n, true, 0, context, emit);
    if (rc == SQLITE_OK && x->model) {
      piece_walk_to(x, &walk, i);
      if (walk.start == i && walk.end > i && is_piece_of_characters(x, i, walk.end))
        rc = emit_term(x, i, walk.end, false, FTS5_TOKEN_COLOCATED, context, emit);
    }
    i += n;
  }
  return rc;
}

static int tokenizer_tokenize(Fts5Tokenizer *t, void *context, int flags, const char *text,
                              int length, emit_function emit) {
  bool query = (flags & FTS5_TOKENIZE_QUERY) != 0;
  bool document = (flags & FTS5_TOKENIZE_DOCUMENT) != 0;
  /* Without pieces the index does not depend on the model at all. */
  int rc = t->pieces ? tokenizer_check(t, document) : SQLITE_OK;
  if (rc != SQLITE_OK) return rc;
  if (query && length > 0 && text[0] == PIECE_MARK) {
    /* One piece term, from bp_fts_query: the rest of the phrase as it is. */
    indexed_text x;
    if ((rc = indexed_text_make(t->model, &t->interrupt, text + 1, (size_t)length - 1, false,
                                &x)) != SQLITE_OK)
      return rc;
    if (is_piece_of_characters(&x, 0, x.length))
      rc = emit_term(&x, 0, x.length, false, 0, context, emit);
    indexed_text_free(&x);
    return rc;
  }
  indexed_text x;
  rc =
      indexed_text_make(t->model, &t->interrupt, text, (size_t)length, t->pieces && !query, &x);
  if (rc != SQLITE_OK) return rc;
  rc = emit_terms(&x, &t->interrupt, context, emit);
  indexed_text_free(&x);
  return rc;
}

/* ---- bp_fts_query ----------------------------------------------------------
** What a user typed, as a MATCH expression: each word (a run of text between
** ASCII white space) or "quoted phrase" becomes an FTS5 phrase, quotes
** doubled, so nothing typed is FTS5 syntax; OR between two of them (in
** capitals, as typed) is a disjunction, grouped with its neighbours
** (`a b OR c` is a AND (b OR c)); every other word, AND, NOT and NEAR
** included, is searched for. What holds nothing to search for (only
** punctuation) is left out; "" (matching nothing) when nothing is left;
** NULL for NULL. With a model, a
** phrase that is one piece of it, of two characters or more, also matches
** that piece (PIECE_MARK), so that documents where the piece was indexed
** rank first; the matches are the same. */

static bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool has_searchable(const char *text, size_t length) {
  for (size_t i = 0; i < length;) {
    int32_t code_point;
    int kind;
    i += bp_char_next(text, length, i, &code_point, &kind);
    if (kind == BP_CHAR_WORD || kind == BP_CHAR_ALONE) return true;
  }
  return false;
}

/* Appends "text" (quotes doubled) to out, and, when `model` makes it one
** piece of characters, OR the piece. */
static int append_phrase(sqlite3_str *out, const bp_model *model, const bp_interrupt *interrupt,
                         const char *text, size_t length) {
  while (length > 0 && *text == PIECE_MARK) text++, length--; /* never a piece request */
  bool piece = false;
  if (model) {
    indexed_text x;
    int rc = indexed_text_make(model, interrupt, text, length, true, &x);
    if (rc != SQLITE_OK) return rc;
    piece = x.pieces.count == 1 && is_piece_of_characters(&x, 0, x.length);
    indexed_text_free(&x);
  }
  if (piece) sqlite3_str_appendall(out, "(");
  for (int copy = 0; copy < (piece ? 2 : 1); copy++) {
    sqlite3_str_appendall(out, copy ? " OR \"\x01" : "\"");
    for (size_t i = 0; i < length; i++) {
      if (text[i] == '"') sqlite3_str_appendchar(out, 1, '"');
      sqlite3_str_appendchar(out, 1, text[i]);
    }
    sqlite3_str_appendall(out, "\"");
  }
  if (piece) sqlite3_str_appendall(out, ")");
  return SQLITE_OK;
}

void bpsql_fts_query_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
  if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
    bpsql_result_errorf(ctx, SQLITE_MISMATCH, "bp_fts_query: the query must be TEXT, not %s",
                        bpsql_type_name(argv[0]));
    return;
  }
  const char *text = (const char *)sqlite3_value_text(argv[0]);
  size_t length = (size_t)sqlite3_value_bytes(argv[0]);
  if (!text) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  bp_model *model = NULL;
  if (argc > 1 && bpsql_resolve_model(sqlite3_user_data(ctx), argv[1], "bp_fts_query", ctx,
                                      NULL, &model) != SQLITE_OK)
    return;
  bp_interrupt interrupt = {bpsql_sql_interrupted, sqlite3_context_db_handle(ctx)};
  sqlite3_str *out = sqlite3_str_new(sqlite3_context_db_handle(ctx));
  int rc = SQLITE_OK;
  int terms = 0;           /* phrases written */
  bool in_group = false;   /* inside ( ... OR ... ) */
  bool or_pending = false; /* an OR after the last phrase */
  for (size_t i = 0; i < length && rc == SQLITE_OK;) {
    if (is_ascii_space(text[i])) {
      i++;
      continue;
    }
    size_t start, end;
    if (text[i] == '"') {
      start = ++i;
      while (i < length && text[i] != '"') i++;
      end = i;
      if (i < length) i++; /* the closing quote; a missing one ends the text */
    } else {
      start = i;
      while (i < length && !is_ascii_space(text[i]) && text[i] != '"') i++;
      end = i;
      if (end - start == 2 && memcmp(text + start, "OR", 2) == 0) {
        or_pending = terms > 0;
        continue;
      }
    }
    if (!has_searchable(text + start, end - start)) continue;
    if (or_pending) {
      /* Turn the last phrase and this one into a group, or extend it. */
      sqlite3_str_appendall(out, " OR ");
    } else if (terms > 0) {
      if (in_group) sqlite3_str_appendall(out, ")");
      in_group = false;
      sqlite3_str_appendall(out, " ");
    }
    if (!or_pending && !in_group) {
      /* A group opens lazily: look ahead for an OR after this phrase. */
      size_t k = i;
      while (k < length && is_ascii_space(text[k])) k++;
      if (k + 2 <= length && memcmp(text + k, "OR", 2) == 0 &&
          (k + 2 == length || is_ascii_space(text[k + 2]))) {
        sqlite3_str_appendall(out, "(");
        in_group = true;
      }
    }
    or_pending = false;
    rc = append_phrase(out, model, &interrupt, text + start, end - start);
    terms++;
  }
  if (in_group) sqlite3_str_appendall(out, ")");
  bp_model_release(model);
  if (rc == SQLITE_OK) rc = sqlite3_str_errcode(out);
  char *result = sqlite3_str_finish(out);
  if (rc != SQLITE_OK) {
    sqlite3_free(result);
    if (rc == SQLITE_NOMEM)
      sqlite3_result_error_nomem(ctx);
    else
      bpsql_result_errorf(ctx, rc, "bp_fts_query: %s", sqlite3_errstr(rc));
    return;
  }
  if (terms == 0) {
    /* The empty phrase: matches nothing, where NULL would be a syntax error. */
    sqlite3_free(result);
    sqlite3_result_text(ctx, "\"\"", 2, SQLITE_STATIC);
    return;
  }
  sqlite3_result_text(ctx, result, -1, sqlite3_free);
}

#if SQLITE_VERSION_NUMBER >= 3047000
static int tokenizer_tokenize_v2(Fts5Tokenizer *t, void *context, int flags, const char *text,
                                 int length, const char *locale, int locale_length,
                                 int (*emit)(void *, int, const char *, int, int, int)) {
  (void)locale;
  (void)locale_length;
  return tokenizer_tokenize(t, context, flags, text, length, emit);
}
#endif

int bpsql_register_fts5(sqlite3 *db, bpsql_connection *connection) {
  fts5_api *api = NULL;
  sqlite3_stmt *stmt;
  int rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &stmt, NULL);
  /* SQLite built without FTS5 has no fts5() function: nothing to register.
  ** Any other failure (out of memory) is the load's. */
  if (rc == SQLITE_ERROR && strncmp(sqlite3_errmsg(db), "no such function", 16) == 0)
    return SQLITE_OK;
  if (rc != SQLITE_OK) return rc;
  sqlite3_bind_pointer(stmt, 1, (void *)&api, "fts5_api_ptr", NULL);
  sqlite3_step(stmt);
  if ((rc = sqlite3_finalize(stmt)) != SQLITE_OK) return rc;
  if (!api) return SQLITE_OK;
#if SQLITE_VERSION_NUMBER >= 3047000
  if (api->iVersion >= 3) {
    static fts5_tokenizer_v2 tokenizer_v2 = {2, tokenizer_create, tokenizer_delete,
                                             tokenizer_tokenize_v2};
    rc = api->xCreateTokenizer_v2(api, "bytepiece", bpsql_connection_retain(connection),
                                  &tokenizer_v2, bpsql_connection_release);
  } else
#endif
  {
    static fts5_tokenizer tokenizer = {tokenizer_create, tokenizer_delete, tokenizer_tokenize};
    rc = api->xCreateTokenizer(api, "bytepiece", bpsql_connection_retain(connection),
                               &tokenizer, bpsql_connection_release);
  }
  /* FTS5 calls the destructor only for a tokenizer it has registered. */
  if (rc != SQLITE_OK) bpsql_connection_release(connection);
  return rc;
}
