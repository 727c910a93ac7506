/*
** builtin_models.h: the published BytePiece models built into the
** extension (builtin_models.c), for model resolution (registry.c) and the
** bp_model_list table (model_list.c).
*/
#ifndef BYTEPIECE_BUILTIN_MODELS_H
#define BYTEPIECE_BUILTIN_MODELS_H

#include "registry.h"

/* The built-in model used when nothing is stored: the reference's own
** model, whose ids the README's examples and the golden files show. */
#define BPSQL_BUILTIN_DEFAULT "bytepiece_80k"

/* How many models are built in, and the name of the i-th (0 <= i < count). */
int bpsql_builtin_count(void);
const char *bpsql_builtin_name(int i);
/* The index of the built-in model of this name (compared exactly), or -1;
** NULL names the default one. */
int bpsql_builtin_find(const char *name);

/* The i-th model's vocabulary size, read from its value's header. Returns
** an SQLite code. */
int bpsql_builtin_vocab_size(int i, sqlite3_int64 *vocab_size);
/* The i-th model's value, inflated (to free with sqlite3_free). Returns an
** SQLite code. */
int bpsql_builtin_value(int i, uint8_t **value, sqlite3_int64 *len);
/* The i-th model compiled, through the process's shared compiled models
** (model_cache.c): compiled on its first use, shared by every connection
** using it. Copies out its value's header and length; returns a library
** code (sqlite3_interrupt(db) stops a compilation). */
int bpsql_builtin_compile(sqlite3 *db, int i, bp_model **model,
                          uint8_t header[BP_VALUE_HEADER_BYTES], sqlite3_int64 *len,
                          bp_error *err);

#endif /* BYTEPIECE_BUILTIN_MODELS_H */
