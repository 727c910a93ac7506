/*
** fts5.c: a BytePiece tokenizer for FTS5 that finds every occurrence.
**
**     CREATE VIRTUAL TABLE docs_fts USING fts5(body, tokenize = 'bytepiece zh80k');
**     SELECT highlight(docs_fts, 0, '[', ']') FROM docs_fts WHERE docs_fts MATCH '天气';
**     SELECT rowid FROM docs_fts WHERE docs_fts MATCH bp_fts_query('天气 OR linux');
**
** Arguments: an optional model name from bp_models (else the default
** model), then key/value options: `pieces 0|1` (default 0); `subwords 0|1`
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
** pieces 1, each piece of the model's segmentation of a
** document that spans two or more such characters is also indexed, at the
** position of its first character (FTS5_TOKEN_COLOCATED): it cannot match
** a phrase of characters (it is never a single character), but
** bp_fts_query adds it as an alternative, so documents where the query is a
** whole piece rank above those where it straddles pieces. Offsets are into
** the original text, so highlight() and snippet() mark exactly the
** characters of a match and always cut between characters.
**
** With pieces 1 the model is resolved (and compiled) when the tokenizer is
** first used, not when the table is opened (but for CREATE VIRTUAL TABLE,
** which fails on a wrong name), so a table whose model is gone can still be
** dropped; every use checks that the name still holds the model the
** tokenizer compiled (bpsql_resolve_model_name notices a changed store at each
** statement), and fails with SQLITE_ERROR when it does not. With pieces 0,
** the default, the model is never used: such an index does not depend on it.
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

struct Fts5Tokenizer {
  bpsql_connection *connection;
  char *name;             /* the declared model name; NULL: the default model */
  int pieces;             /* index the model's pieces for ranking */
  bp_model *model;        /* resolved at first use */
  bp_interrupt interrupt; /* indexing a huge document stops on sqlite3_interrupt */
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

static int tokenizer_create(void *user_data, const char **arguments, int count,
                            Fts5Tokenizer **out) {
  *out = NULL;
  const char *name = NULL;
  int pieces = 0, i = 0;
  if (count > 0 && !is_option(arguments[0])) name = arguments[i++];
  for (; i < count; i += 2) {
    if (!is_option(arguments[i]) || i + 1 >= count ||
        (strcmp(arguments[i + 1], "0") != 0 && strcmp(arguments[i + 1], "1") != 0))
      return SQLITE_ERROR; /* FTS5 reports "error in tokenizer constructor" */
    if (strcmp(arguments[i], "pieces") == 0) pieces = arguments[i + 1][0] == '1';
  }
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
  sqlite3_free(t);
}

/* The model to use now: the one compiled at first use, as long as the name
** still resolves to it. FTS5 passes no message of a tokenizer on (the user
** sees "SQL logic error"), so the reason, naming the model, goes to
** sqlite3_log. */
static int tokenizer_model(Fts5Tokenizer *t) {
  bp_model *model;
  char *message;
  int rc =
      bpsql_resolve_model_name(t->connection, t->name, "bytepiece tokenizer", &message, &model);
  if (rc != SQLITE_OK) {
    sqlite3_log(rc, "%s", message ? message : "bytepiece tokenizer: out of memory");
    sqlite3_free(message);
    return rc == SQLITE_NOMEM ? rc : SQLITE_ERROR;
  }
  if (!t->model) {
    t->model = model;
    return SQLITE_OK;
  }
  bool same = memcmp(bp_model_digest(model), bp_model_digest(t->model), 32) == 0;
  bp_model_release(model);
  if (same) return SQLITE_OK;
  sqlite3_log(SQLITE_ERROR,
              "bytepiece tokenizer: the model %s%s%s changed since this connection opened "
              "the FTS5 table; rebuild it from a new connection",
              t->name ? "'" : "", t->name ? t->name : "(the default)", t->name ? "'" : "");
  return SQLITE_ERROR;
}

/* The text as it is indexed: its NFC form with the map back to the
** original, and the ends of the model's pieces when asked for. */
typedef struct indexed_text {
  bp_spans spans;
  const char *bytes; /* spans.text */
  size_t length;
  const size_t *piece_ends; /* NULL when pieces were not asked for */
  size_t piece_count;
} indexed_text;

/* The one place that normalizes, encodes and maps offsets back. */
static int indexed_text_make(const bp_model *model, const bp_interrupt *interrupt,
                             const char *text, size_t length, bool with_pieces,
                             indexed_text *out) {
  memset(out, 0, sizeof *out);
  bp_error err;
  const bp_model *encoding = with_pieces ? model : NULL;
  int rc = bp_encode_spans(encoding, text, length, BP_INPUT_TEXT, 1, NULL, interrupt,
                           &out->spans, &err);
  if (rc == BP_INVALID) {
    /* Not UTF-8: index the bytes as they are rather than lose the row. */
    bp_spans_free(&out->spans);
    rc = bp_encode_spans(encoding, text, length, BP_INPUT_BYTES, 1, NULL, interrupt,
                         &out->spans, &err);
  }
  if (rc != BP_OK) {
    bp_spans_free(&out->spans);
    return bpsql_sqlite_code(rc);
  }
  out->bytes = out->spans.text;
  out->length = out->spans.length;
  if (with_pieces) {
    out->piece_ends = out->spans.ends;
    out->piece_count = out->spans.ids.count;
  }
  return SQLITE_OK;
}
static void indexed_text_free(indexed_text *x) { bp_spans_free(&x->spans); }

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
  size_t piece = 0, piece_start = 0;
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
    if (rc == SQLITE_OK && x->piece_ends) {
      while (piece < x->piece_count && x->piece_ends[piece] <= i)
        piece_start = x->piece_ends[piece++];
      if (piece < x->piece_count && piece_start == i &&
          is_piece_of_characters(x, i, x->piece_ends[piece]))
        rc = emit_term(x, i, x->piece_ends[piece], false, FTS5_TOKEN_COLOCATED, context, emit);
    }
    i += n;
  }
  return rc;
}

static int tokenizer_tokenize(Fts5Tokenizer *t, void *context, int flags, const char *text,
                              int length, emit_function emit) {
  /* Without pieces the index does not depend on the model at all. */
  int rc = t->pieces ? tokenizer_model(t) : SQLITE_OK;
  if (rc != SQLITE_OK) return rc;
  bool query = (flags & FTS5_TOKENIZE_QUERY) != 0;
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
    piece = x.piece_count == 1 && is_piece_of_characters(&x, 0, x.length);
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
