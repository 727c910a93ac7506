/*
** fuzz_decode.c: libFuzzer target for decoding arbitrary id lists (the input
** read as little-endian 32-bit ids) with a real model. Ids inside the
** vocabulary decode to the concatenation of their pieces; any other id is an
** error naming it.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_model_file.h"

static bp_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  model = fuzz_load_model();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t n = size / 4;
  int64_t *ids = malloc((n + 1) * sizeof *ids);
  size_t expected_len = 0;
  int valid = 1;
  for (size_t i = 0; i < n; i++) {
    int32_t id = (int32_t)((uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 |
                           (uint32_t)data[4 * i + 2] << 16 | (uint32_t)data[4 * i + 3] << 24);
    ids[i] = id;
    uint32_t length = 0;
    if (id < 0 || (uint32_t)id >= bp_model_vocab_size(model))
      valid = 0;
    else
      bp_model_piece(model, (uint32_t)id, &length);
    expected_len += length;
  }
  char *bytes;
  size_t len;
  bp_error err;
  int rc = bp_decode(model, ids, n, &bytes, &len, &err);
  if (valid != (rc == BP_OK)) abort();
  if (rc == BP_OK) {
    if (len != expected_len) abort();
    size_t kept = bp_utf8_drop_invalid(bytes, len);
    if (bp_utf8_invalid_offset(bytes, kept) != kept) abort();
    bp_free(bytes);
  } else if (rc != BP_INVALID || !strstr(err.message, "unknown id")) {
    abort();
  }
  free(ids);
  return 0;
}
