/* Allocation that aborts when out of memory (see alloc.h). */
#include "cqrs/alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *checked(void *p, size_t size) {
  if (p) return p;
  fprintf(stderr, "out of memory (allocating %zu bytes): aborting\n", size);
  abort();
}

void *cqrs_xmalloc(size_t size) { return checked(malloc(size ? size : 1), size); }

void *cqrs_xcalloc(size_t n, size_t size) {
  if (n == 0 || size == 0) n = size = 1;
  if (n > SIZE_MAX / size) checked(NULL, SIZE_MAX); /* n * size overflows */
  return checked(calloc(n, size), n * size);
}

void *cqrs_xrealloc(void *p, size_t size) { return checked(realloc(p, size ? size : 1), size); }

char *cqrs_xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(cqrs_xmalloc(n), s, n);
}

char *cqrs_xstrndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *d = cqrs_xmalloc(len + 1);
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

void *cqrs_xcalloc_aligned(size_t n, size_t size, size_t align) {
  if (n == 0 || size == 0) n = size = 1;
  if (n > SIZE_MAX / size) checked(NULL, SIZE_MAX);
  /* round up to a multiple of align, as aligned_alloc wants */
  size_t bytes = (n * size + align - 1) / align * align;
  void *p = NULL;
  if (posix_memalign(&p, align, bytes) != 0) p = NULL;
  return memset(checked(p, bytes), 0, bytes);
}
