#include "bench_stats.h"

#include <time.h>

int64_t bs_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void bs_sleep_until_us(int64_t t) {
  for (int64_t d; (d = t - bs_now_us()) > 0;) {
    struct timespec ts = {(time_t)(d / 1000000), (long)(d % 1000000) * 1000};
    nanosleep(&ts, NULL);
  }
}

int bs_cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

double bs_pct_ms(const int64_t *v, size_t n, double q) {
  if (!n) return -1;
  size_t i = (size_t)(q * (double)n);
  return (double)v[i < n ? i : n - 1] / 1000.0;
}
