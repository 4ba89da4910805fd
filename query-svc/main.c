/* query-svc: wiring only. Reads MongoDB, never writes; talks to Kafka only to
 * follow the control records (tenants, API keys) its authentication needs. */
#include "routes.h"

#include "cqrs/access.h"
#include "cqrs/mongo.h"
#include "cqrs/read_model.h"
#include "cqrs/service.h"

/* MONGO_TIMEOUT_MS when unset: a read answers 503 about this soon when the
 * store is down or hung, rather than holding the client for minutes. */
#define DEFAULT_MONGO_TIMEOUT_MS 3000

/* A rebuild's swap reaches queries within a second. */

extern char **environ;

typedef struct {
  cqrs_routes_ctx_t routes;
  const char *mongo_db;
  cqrs_access_t access;
  const char *read_models[CQRS_ROUTES_RESOURCES_MAX]; /* what the resources serve: the freshness watch borrows it */
} query_svc_t;

/* Ready once the store answers and, with authentication on, the control
 * records that existed at start are known (no credential is judged on a
 * registry still being read). */
static bool ready_cb(void *ctx, cqrs_error_t *err) {
  query_svc_t *q = ctx;
  return cqrs_access_ready(&q->access, err) && cqrs_mongo_ping(q->routes.pool, q->mongo_db, err);
}

/* /readyz's detail: the read models staler than their objective. */
static void ready_detail_cb(void *ctx, bson_string_t *body) {
  query_svc_t *q = ctx;
  cqrs_staleness_describe(q->routes.staleness, body);
}

int main(void) {
  cqrs_service_t svc;
  cqrs_error_t err = {0};
  query_svc_t q = {0};
  int rc = 1;
  if (!cqrs_service_init_ex(&svc, "query-svc", 8081, environ, CQRS_SERVICE_BLOCKING_HANDLERS, &err)) goto done;
  cqrs_service_set_openapi(&svc, cqrs_openapi_json, cqrs_openapi_json_len);
  if (svc.cfg.mongo_timeout_ms == 0) svc.cfg.mongo_timeout_ms = DEFAULT_MONGO_TIMEOUT_MS;
  if (!cqrs_access_start(&q.access, &svc.cfg, &svc.log, false, NULL, NULL, &err)) goto fail;
  q.routes.auth = q.access.auth;
  if (!(q.routes.pool = cqrs_mongo_pool_new(&svc.cfg, "query-svc", &err))) goto fail;
  q.mongo_db = svc.cfg.mongo_db;
  q.routes.store = cqrs_tenant_store_new(svc.cfg.mongo_db, CQRS_ALIAS_TTL_MS);
  q.routes.log = &svc.log;
  q.routes.metrics = svc.metrics;
  q.routes.snapshot_every = svc.cfg.snapshot_every;
  cqrs_metrics_describe(svc.metrics, "time_travels_total", CQRS_METRIC_COUNTER,
                        "asOf/atVersion reads, by read model and what they folded from (base: snapshot or none).");
  cqrs_metrics_describe(svc.metrics, "time_travel_events_total", CQRS_METRIC_COUNTER,
                        "Events read from the history and folded by asOf/atVersion reads, by read model.");
  q.routes.limits = cqrs_ratelimit_new(svc.cfg.rate_limit_queries, 2.0 * svc.cfg.rate_limit_queries, CQRS_RATELIMIT_TENANTS);
  cqrs_metrics_describe(svc.metrics, "queries_by_tenant_total", CQRS_METRIC_COUNTER,
                        "API requests that passed authentication and the rate limit, by tenant (50 named, then _other).");
  cqrs_metrics_describe(svc.metrics, "rate_limited_total", CQRS_METRIC_COUNTER,
                        "Requests answered 429 because the tenant exceeded RATE_LIMIT_QUERIES, by tenant.");
  /* Lists that page on a keyset index read it from PostgreSQL (pg_lists.h),
   * bounded like every store read. */
  if (svc.cfg.ferretdb_pg_uri)
    q.routes.pg_lists = cqrs_pg_lists_new(svc.cfg.ferretdb_pg_uri, svc.cfg.mongo_timeout_ms, &svc.log);
  cqrs_metrics_describe(svc.metrics, "list_pages_total", CQRS_METRIC_COUNTER,
                        "List pages answered, by how they were read: path=\"keyset\" (ids through a keyset index in "
                        "FerretDB's PostgreSQL, documents by _id) or path=\"find\" (the store's find).");
  cqrs_waiters_config_t wcfg = {.pool = q.routes.pool,
                                .store = q.routes.store,
                                .log = &svc.log,
                                .metrics = svc.metrics,
                                .tick_ms = svc.cfg.wait_tick_ms,
                                .store_timeout_ms = svc.cfg.mongo_timeout_ms,
                                .ferretdb_pg_uri = svc.cfg.ferretdb_pg_uri};
  if (!(q.routes.waiters = cqrs_waiters_new(&wcfg, &err))) goto fail;
  cqrs_routes_read_models(q.read_models, CQRS_ROUTES_RESOURCES_MAX);
  q.routes.staleness = cqrs_staleness_new(&svc.cfg, &svc.log, svc.metrics, q.routes.pool, q.read_models);
  if (!cqrs_staleness_start(q.routes.staleness, &err)) goto fail;
  cqrs_service_set_ready_detail(&svc, ready_detail_cb, &q);
  cqrs_routes_add_all(svc.http, &q.routes);
  cqrs_service_set_ready(&svc, ready_cb, &q);
  if (!cqrs_service_start(&svc, &err)) goto done;
  cqrs_service_wait(&svc);
  rc = 0;
  goto done;
fail:
  cqrs_log_error(&svc.log, "cannot start", "error", err.message[0] ? err.message : "out of memory", NULL);
done:
  /* Waiters first (answered 503 while the loops still run), then HTTP, then
   * what the handlers and the hub borrowed. */
  cqrs_waiters_stop(q.routes.waiters);
  cqrs_http_server_stop(svc.http);
  cqrs_waiters_destroy(q.routes.waiters);
  cqrs_staleness_destroy(q.routes.staleness);
  cqrs_pg_lists_destroy(q.routes.pg_lists);
  if (q.routes.pool) mongoc_client_pool_destroy(q.routes.pool);
  cqrs_tenant_store_destroy(q.routes.store);
  cqrs_ratelimit_destroy(q.routes.limits);
  cqrs_access_stop(&q.access);
  cqrs_log_info(&svc.log, "stopped", NULL);
  cqrs_service_cleanup(&svc);
  return rc;
}
