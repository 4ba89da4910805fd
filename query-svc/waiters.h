/* The waiter hub: single reads that wait for a version (minVersion + waitMs)
 * are deferred and handed to one thread that, every WAIT_TICK_MS, asks the
 * store once per read (and batch of values) for every value waited on, and
 * answers each waiter once its document is fresh or its time is up. The
 * store's work for waiting reads is bounded by ticks x (tenant, read) pairs
 * waited on, not by waiters. A waiter is keyed by its tenant too, and is
 * only ever answered from its tenant's database (tenant_store.h).
 *
 * Every waiter is answered exactly once: by the hub (200 fresh; at the
 * deadline 200 + X-Stale or 404 as a read without wait would, or 503 when the
 * store did not answer), by the HTTP loop's own timer if the hub is held up
 * well past the deadline by a hung store (503), or 503 when the service stops.
 *
 * Metrics: read_waiters (gauge), read_wait_polls_total (finds the hub sent),
 * read_waits_total{outcome="fresh|stale|error"}. */
#ifndef CQRS_WAITERS_H
#define CQRS_WAITERS_H

#include "single_read.h"
#include "tenant_store.h"

#include "cqrs/error.h"
#include "cqrs/http.h"
#include "cqrs/log.h"
#include "cqrs/metrics.h"

#include <mongoc/mongoc.h>

typedef struct cqrs_waiters cqrs_waiters_t;

typedef struct {
  mongoc_client_pool_t *pool;      /* borrowed: must outlive the hub */
  cqrs_tenant_store_t *store;      /* borrowed: where each tenant's read models are */
  const cqrs_log_t *log;           /* borrowed */
  cqrs_metrics_t *metrics;         /* borrowed */
  int tick_ms;                     /* WAIT_TICK_MS: time between two polls (>= 1) */
  int store_timeout_ms;            /* MONGO_TIMEOUT_MS: how long one find may take at most */
  const char *ferretdb_pg_uri;     /* borrowed; FERRETDB_PG_URI: poll reads on _id through the
                                      PostgreSQL behind FerretDB (version_probe.h); NULL: finds only */
} cqrs_waiters_config_t;

/* Starts the hub thread. cfg is copied (what it points to is borrowed). NULL
 * with err when the thread cannot start. */
cqrs_waiters_t *cqrs_waiters_new(const cqrs_waiters_config_t *cfg, cqrs_error_t *err);

/* Defers req (on its loop thread, from a route handler) and hands it to the
 * hub: it waits until the document of tenant's (copied; the verified
 * principal's) read whose field equals value (copied) has version >=
 * min_version, for at most wait_ms from now. After cqrs_waiters_stop it
 * answers 503 at once instead. Can't fail. */
void cqrs_waiters_wait(cqrs_waiters_t *w, cqrs_http_req_t *req, const char *tenant, const cqrs_single_read_t *read,
                       const char *value, int64_t min_version, int64_t wait_ms);

/* Stops the hub thread and answers every waiter left 503 ("the service is
 * stopping"; replies racing the HTTP server's own stop may be dropped, as
 * for any deferred request). Call before stopping the HTTP server; route
 * handlers may still call cqrs_waiters_wait afterwards. Safe to call twice. */
void cqrs_waiters_stop(cqrs_waiters_t *w);

/* Stops the hub if running and frees it; call after the HTTP server stopped
 * (no handler may use w any more). NULL is fine. */
void cqrs_waiters_destroy(cqrs_waiters_t *w);

#endif
