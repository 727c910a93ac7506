/*
** fuzz_model.c: libFuzzer target for the model file readers: the input is a
** model file, a zip archive, a SentencePiece model or BytePiece JSON, as
** bp_model_load would read it. A model that loads must round-trip through
** its binary value, and through JSON (models with counts) or SentencePiece
** (models with scores, when it converts) to the same model.
*/
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  bp_error err;
  char *member = NULL;
  size_t member_len = 0;
  if (bp_zip_extract_model("fuzz.zip", data, size, &member, &member_len, &err) != BP_OK)
    return 0;
  const char *json = member ? member : (const char *)data;
  size_t json_len = member ? member_len : size;
  bp_model *m;
  int rc =
      json_len > 0 && json[0] == 0x0A
          ? bp_model_from_sentencepiece((const uint8_t *)json, json_len, "fuzz.model", &m, &err)
          : bp_model_from_json(json, json_len, "fuzz.model", &m, &err);
  if (rc == BP_OK && !bp_model_has_counts(m)) {
    uint8_t *sp;
    size_t sp_len;
    bp_model *again;
    if (bp_model_to_sentencepiece(m, &sp, &sp_len, &err) == BP_OK) {
      if (bp_model_from_sentencepiece(sp, sp_len, "again", &again, &err) != BP_OK) abort();
      if (memcmp(bp_model_digest(m), bp_model_digest(again), 32) != 0) abort();
      bp_model_release(again);
      bp_free(sp);
    }
    bp_model_release(m);
  } else if (rc == BP_OK) {
    uint8_t *value;
    size_t value_len;
    bp_model *again;
    if (bp_model_serialize(m, &value, &value_len, &err) != BP_OK) abort();
    if (bp_model_deserialize(value, value_len, NULL, &again, &err) != BP_OK) abort();
    if (memcmp(bp_model_digest(m), bp_model_digest(again), 32) != 0) abort();
    char *saved;
    size_t saved_len;
    bp_model *reread;
    if (bp_model_to_json(m, &saved, &saved_len, &err) != BP_OK) abort();
    if (bp_model_from_json(saved, saved_len, "saved", &reread, &err) != BP_OK) abort();
    if (memcmp(bp_model_digest(m), bp_model_digest(reread), 32) != 0) abort();
    bp_free(value);
    bp_free(saved);
    bp_model_release(again);
    bp_model_release(reread);
    bp_model_release(m);
  }
  bp_free(member);
  return 0;
}
