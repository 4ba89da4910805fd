/* projector-svc: wiring only. One apply loop per projection. */
#include "apply_loop.h"

#include "cqrs/mongo.h"
#include "cqrs/service.h"

#include <stdlib.h>

extern char **environ;

typedef struct {
  cqrs_service_t *svc;
  mongoc_client_pool_t *pool;
  cqrs_apply_loop_t **loops;
} projector_t;

static bool ready_cb(void *ctx, cqrs_error_t *err) {
  projector_t *p = ctx;
  return cqrs_mongo_ping(p->pool, p->svc->cfg.mongo_db, err) && cqrs_apply_loop_ready(p->loops[0], err);
}

int main(void) {
  cqrs_service_t svc;
  cqrs_error_t err = {0};
  size_t n = 0;
  while (cqrs_projections[n]) n++;
  projector_t p = {.svc = &svc, .loops = calloc(n, sizeof *p.loops)};
  int rc = 1;
  if (!cqrs_service_init(&svc, "projector-svc", 8082, environ, &err)) goto done;
  cqrs_metrics_describe(svc.metrics, "events_applied_total", CQRS_METRIC_COUNTER, "Events written to a read model.");
  cqrs_metrics_describe(svc.metrics, "dlq_events_total", CQRS_METRIC_COUNTER, "Events sent to the dead letter topic.");
  cqrs_metrics_describe(svc.metrics, "projection_lag_events", CQRS_METRIC_GAUGE, "Events behind, per partition.");
  if (!(p.pool = cqrs_mongo_pool_new(&svc.cfg, "projector-svc", &err))) goto fail;
  for (size_t i = 0; i < n; i++)
    if (!(p.loops[i] = cqrs_apply_loop_new(&svc.cfg, &svc.log, svc.metrics, p.pool, cqrs_projections[i], &err)) ||
        !cqrs_apply_loop_start(p.loops[i], &err))
      goto fail;
  cqrs_service_set_ready(&svc, ready_cb, &p);
  if (!cqrs_service_start(&svc, &err)) goto done;
  cqrs_service_wait(&svc);
  rc = 0;
  goto done;
fail:
  cqrs_log_error(&svc.log, "cannot start", "error", err.message, NULL);
done:
  cqrs_http_server_stop(svc.http);
  for (size_t i = 0; i < n; i++) cqrs_apply_loop_destroy(p.loops[i]);
  free(p.loops);
  if (p.pool) mongoc_client_pool_destroy(p.pool);
  cqrs_log_info(&svc.log, "stopped", NULL);
  cqrs_service_cleanup(&svc);
  return rc;
}
