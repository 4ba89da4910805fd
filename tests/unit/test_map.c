/* The string-keyed map (cqrs/map.h): every operation, growth, and that each
 * value is freed exactly once by whoever owns it last. */
#include "cqrs/map.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

/* Values are counters in a fixed pool, so a double free or a leak shows up as
 * a wrong count rather than only under a sanitizer. */
#define POOL 4096
static int freed[POOL];

static void *val(int i) { return &freed[i]; }
static int idx(void *v) { return (int)((int *)v - freed); }
static void free_value(void *v) { freed[idx(v)]++; }

static cqrs_map_t *m;

static void setup(void) {
  memset(freed, 0, sizeof freed);
  m = cqrs_map_new(free_value);
}
static void teardown(void) { cqrs_map_destroy(m); }

TestSuite(map, .init = setup, .fini = teardown);

static void key(char buf[32], int i) { snprintf(buf, 32, "key-%d", i); }

Test(map, put_get) {
  cr_assert_eq(cqrs_map_size(m), 0);
  cr_assert_null(cqrs_map_get(m, "a"));
  cqrs_map_put(m, "a", val(1));
  cqrs_map_put(m, "b", val(2));
  cr_assert_eq(cqrs_map_get(m, "a"), val(1));
  cr_assert_eq(cqrs_map_get(m, "b"), val(2));
  cr_assert_null(cqrs_map_get(m, "c"));
  cr_assert_eq(cqrs_map_size(m), 2);
}

Test(map, keys_are_copied) {
  char k[8] = "abc";
  cqrs_map_put(m, k, val(1));
  strcpy(k, "zzz");
  cr_assert_eq(cqrs_map_get(m, "abc"), val(1));
  cr_assert_null(cqrs_map_get(m, "zzz"));
}

Test(map, empty_key) {
  cqrs_map_put(m, "", val(1));
  cr_assert_eq(cqrs_map_get(m, ""), val(1));
}

Test(map, replace_frees_old_value) {
  cqrs_map_put(m, "a", val(1));
  cqrs_map_put(m, "a", val(2));
  cr_assert_eq(freed[1], 1);
  cr_assert_eq(freed[2], 0);
  cr_assert_eq(cqrs_map_get(m, "a"), val(2));
  cr_assert_eq(cqrs_map_size(m), 1);
}

Test(map, replace_with_same_value_keeps_it) {
  cqrs_map_put(m, "a", val(1));
  cqrs_map_put(m, "a", val(1));
  cr_assert_eq(freed[1], 0);
  cr_assert_eq(cqrs_map_size(m), 1);
}

Test(map, take_does_not_free) {
  cqrs_map_put(m, "a", val(1));
  cr_assert_eq(cqrs_map_take(m, "a"), val(1));
  cr_assert_eq(freed[1], 0);
  cr_assert_null(cqrs_map_get(m, "a"));
  cr_assert_eq(cqrs_map_size(m), 0);
  cr_assert_null(cqrs_map_take(m, "a"));
}

Test(map, delete_frees) {
  cqrs_map_put(m, "a", val(1));
  cqrs_map_put(m, "b", val(2));
  cqrs_map_delete(m, "a");
  cr_assert_eq(freed[1], 1);
  cr_assert_null(cqrs_map_get(m, "a"));
  cr_assert_eq(cqrs_map_get(m, "b"), val(2));
  cqrs_map_delete(m, "absent");
  cr_assert_eq(cqrs_map_size(m), 1);
}

static bool odd_cb(const char *k, void *v, void *ctx) {
  (*(int *)ctx)++;
  cr_assert_not_null(k);
  return idx(v) % 2 == 1;
}

Test(map, filter_removes_and_frees_selected) {
  char k[32];
  for (int i = 0; i < 100; i++) {
    key(k, i);
    cqrs_map_put(m, k, val(i));
  }
  int calls = 0;
  cqrs_map_filter(m, odd_cb, &calls);
  cr_assert_eq(calls, 100);
  cr_assert_eq(cqrs_map_size(m), 50);
  for (int i = 0; i < 100; i++) {
    key(k, i);
    if (i % 2) {
      cr_assert_null(cqrs_map_get(m, k));
      cr_assert_eq(freed[i], 1);
    } else {
      cr_assert_eq(cqrs_map_get(m, k), val(i));
      cr_assert_eq(freed[i], 0);
    }
  }
}

