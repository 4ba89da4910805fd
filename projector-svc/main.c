/* projector-svc: wiring only. One apply loop per projection, writing into
 * each tenant's database, and the control reader that drops a deleted
 * tenant's, and the control plane's jobs (control.h); or, with --rebuild, one
 * rebuild and exit. */
#include "apply_loop.h"
#include "cli.h"
#include "control.h"
#include "tenants.h"

#include "cqrs/alloc.h"
#include "cqrs/mongo.h"
#include "cqrs/read_model.h"
#include "cqrs/service.h"

#include <stdlib.h>

extern char **environ;

#define CONTROL_WAIT_MS 30000 /* reading the control topic to its end at start */

typedef struct {
  cqrs_service_t *svc;
  mongoc_client_pool_t *pool;
  cqrs_control_reader_t *control;
  cqrs_apply_loop_t **loops;
  size_t n;
  projector_control_t *ops;
} projector_t;

static bool ready_cb(void *ctx, cqrs_error_t *err) {
  projector_t *p = ctx;
  if (!cqrs_mongo_ping(p->pool, p->svc->cfg.mongo_db, err)) return false;
  if (!cqrs_control_reader_caught_up(p->control)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the control topic is not read to its end yet");
    return false;
  }
  if (!projector_control_ready(p->ops, err)) return false;
  for (size_t i = 0; i < p->n; i++)
    if (!cqrs_apply_loop_ready(p->loops[i], err)) return false;
  return true;
}

int main(int argc, char **argv) {
  if (argc > 1) return cqrs_projector_cli(argc, argv, environ);
  cqrs_service_t svc;
  cqrs_error_t err = {0};
  projector_t p = {.svc = &svc};
  size_t all = 0;
  while (cqrs_projections[all]) all++;
  p.loops = cqrs_xcalloc(all, sizeof *p.loops);
  const cqrs_projection_t **run = cqrs_xcalloc(all, sizeof *run);
  cqrs_registry_t *reg = cqrs_registry_new();
  cqrs_tenants_t *tenants = NULL;
  int rc = 1;
  if (!cqrs_service_init(&svc, "projector-svc", 8082, environ, &err)) goto done;
  cqrs_service_set_openapi(&svc, cqrs_openapi_json, cqrs_openapi_json_len);
  cqrs_apply_loop_describe_metrics(svc.metrics);
  cqrs_projector_default_store_timeout(&svc.cfg);
  if (!cqrs_projector_selected(&svc.cfg, run, &p.n, &err)) goto fail;
  if (!(p.pool = cqrs_mongo_pool_new(&svc.cfg, "projector-svc", &err))) goto fail;
  tenants = cqrs_tenants_new(&svc.cfg, &svc.log, p.pool, reg, CQRS_ALIAS_TTL_MS);
  /* before the first batch: a deleted tenant's events must be known as such */
  if (!(p.control = cqrs_tenants_follow(tenants, CONTROL_WAIT_MS, &err))) goto fail;
  cqrs_apply_opts_t opts = {.poison = svc.cfg.poison_halt ? CQRS_POISON_HALT : CQRS_POISON_DLQ};
  for (size_t i = 0; i < p.n; i++)
    if (!(p.loops[i] = cqrs_apply_loop_new(&svc.cfg, &svc.log, svc.metrics, p.pool, tenants, run[i], &opts,
                                           &err)) ||
        !cqrs_apply_loop_start(p.loops[i], &err))
      goto fail;
  if (!(p.ops = projector_control_start(&svc.cfg, &svc.log, p.pool, reg, tenants, p.loops, p.n, &err))) goto fail;
  cqrs_service_set_ready(&svc, ready_cb, &p);
  if (!cqrs_service_start(&svc, &err)) goto done;
  cqrs_service_wait(&svc);
  rc = 0;
  goto done;
fail:
  cqrs_log_error(&svc.log, "cannot start", "error", err.message, NULL);
done:
  cqrs_http_server_stop(svc.http);
  projector_control_stop(p.ops); /* it drives the loops: first */
  /* the loops first: a drop in progress on the reader thread waits for their batches */
  for (size_t i = 0; i < p.n; i++) cqrs_apply_loop_destroy(p.loops[i]);
  free(p.loops);
  free(run);
  cqrs_control_reader_stop(p.control);
  cqrs_tenants_destroy(tenants);
  if (p.pool) mongoc_client_pool_destroy(p.pool);
  cqrs_registry_destroy(reg);
  cqrs_log_info(&svc.log, "stopped", NULL);
  cqrs_service_cleanup(&svc);
  return rc;
}
