/* Time and latency statistics shared by the benchmark and soak drivers. */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic clock, microseconds. */
int64_t bs_now_us(void);
/* Sleeps until the monotonic clock reads t (bs_now_us); returns at once when it is past. */
void bs_sleep_until_us(int64_t t);
/* qsort comparator of int64_t. */
int bs_cmp_i64(const void *a, const void *b);
/* q-quantile of sorted v[0..n), microseconds in, milliseconds out; -1 when n is 0. */
double bs_pct_ms(const int64_t *v, size_t n, double q);

#endif
