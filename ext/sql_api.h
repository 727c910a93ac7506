/*
** sql_api.h: every SQL function, aggregate and virtual table module of the
** extension, one row each. binding.h declares the implementations from
** these rows; bytepiece.c registers them in one loop, in this order. So
** adding a SQL function takes its implementation (in any file of ext/),
** one row here, its README entry and its tests (tests/coverage.test fails
** when a registered name has no test or no README entry).
**
**   FUNCTION(name, min_args, max_args, flags, implementation)
**   AGGREGATE(name, min_args, max_args, flags, step, final)
**   MODULE(name, module, with_connection)
**
** A function is registered once per argument count from min_args to
** max_args. Every registration that takes the connection's state holds a
** reference to it. The FTS5 tokenizer is not here: it is registered
** through the fts5_api (fts5.c).
*/
#ifndef BPSQL_SQL_API_H
#define BPSQL_SQL_API_H

/* Flag sets. Whatever reads only its arguments and the models is safe in
** triggers and views; a function touching files is not, and may be called
** only directly; bp_debug describes the process, so it is neither
** deterministic nor innocuous. */
#define BPSQL_PURE (SQLITE_UTF8 | SQLITE_INNOCUOUS | SQLITE_DETERMINISTIC)
#define BPSQL_INNOCUOUS (SQLITE_UTF8 | SQLITE_INNOCUOUS)
#define BPSQL_READS_MODELS BPSQL_INNOCUOUS
#define BPSQL_TOUCHES_FILES (SQLITE_UTF8 | SQLITE_DIRECTONLY)
#define BPSQL_PROCESS_STATE SQLITE_UTF8

#define BPSQL_SQL_API(FUNCTION, AGGREGATE, MODULE)                                     \
  /* models_table.c; first, as it was registered alone before */                       \
  MODULE("bp_models", bpsql_models_module, 1)                                          \
  /* functions.c */                                                                    \
  FUNCTION("bp_encode", 1, 4, BPSQL_READS_MODELS, bpsql_encode_function)               \
  FUNCTION("bp_encode_packed", 1, 4, BPSQL_READS_MODELS, bpsql_encode_packed_function) \
  FUNCTION("bp_count", 1, 4, BPSQL_READS_MODELS, bpsql_count_function)                 \
  FUNCTION("bp_decode", 1, 2, BPSQL_READS_MODELS, bpsql_decode_function)               \
  FUNCTION("bp_decode_bytes", 1, 2, BPSQL_READS_MODELS, bpsql_decode_bytes_function)   \
  FUNCTION("bp_model_load", 1, 1, BPSQL_TOUCHES_FILES, bpsql_model_load_function)      \
  FUNCTION("bp_model_save", 2, 3, BPSQL_TOUCHES_FILES, bpsql_model_save_function)      \
  FUNCTION("bp_debug", 0, 0, BPSQL_PROCESS_STATE, bpsql_debug_function)                \
  /* tables.c */                                                                       \
  MODULE("bp_tokens", bpsql_tokens_module, 1)                                          \
  MODULE("bp_vocab", bpsql_vocab_module, 1)                                            \
  MODULE("bp_chunks", bpsql_chunks_module, 1)                                          \
  /* model_list.c */                                                                   \
  MODULE("bp_model_list", bpsql_model_list_module, 0)                                  \
  /* train.c */                                                                        \
  AGGREGATE("bp_train", 1, 2, BPSQL_INNOCUOUS, bpsql_train_step, bpsql_train_final)    \
  FUNCTION("bp_model_shrink", 2, 2, BPSQL_READS_MODELS, bpsql_model_shrink_function)   \
  /* train_rounds.c */                                                                 \
  FUNCTION("bp_train_start", 0, 1, BPSQL_PURE, bpsql_train_start_function)             \
  AGGREGATE("bp_train_partial", 2, 3, BPSQL_INNOCUOUS, bpsql_train_partial_step,       \
            bpsql_train_partial_final)                                                 \
  AGGREGATE("bp_train_combine", 1, 2, BPSQL_INNOCUOUS, bpsql_train_combine_step,       \
            bpsql_train_combine_final)                                                 \
  AGGREGATE("bp_train_merge", 2, 3, BPSQL_INNOCUOUS, bpsql_train_merge_step,           \
            bpsql_train_merge_final)                                                   \
  FUNCTION("bp_train_done", 1, 1, BPSQL_PURE, bpsql_train_done_function)               \
  FUNCTION("bp_train_model", 1, 1, BPSQL_PURE, bpsql_train_model_function)             \
  FUNCTION("bp_train_info", 1, 1, BPSQL_PURE, bpsql_train_info_function)               \
  /* analytics.c */                                                                    \
  FUNCTION("bp_truncate", 2, 3, BPSQL_READS_MODELS, bpsql_truncate_function)           \
  AGGREGATE("bp_stats", 1, 3, BPSQL_READS_MODELS, bpsql_stats_step, bpsql_stats_final) \
  AGGREGATE("bp_stats_partial", 1, 3, BPSQL_READS_MODELS, bpsql_stats_partial_step,    \
            bpsql_stats_partial_final)                                                 \
  AGGREGATE("bp_stats_combine", 1, 1, BPSQL_INNOCUOUS, bpsql_stats_combine_step,       \
            bpsql_stats_combine_final)                                                 \
  FUNCTION("bp_stats_finish", 1, 1, BPSQL_PURE, bpsql_stats_finish_function)           \
  /* export.c */                                                                       \
  AGGREGATE("bp_export", 2, 3, BPSQL_TOUCHES_FILES, bpsql_export_row, bpsql_exported)  \
  /* fts5.c */                                                                         \
  FUNCTION("bp_fts_query", 1, 2, BPSQL_READS_MODELS, bpsql_fts_query_function)         \
  /* functions.c; last, since it marks a complete load (bytepiece.c) */                \
  FUNCTION("bp_version", 0, 0, BPSQL_PURE, bpsql_version_function)

#endif /* BPSQL_SQL_API_H */
