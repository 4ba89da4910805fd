/* query-svc: wiring only. Reads MongoDB, never writes, never talks to Kafka. */
#include "routes.h"

#include "cqrs/mongo.h"
#include "cqrs/service.h"

/* MONGO_TIMEOUT_MS when unset: a read answers 503 about this soon when the
 * store is down or hung, rather than holding the client for minutes. */
#define DEFAULT_MONGO_TIMEOUT_MS 3000

extern char **environ;

static bool ready_cb(void *ctx, cqrs_error_t *err) {
  cqrs_routes_ctx_t *r = ctx;
  return cqrs_mongo_ping(r->pool, r->db, err);
}

int main(void) {
  cqrs_service_t svc;
  cqrs_error_t err = {0};
  cqrs_routes_ctx_t routes = {0};
  int rc = 1;
  if (!cqrs_service_init(&svc, "query-svc", 8081, environ, &err)) goto done;
  cqrs_service_set_openapi(&svc, cqrs_openapi_json, cqrs_openapi_json_len);
  if (svc.cfg.mongo_timeout_ms == 0) svc.cfg.mongo_timeout_ms = DEFAULT_MONGO_TIMEOUT_MS;
  if (!(routes.pool = cqrs_mongo_pool_new(&svc.cfg, "query-svc", &err))) {
    cqrs_log_error(&svc.log, "cannot start", "error", err.message, NULL);
    goto done;
  }
  routes.db = svc.cfg.mongo_db;
  /* A rebuild's swap reaches queries within a second. */
  routes.read_models = cqrs_read_models_new(svc.cfg.mongo_db, 1000);
  routes.log = &svc.log;
  cqrs_waiters_config_t wcfg = {.pool = routes.pool,
                                .read_models = routes.read_models,
                                .db = svc.cfg.mongo_db,
                                .log = &svc.log,
                                .metrics = svc.metrics,
                                .tick_ms = svc.cfg.wait_tick_ms,
                                .store_timeout_ms = svc.cfg.mongo_timeout_ms,
                                .ferretdb_pg_uri = svc.cfg.ferretdb_pg_uri};
  if (!(routes.waiters = cqrs_waiters_new(&wcfg, &err))) {
    cqrs_log_error(&svc.log, "cannot start", "error", err.message, NULL);
    goto done;
  }
  cqrs_routes_users(svc.http, &routes);
  cqrs_routes_orders(svc.http, &routes);
  cqrs_routes_customers(svc.http, &routes);
  cqrs_routes_query(svc.http, &routes);
  cqrs_service_set_ready(&svc, ready_cb, &routes);
  if (!cqrs_service_start(&svc, &err)) goto done;
  cqrs_service_wait(&svc);
  rc = 0;
done:
  /* Waiters first (answered 503 while the loops still run), then HTTP, then
   * what the handlers and the hub borrowed. */
  cqrs_waiters_stop(routes.waiters);
  cqrs_http_server_stop(svc.http);
  cqrs_waiters_destroy(routes.waiters);
  if (routes.pool) mongoc_client_pool_destroy(routes.pool);
  cqrs_read_models_destroy(routes.read_models);
  cqrs_log_info(&svc.log, "stopped", NULL);
  cqrs_service_cleanup(&svc);
  return rc;
}
