/* Allocation that aborts when out of memory (cqrs/alloc.h): results are
 * usable, zeroed where promised, aligned where asked, never NULL for size 0,
 * and an impossible size aborts instead of returning NULL. */
#include "cqrs/alloc.h"
#include "unit.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

Test(alloc, calloc_zeroes_and_size_zero_is_not_null) {
  unsigned char *p = cqrs_xcalloc(64, 1);
  for (int i = 0; i < 64; i++) cr_assert_eq(p[i], 0);
  free(p);
  void *z = cqrs_xcalloc(0, 8);
  cr_assert_not_null(z);
  free(z);
  z = cqrs_xmalloc(0);
  cr_assert_not_null(z);
  free(z);
}

Test(alloc, realloc_keeps_the_prefix) {
  char *p = cqrs_xrealloc(NULL, 4);
  memcpy(p, "abc", 4);
  p = cqrs_xrealloc(p, 4096);
  cr_assert_str_eq(p, "abc");
  free(p);
}

Test(alloc, strndup_cuts_and_terminates) {
  char *s = cqrs_xstrndup("abcdef", 3);
  cr_assert_str_eq(s, "abc");
  free(s);
  s = cqrs_xstrndup("ab", 10);
  cr_assert_str_eq(s, "ab");
  free(s);
  s = cqrs_xstrdup("");
  cr_assert_str_eq(s, "");
  free(s);
}

Test(alloc, aligned_calloc_is_aligned_and_zeroed) {
  for (size_t n = 1; n < 40; n += 7) {
    unsigned char *p = cqrs_xcalloc_aligned(n, 200, 128);
    cr_assert_eq((uintptr_t)p % 128, 0, "%zu elements at %p", n, (void *)p);
    for (size_t i = 0; i < n * 200; i++) cr_assert_eq(p[i], 0);
    free(p);
  }
}

Test(alloc, impossible_size_aborts, .signal = SIGABRT) {
  volatile size_t huge = SIZE_MAX / 2;
  void *p = cqrs_xcalloc(huge, 4); /* overflows n * size */
  free(p);
}

Test(alloc, aligned_overflow_aborts, .signal = SIGABRT) {
  volatile size_t huge = SIZE_MAX / 2;
  void *p = cqrs_xcalloc_aligned(huge, 4, 128);
  free(p);
}
