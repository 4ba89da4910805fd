/* The cache of verified JWTs (libshared/src/auth/cache.c): hits, expiry, key
 * set generations, the bound and eviction of the oldest entry. */
#include "../../libshared/src/auth/internal.h"
#include "unit.h"

static void digest_of(int i, unsigned char d[32]) {
  char s[32];
  snprintf(s, sizeof s, "token-%d", i);
  cr_assert(auth_sha256(s, strlen(s), d));
}

static cqrs_principal_t principal(int i) {
  cqrs_principal_t p = {.scopes = CQRS_SCOPE_QUERIES_READ};
  snprintf(p.tenant, sizeof p.tenant, "t%d", i);
  snprintf(p.subject, sizeof p.subject, "user-%d", i);
  return p;
}

Test(auth_cache, hit_until_valid_and_for_its_generation_only) {
  auth_cache_t *c = auth_cache_new(64);
  unsigned char d[32], other[32];
  digest_of(1, d);
  digest_of(2, other);
  cqrs_principal_t p = principal(1), got;
  cr_assert_not(auth_cache_get(c, d, 100, 7, &got), "empty");
  auth_cache_put(c, d, 200, 7, &p);
  cr_assert(auth_cache_get(c, d, 199, 7, &got));
  cr_assert_eq(memcmp(&got, &p, sizeof p), 0);
  cr_assert_not(auth_cache_get(c, other, 150, 7, &got), "another token misses");
  cr_assert_not(auth_cache_get(c, d, 150, 8, &got), "a newer key set: verify again");
  auth_cache_put(c, d, 200, 7, &p);
  cr_assert_not(auth_cache_get(c, d, 200, 7, &got), "valid_until is exclusive");
  auth_cache_destroy(c);
}

Test(auth_cache, bounded_and_keeps_recent_entries) {
  auth_cache_t *c = auth_cache_new(64);
  cqrs_principal_t got;
  unsigned char d[32];
  for (int i = 0; i < 1000; i++) {
    cqrs_principal_t p = principal(i);
    digest_of(i, d);
    auth_cache_put(c, d, 1000, 1, &p);
  }
  int hits = 0;
  for (int i = 0; i < 1000; i++) {
    digest_of(i, d);
    if (auth_cache_get(c, d, 1, 1, &got)) {
      hits++;
      cr_assert_eq(strcmp(got.subject, principal(i).subject), 0, "a hit is always the right principal");
    }
  }
  cr_assert_leq(hits, 64, "never more than its capacity");
  cr_assert_geq(hits, 32, "a full cache still holds most of its capacity");
  digest_of(999, d);
  cr_assert(auth_cache_get(c, d, 1, 1, &got), "the newest entry is never the one evicted");
  auth_cache_destroy(c);
}

Test(auth_cache, replacing_an_entry) {
  auth_cache_t *c = auth_cache_new(4);
  unsigned char d[32];
  digest_of(5, d);
  cqrs_principal_t a = principal(5), b = principal(6), got;
  auth_cache_put(c, d, 100, 1, &a);
  auth_cache_put(c, d, 300, 2, &b);
  cr_assert(auth_cache_get(c, d, 200, 2, &got));
  cr_assert_str_eq(got.subject, "user-6");
  auth_cache_destroy(c);
  auth_cache_destroy(NULL);
}
