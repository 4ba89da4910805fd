/* Per-tenant rate limits: one token bucket per tenant, so a tenant that floods
 * the system is answered 429 with Retry-After while the others go on
 * (issue 15, fairness). Thread-safe (one mutex: a take is a map lookup and a
 * few additions, well under a microsecond, against the request's tens of
 * microseconds). Time is passed in, so the arithmetic is tested without
 * clocks. */
#ifndef CQRS_RATELIMIT_H
#define CQRS_RATELIMIT_H

#include "cqrs/http.h"
#include "cqrs/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cqrs_ratelimit cqrs_ratelimit_t;

/* The services' max_tenants: buckets kept at once (idle full ones are forgotten). */
#define CQRS_RATELIMIT_TENANTS 10000

/* A limiter allowing each tenant rate_per_s on average and burst at once
 * (burst < 1 means rate_per_s). rate_per_s <= 0 means no limit: every take
 * succeeds. At most max_tenants buckets are kept; beyond that, buckets idle
 * long enough to be full again are forgotten (forgetting a full bucket changes
 * nothing), and a newcomer is allowed when none is. Can't fail (out of memory aborts). */
cqrs_ratelimit_t *cqrs_ratelimit_new(double rate_per_s, double burst, size_t max_tenants);
void cqrs_ratelimit_destroy(cqrs_ratelimit_t *rl);

/* False when rl limits nothing. */
bool cqrs_ratelimit_enabled(const cqrs_ratelimit_t *rl);

/* Takes one token from tenant's bucket at now_ms (monotonic). True when there
 * was one; otherwise false with *retry_after_ms (may be NULL) set to when the
 * next token comes (at least 1). */
bool cqrs_ratelimit_take(cqrs_ratelimit_t *rl, const char *tenant, int64_t now_ms, int64_t *retry_after_ms);

/* As cqrs_ratelimit_take, without taking: true when a take at now_ms would
 * succeed (a tenant without a bucket has a full one). Changes nothing. */
bool cqrs_ratelimit_peek(cqrs_ratelimit_t *rl, const char *tenant, int64_t now_ms, int64_t *retry_after_ms);

/* How many takes at now_ms would succeed one after another: tenant's whole
 * tokens (a tenant without a bucket has a full one; INT64_MAX when rl limits
 * nothing). When none, *retry_after_ms (may be NULL) is set to when the next
 * comes. Changes nothing. */
int64_t cqrs_ratelimit_available(cqrs_ratelimit_t *rl, const char *tenant, int64_t now_ms, int64_t *retry_after_ms);

/* The HTTP side of a take, for a route that just authenticated tenant: true
 * when the request may go on; otherwise it replies 429 with Retry-After (whole
 * seconds, at least 1) and a JSON error, counts rate_limited_total{tenant} in
 * metrics (may be NULL), and returns false. */
bool cqrs_ratelimit_http(cqrs_ratelimit_t *rl, cqrs_http_req_t *req, const char *tenant, cqrs_metrics_t *metrics);

/* As cqrs_ratelimit_http, but with take false it only peeks: a gate in front
 * of a place that takes the tokens itself (command-svc's HTTP ingress in front
 * of its command loop, which counts every ingress's commands once), refusing
 * early what that place would refuse. */
bool cqrs_ratelimit_http_gate(cqrs_ratelimit_t *rl, cqrs_http_req_t *req, const char *tenant, cqrs_metrics_t *metrics,
                              bool take);

#endif
