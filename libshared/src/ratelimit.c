/* Per-tenant token buckets (cqrs/ratelimit.h). */
#include "cqrs/alloc.h"
#include "cqrs/ratelimit.h"
#include "cqrs/map.h"

#include "cqrs/util.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
  double tokens;
  int64_t at_ms; /* when tokens was computed */
} bucket_t;

struct cqrs_ratelimit {
  double rate_per_ms, burst;
  size_t max_tenants;
  pthread_mutex_t mu;
  cqrs_map_t *buckets; /* tenant -> bucket_t */
};

cqrs_ratelimit_t *cqrs_ratelimit_new(double rate_per_s, double burst, size_t max_tenants) {
  cqrs_ratelimit_t *rl = cqrs_xcalloc(1, sizeof *rl);
  rl->rate_per_ms = rate_per_s > 0 ? rate_per_s / 1000.0 : 0;
  rl->burst = burst >= 1 ? burst : (rate_per_s > 1 ? rate_per_s : 1);
  rl->max_tenants = max_tenants ? max_tenants : 1;
  pthread_mutex_init(&rl->mu, NULL);
  rl->buckets = cqrs_map_new(free);
  return rl;
}

void cqrs_ratelimit_destroy(cqrs_ratelimit_t *rl) {
  if (!rl) return;
  cqrs_map_destroy(rl->buckets);
  pthread_mutex_destroy(&rl->mu);
  free(rl);
}

bool cqrs_ratelimit_enabled(const cqrs_ratelimit_t *rl) { return rl && rl->rate_per_ms > 0; }

static void refill(const cqrs_ratelimit_t *rl, bucket_t *b, int64_t now_ms) {
  if (now_ms > b->at_ms) {
    b->tokens = fmin(rl->burst, b->tokens + (double)(now_ms - b->at_ms) * rl->rate_per_ms);
    b->at_ms = now_ms;
  }
}

typedef struct {
  const cqrs_ratelimit_t *rl;
  int64_t now_ms;
} sweep_t;

static bool full_again(const char *key, void *value, void *ctx) {
  (void)key;
  sweep_t *s = ctx;
  bucket_t *b = value;
  refill(s->rl, b, s->now_ms);
  return b->tokens >= s->rl->burst;
}

/* How long until b (refilled) holds a whole token: at least 1 ms. */
static int64_t wait_ms(const cqrs_ratelimit_t *rl, const bucket_t *b) {
  double wait = ceil((1.0 - b->tokens) / rl->rate_per_ms - 1e-6); /* no extra ms from rounding */
  return wait < 1 ? 1 : (int64_t)wait;
}

bool cqrs_ratelimit_take(cqrs_ratelimit_t *rl, const char *tenant, int64_t now_ms, int64_t *retry_after_ms) {
  if (!cqrs_ratelimit_enabled(rl)) return true;
  pthread_mutex_lock(&rl->mu);
  bucket_t *b = cqrs_map_get(rl->buckets, tenant);
  if (!b) {
    if (cqrs_map_size(rl->buckets) >= rl->max_tenants) {
      sweep_t s = {rl, now_ms};
      cqrs_map_filter(rl->buckets, full_again, &s);
    }
    if (cqrs_map_size(rl->buckets) >= rl->max_tenants) { /* every tracked tenant is busy: let it through */
      pthread_mutex_unlock(&rl->mu);
      return true;
    }
    b = cqrs_xmalloc(sizeof *b);
    b->tokens = rl->burst;
    b->at_ms = now_ms;
    cqrs_map_put(rl->buckets, tenant, b);
  }
  refill(rl, b, now_ms);
  bool ok = b->tokens >= 1.0;
  if (ok) {
    b->tokens -= 1.0;
  } else if (retry_after_ms) {
    *retry_after_ms = wait_ms(rl, b);
  }
  pthread_mutex_unlock(&rl->mu);
  return ok;
}

int64_t cqrs_ratelimit_available(cqrs_ratelimit_t *rl, const char *tenant, int64_t now_ms, int64_t *retry_after_ms) {
  if (!cqrs_ratelimit_enabled(rl)) return INT64_MAX;
  pthread_mutex_lock(&rl->mu);
  bucket_t *b = cqrs_map_get(rl->buckets, tenant);
  double tokens = rl->burst; /* no bucket: a full one */
  if (b) {
    bucket_t now = *b; /* refilled on a copy: a look changes nothing */
    refill(rl, &now, now_ms);
    tokens = now.tokens;
    if (tokens < 1.0 && retry_after_ms) *retry_after_ms = wait_ms(rl, &now);
  }
  pthread_mutex_unlock(&rl->mu);
  return (int64_t)floor(tokens);
}

bool cqrs_ratelimit_peek(cqrs_ratelimit_t *rl, const char *tenant, int64_t now_ms, int64_t *retry_after_ms) {
  return cqrs_ratelimit_available(rl, tenant, now_ms, retry_after_ms) >= 1;
}

bool cqrs_ratelimit_http(cqrs_ratelimit_t *rl, cqrs_http_req_t *req, const char *tenant, cqrs_metrics_t *metrics) {
  return cqrs_ratelimit_http_gate(rl, req, tenant, metrics, true);
}

bool cqrs_ratelimit_http_gate(cqrs_ratelimit_t *rl, cqrs_http_req_t *req, const char *tenant, cqrs_metrics_t *metrics,
                              bool take) {
  int64_t retry_ms = 0, now = cqrs_time_monotonic_ms();
  if (take ? cqrs_ratelimit_take(rl, tenant, now, &retry_ms) : cqrs_ratelimit_peek(rl, tenant, now, &retry_ms))
    return true;
  char secs[24], labels[64];
  snprintf(secs, sizeof secs, "%lld", (long long)((retry_ms + 999) / 1000));
  cqrs_http_req_add_header(req, "Retry-After", secs);
  cqrs_http_reply_error(req, 429, "the tenant's request rate limit is exceeded; retry after Retry-After seconds",
                        NULL);
  if (metrics) {
    snprintf(labels, sizeof labels, "tenant=\"%s\"", cqrs_metrics_tenant(metrics, tenant));
    cqrs_metrics_add(metrics, "rate_limited_total", labels, 1);
  }
  return false;
}
