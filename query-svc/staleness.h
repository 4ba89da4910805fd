/* query-svc's view of how fresh each read model it serves is (the projectors'
 * reports, cqrs/freshness.h), for the freshness headers of every answer, the
 * staleness metrics and /readyz's detail. A thread re-reads the reports every
 * CQRS_PROGRESS_PERIOD_MS; answers read its cache.
 *
 * A read model breaches its objective (cqrs_config_staleness_objective) when
 * its lag exceeds it, or when no projector has ever reported it caught up:
 * then nobody vouches for it. Metrics: read_model_lag_ms{read_model} (-1:
 * unknown), read_model_stale{read_model} (1 while in breach) and
 * read_model_staleness_breaches_total{read_model}; a log line when a breach
 * starts and when it ends. A breach does not make the service unready: stale
 * answers are still answers, and they say so. Thread-safe. */
#ifndef CQRS_STALENESS_H
#define CQRS_STALENESS_H

#include "cqrs/config.h"
#include "cqrs/log.h"
#include "cqrs/metrics.h"

#include <bson/bson.h>
#include <mongoc/mongoc.h>

typedef struct cqrs_staleness cqrs_staleness_t;

/* Watches read_models (NULL-terminated, borrowed for the life of s) in
 * cfg->mongo_db. Borrowed: cfg, log, metrics, pool. Can't fail (aborts when
 * out of memory). Free with cqrs_staleness_destroy (NULL is fine). */
cqrs_staleness_t *cqrs_staleness_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                     mongoc_client_pool_t *pool, const char *const *read_models);

/* Starts the thread. False with err when it cannot. */
bool cqrs_staleness_start(cqrs_staleness_t *s, cqrs_error_t *err);

/* Stops the thread (if started) and frees s. */
void cqrs_staleness_destroy(cqrs_staleness_t *s);

/* read_model's lag now, in ms (-1: unknown) and in events at its last report
 * (-1: unknown). False when it is not one s watches. */
bool cqrs_staleness_get(cqrs_staleness_t *s, const char *read_model, int64_t *lag_ms, int64_t *lag_events);

/* Appends ,"staleReadModels":[...] (the read models in breach now, by name)
 * to out: /readyz's detail. */
void cqrs_staleness_describe(cqrs_staleness_t *s, bson_string_t *out);

#endif
