/*
** fuzz_model_file.h: the real model the fuzz targets work with:
** $BP_FUZZ_MODEL, else tests/data/small.model (make fuzz runs from the
** project's root).
*/
#ifndef BYTEPIECE_FUZZ_MODEL_FILE_H
#define BYTEPIECE_FUZZ_MODEL_FILE_H

#include <stdio.h>
#include <stdlib.h>

#include "bytepiece.h"

static inline const char *fuzz_model_path(void) {
  const char *path = getenv("BP_FUZZ_MODEL");
  return path ? path : "tests/data/small.model";
}

/* Loads the model, or ends the program saying why. */
static inline bp_model *fuzz_load_model(void) {
  bp_model *m;
  bp_error err;
  if (bp_model_load_file(fuzz_model_path(), &m, &err) != BP_OK) {
    fprintf(stderr, "%s\n", err.message);
    exit(1);
  }
  return m;
}

#endif
