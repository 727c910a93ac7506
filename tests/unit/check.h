/*
** check.h: the assertion the C test programs share. CHECK counts a passed
** or failed condition and names a failure's file, line and text; a program
** ends by printing "NAME: N passed, N failed" from the two counters.
*/
#ifndef BYTEPIECE_TEST_CHECK_H
#define BYTEPIECE_TEST_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(condition)                                                    \
  do {                                                                      \
    if (condition) {                                                        \
      passed++;                                                             \
    } else {                                                                \
      failed++;                                                             \
      printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #condition);         \
    }                                                                       \
  } while (0)

#endif
