/* Per-tenant token buckets (cqrs/ratelimit.h), with time passed in. */
#include "cqrs/ratelimit.h"
#include "unit.h"

#include <stdio.h>

Test(ratelimit, a_burst_then_the_rate_and_a_retry_after_that_is_right) {
  cqrs_ratelimit_t *rl = cqrs_ratelimit_new(10, 5, 16); /* 10/s, burst 5 */
  int64_t t = 1000, retry = 0;
  for (int i = 0; i < 5; i++) cr_expect(cqrs_ratelimit_take(rl, "a", t, &retry), "take %d of the burst", i);
  cr_expect_not(cqrs_ratelimit_take(rl, "a", t, &retry));
  cr_expect_eq(retry, 100, "one token every 100 ms, got %lld", (long long)retry);
  cr_expect_not(cqrs_ratelimit_take(rl, "a", t + 99, &retry));
  cr_expect_eq(retry, 1);
  cr_expect(cqrs_ratelimit_take(rl, "a", t + 100, &retry));
  /* a long pause refills to the burst, not beyond */
  t += 100000;
  int ok = 0;
  for (int i = 0; i < 20; i++) ok += cqrs_ratelimit_take(rl, "a", t, NULL);
  cr_expect_eq(ok, 5);
  cqrs_ratelimit_destroy(rl);
}

Test(ratelimit, one_tenant_flooding_does_not_limit_another) {
  cqrs_ratelimit_t *rl = cqrs_ratelimit_new(100, 10, 16);
  int a_ok = 0;
  for (int i = 0; i < 1000; i++) a_ok += cqrs_ratelimit_take(rl, "a", 5000, NULL);
  cr_expect_eq(a_ok, 10);
  for (int i = 0; i < 10; i++) cr_expect(cqrs_ratelimit_take(rl, "b", 5000, NULL), "b's take %d", i);
  cqrs_ratelimit_destroy(rl);
}

Test(ratelimit, a_zero_rate_limits_nothing) {
  cqrs_ratelimit_t *rl = cqrs_ratelimit_new(0, 0, 16);
  cr_expect_not(cqrs_ratelimit_enabled(rl));
  for (int i = 0; i < 100000; i++) cr_assert(cqrs_ratelimit_take(rl, "a", 0, NULL));
  cqrs_ratelimit_destroy(rl);
}

Test(ratelimit, the_bucket_count_is_bounded_and_idle_buckets_are_forgotten_without_effect) {
  cqrs_ratelimit_t *rl = cqrs_ratelimit_new(1, 2, 4);
  char t[16];
  for (int i = 0; i < 4; i++) {
    snprintf(t, sizeof t, "t%d", i);
    cr_expect(cqrs_ratelimit_take(rl, t, 0, NULL));
  }
  /* all four busy: a fifth tenant is let through rather than tracked */
  cr_expect(cqrs_ratelimit_take(rl, "t4", 0, NULL));
  cr_expect(cqrs_ratelimit_take(rl, "t4", 0, NULL));
  cr_expect(cqrs_ratelimit_take(rl, "t4", 0, NULL), "untracked: not limited");
  /* ten seconds later every bucket is full again and can be forgotten: t4 gets its own */
  int ok = 0;
  for (int i = 0; i < 5; i++) ok += cqrs_ratelimit_take(rl, "t4", 10000, NULL);
  cr_expect_eq(ok, 2, "t4 now has a bucket of burst 2");
  cqrs_ratelimit_destroy(rl);
}

Test(ratelimit, a_peek_says_what_a_take_would_and_takes_nothing) {
  cqrs_ratelimit_t *rl = cqrs_ratelimit_new(10, 2, 16); /* 10/s, burst 2 */
  int64_t retry = 0;
  cr_expect(cqrs_ratelimit_peek(rl, "a", 1000, &retry), "a tenant without a bucket has a full one");
  for (int i = 0; i < 5; i++) cr_expect(cqrs_ratelimit_peek(rl, "a", 1000, NULL), "peek %d took a token", i);
  cr_expect(cqrs_ratelimit_take(rl, "a", 1000, NULL));
  cr_expect(cqrs_ratelimit_take(rl, "a", 1000, NULL), "the peeks took tokens of the burst of 2");
  cr_expect_not(cqrs_ratelimit_peek(rl, "a", 1000, &retry));
  cr_expect_eq(retry, 100, "the next token in 100 ms, got %lld", (long long)retry);
  cr_expect_not(cqrs_ratelimit_take(rl, "a", 1000, NULL), "a peek said no, a take must too");
  cr_expect(cqrs_ratelimit_peek(rl, "a", 1100, NULL), "refilled after 100 ms");
  cr_expect(cqrs_ratelimit_take(rl, "a", 1100, NULL));
  cr_expect_not(cqrs_ratelimit_peek(rl, "a", 1100, NULL), "the peek at 1100 refilled the bucket for real");
  cqrs_ratelimit_destroy(rl);
}

Test(ratelimit, available_counts_the_takes_that_would_succeed_and_takes_nothing) {
  cqrs_ratelimit_t *rl = cqrs_ratelimit_new(10, 5, 16); /* 10/s, burst 5 */
  int64_t retry = 0;
  cr_expect_eq(cqrs_ratelimit_available(rl, "a", 1000, &retry), 5, "a tenant without a bucket has a full one");
  cr_expect(cqrs_ratelimit_take(rl, "a", 1000, NULL));
  cr_expect(cqrs_ratelimit_take(rl, "a", 1000, NULL));
  cr_expect_eq(cqrs_ratelimit_available(rl, "a", 1000, NULL), 3);
  cr_expect_eq(cqrs_ratelimit_available(rl, "a", 1000, NULL), 3, "a look took a token");
  for (int i = 0; i < 3; i++) cr_expect(cqrs_ratelimit_take(rl, "a", 1000, NULL), "take %d of the 3 said", i);
  cr_expect_eq(cqrs_ratelimit_available(rl, "a", 1000, &retry), 0);
  cr_expect_eq(retry, 100, "the next token in 100 ms, got %lld", (long long)retry);
  cr_expect_eq(cqrs_ratelimit_available(rl, "a", 1250, NULL), 2, "2.5 tokens after 250 ms: 2 whole ones");
  cr_expect_eq(cqrs_ratelimit_available(rl, "b", 1000, NULL), 5, "another tenant's bucket is its own");
  cqrs_ratelimit_t *none = cqrs_ratelimit_new(0, 0, 16);
  cr_expect_eq(cqrs_ratelimit_available(none, "a", 1000, NULL), INT64_MAX, "no limit: no end");
  cqrs_ratelimit_destroy(none);
  cqrs_ratelimit_destroy(rl);
}
