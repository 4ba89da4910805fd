/* What the fuzz targets share: the libFuzzer entry point, the input as
 * NUL-terminated text, splitting it into parts, and a check that stops the
 * run when a property of the code under test does not hold (libFuzzer then
 * keeps the input as a crash). */
#ifndef CQRS_FUZZ_H
#define CQRS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property of the code under test that must hold for every input: abort()
 * (a crash to libFuzzer) with where and why. */
#define FUZZ_CHECK(cond, ...)                                                                                 \
  do {                                                                                                         \
    if (!(cond)) {                                                                                             \
      fprintf(stderr, "%s:%d: property violated: %s: ", __FILE__, __LINE__, #cond);                          \
      fprintf(stderr, __VA_ARGS__);                                                                            \
      fputc('\n', stderr);                                                                                     \
      abort();                                                                                                 \
    }                                                                                                          \
  } while (0)

/* A malloc'd NUL-terminated copy of data[0..size) (it may hold NULs before
 * its end: strlen sees the first part only, as a C caller would). */
static inline char *fuzz_text(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) abort();
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

/* A malloc'd copy of data[0..size) in a buffer of exactly that size (1 byte
 * when size is 0), not NUL-terminated, so reading past it is an ASan report. */
static inline char *fuzz_exact(const uint8_t *data, size_t size) {
  char *s = malloc(size ? size : 1);
  if (!s) abort();
  memcpy(s, data, size);
  return s;
}

/* Cuts *rest at the first sep: returns the part before it (NUL-terminated in
 * place) and moves *rest past it; the last part has no sep after it. NULL
 * when *rest is NULL (no part left). *len gets the part's length. */
static inline char *fuzz_next(char **rest, char *end, char sep, size_t *len) {
  char *part = *rest;
  if (!part) return NULL;
  char *cut = memchr(part, sep, (size_t)(end - part));
  if (cut) {
    *cut = '\0';
    *rest = cut + 1;
  } else {
    cut = end;
    *rest = NULL;
  }
  if (len) *len = (size_t)(cut - part);
  return part;
}

#endif