Test(map, move_all) {
  cqrs_map_t *src = cqrs_map_new(free_value);
  cqrs_map_put(m, "keep", val(1));
  cqrs_map_put(m, "shared", val(2));
  cqrs_map_put(src, "shared", val(3));
  cqrs_map_put(src, "new", val(4));
  cqrs_map_move_all(m, src);
  cr_assert_eq(cqrs_map_size(src), 0);
  cr_assert_null(cqrs_map_get(src, "new"));
  cr_assert_eq(cqrs_map_size(m), 3);
  cr_assert_eq(cqrs_map_get(m, "keep"), val(1));
  cr_assert_eq(cqrs_map_get(m, "shared"), val(3));
  cr_assert_eq(cqrs_map_get(m, "new"), val(4));
  cr_assert_eq(freed[2], 1, "the replaced value is freed");
  cr_assert_eq(freed[3] + freed[4], 0, "moved values are not freed");
  cqrs_map_destroy(src);
  cr_assert_eq(freed[3] + freed[4], 0, "src no longer owns them");
  /* src is still usable */
}

Test(map, move_all_src_reusable) {
  cqrs_map_t *src = cqrs_map_new(free_value);
  cqrs_map_put(src, "a", val(1));
  cqrs_map_move_all(m, src);
  cqrs_map_put(src, "a", val(2));
  cr_assert_eq(cqrs_map_get(src, "a"), val(2));
  cr_assert_eq(cqrs_map_size(src), 1);
  cqrs_map_destroy(src);
  cr_assert_eq(freed[2], 1);
  cr_assert_eq(freed[1], 0);
}

Test(map, clear) {
  char k[32];
  for (int i = 0; i < 10; i++) {
    key(k, i);
    cqrs_map_put(m, k, val(i));
  }
  cqrs_map_clear(m);
  cr_assert_eq(cqrs_map_size(m), 0);
  for (int i = 0; i < 10; i++) cr_assert_eq(freed[i], 1);
  cqrs_map_put(m, "again", val(20));
  cr_assert_eq(cqrs_map_get(m, "again"), val(20));
}

Test(map, growth_beyond_1000_keys) {
  char k[32];
  const int n = 3000;
  for (int i = 0; i < n; i++) {
    key(k, i);
    cqrs_map_put(m, k, val(i));
  }
  cr_assert_eq(cqrs_map_size(m), (size_t)n);
  for (int i = 0; i < n; i++) {
    key(k, i);
    cr_assert_eq(cqrs_map_get(m, k), val(i), "%s after growth", k);
  }
  for (int i = 0; i < n; i += 3) {
    key(k, i);
    cqrs_map_delete(m, k);
  }
  cr_assert_eq(cqrs_map_size(m), (size_t)(n - n / 3));
  for (int i = 0; i < n; i++) {
    key(k, i);
    cr_assert_eq(cqrs_map_get(m, k), i % 3 ? val(i) : NULL);
  }
}

Test(map, destroy_frees_each_value_once) {
  char k[32];
  const int n = 1500;
  for (int i = 0; i < n; i++) {
    key(k, i);
    cqrs_map_put(m, k, val(i));
  }
  cqrs_map_put(m, "key-7", val(n)); /* replaces val(7) */
  cqrs_map_delete(m, "key-8");
  void *taken = cqrs_map_take(m, "key-9");
  cqrs_map_destroy(m);
  m = NULL;
  for (int i = 0; i <= n; i++) cr_assert_eq(freed[i], i == 9 ? 0 : 1, "value %d freed %d times", i, freed[i]);
  free_value(taken);
}

/* Without free_value the map never frees a value: replaced, deleted and
 * cleared values stay the caller's, intact (a free here would also be a
 * use-after-free and a double free under ASan). */
Test(map, no_free_value) {
  cqrs_map_t *plain = cqrs_map_new(NULL);
  char *v1 = strdup("one"), *v2 = strdup("two");
  cqrs_map_put(plain, "a", v1);
  cqrs_map_put(plain, "a", v2);
  cr_assert_eq(cqrs_map_size(plain), 1);
  cr_assert_eq(cqrs_map_get(plain, "a"), v2, "the second put replaces");
  cr_assert_str_eq(v1, "one", "the replaced value is untouched");
  cqrs_map_delete(plain, "a");
  cr_assert_eq(cqrs_map_size(plain), 0);
  cr_assert_null(cqrs_map_get(plain, "a"));
  cr_assert_str_eq(v2, "two", "the deleted value is untouched");
  cqrs_map_put(plain, "b", v1);
  cqrs_map_put(plain, "c", v2);
  cqrs_map_clear(plain);
  cr_assert_eq(cqrs_map_size(plain), 0);
  cr_assert_null(cqrs_map_get(plain, "b"));
  cr_assert_str_eq(v1, "one", "cleared values are untouched");
  cr_assert_str_eq(v2, "two");
  cqrs_map_put(plain, "d", v1);
  cqrs_map_destroy(plain);
  cr_assert_str_eq(v1, "one", "destroy leaves values to their owner");
  free(v1);
  free(v2);
  cqrs_map_destroy(NULL);
  for (int i = 0; i < POOL; i++) cr_assert_eq(freed[i], 0, "a plain map called another map's free_value");
}
