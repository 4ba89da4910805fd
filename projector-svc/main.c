/* projector-svc: wiring only. One apply loop per projection, or, with
 * --rebuild, one rebuild and exit. */
#include "apply_loop.h"
#include "rebuild.h"

#include "cqrs/mongo.h"
#include "cqrs/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* MONGO_TIMEOUT_MS unset: a store that accepts but never answers costs a
 * minute per try, not the driver's five; the write is then retried. Long
 * enough for a bulk command of 1,000 writes (5 s at 200 upserts/s on the
 * local FerretDB) with others in flight. */
#define DEFAULT_MONGO_TIMEOUT_MS 60000

static void default_store_timeout(cqrs_config_t *cfg) {
  if (cfg->mongo_timeout_ms == 0) cfg->mongo_timeout_ms = DEFAULT_MONGO_TIMEOUT_MS;
}

typedef struct {
  cqrs_service_t *svc;
  mongoc_client_pool_t *pool;
  cqrs_apply_loop_t **loops;
  size_t n;
} projector_t;

static bool ready_cb(void *ctx, cqrs_error_t *err) {
  projector_t *p = ctx;
  if (!cqrs_mongo_ping(p->pool, p->svc->cfg.mongo_db, err)) return false;
  for (size_t i = 0; i < p->n; i++)
    if (!cqrs_apply_loop_ready(p->loops[i], err)) return false;
  return true;
}

static int usage(void) {
  fprintf(stderr, "usage: projector-svc [--rebuild <projection> [--from-beginning | --from-time <RFC 3339 | ms>]]\n"
                  "projections:");
  for (size_t i = 0; cqrs_projections[i]; i++) fprintf(stderr, " %s", cqrs_projections[i]->name);
  fputc('\n', stderr);
  return 2;
}

static int rebuild_main(int argc, char **argv) {
  const cqrs_projection_t *proj = argc >= 3 ? cqrs_projection_find(argv[2]) : NULL;
  int64_t from = 0;
  if (!proj) return usage();
  if (argc == 5 && strcmp(argv[3], "--from-time") == 0) {
    if (!cqrs_rebuild_parse_time(argv[4], &from)) return usage();
  } else if (!(argc == 3 || (argc == 4 && strcmp(argv[3], "--from-beginning") == 0))) {
    return usage();
  }
  cqrs_config_t cfg;
  cqrs_error_t err;
  cqrs_log_t log = {"projector-svc", CQRS_LOG_INFO};
  if (!cqrs_config_load(&cfg, environ, 8082, &err)) {
    cqrs_log_error(&log, "bad configuration", "error", err.message, NULL);
    return 2;
  }
  log.level = cfg.log_level;
  default_store_timeout(&cfg);
  int rc = cqrs_rebuild_run(&cfg, &log, proj, from);
  cqrs_config_cleanup(&cfg);
  return rc;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "--rebuild") == 0) return rebuild_main(argc, argv);
  if (argc != 1) return usage();
  cqrs_service_t svc;
  cqrs_error_t err = {0};
  projector_t p = {.svc = &svc};
  while (cqrs_projections[p.n]) p.n++;
  p.loops = calloc(p.n, sizeof *p.loops);
  cqrs_read_models_t *rm = NULL;
  int rc = 1;
  if (!cqrs_service_init(&svc, "projector-svc", 8082, environ, &err)) goto done;
  cqrs_service_set_openapi(&svc, cqrs_openapi_json, cqrs_openapi_json_len);
  cqrs_metrics_describe(svc.metrics, "events_applied_total", CQRS_METRIC_COUNTER, "Events written to a read model.");
  cqrs_metrics_describe(svc.metrics, "dlq_events_total", CQRS_METRIC_COUNTER, "Events sent to the dead letter topic.");
  cqrs_metrics_describe(svc.metrics, "projection_lag_events", CQRS_METRIC_GAUGE, "Events behind, per partition.");
  cqrs_metrics_describe(svc.metrics, "store_documents_written_total", CQRS_METRIC_COUNTER,
                        "Document writes sent to the store (after folding each batch's events per document).");
  cqrs_metrics_describe(svc.metrics, "store_write_retries_total", CQRS_METRIC_COUNTER,
                        "Write commands retried because the store did not answer.");
  default_store_timeout(&svc.cfg);
  if (!(p.pool = cqrs_mongo_pool_new(&svc.cfg, "projector-svc", &err))) goto fail;
  rm = cqrs_read_models_new(svc.cfg.mongo_db, 1000);
  cqrs_apply_opts_t opts = {.poison = svc.cfg.poison_halt ? CQRS_POISON_HALT : CQRS_POISON_DLQ};
  for (size_t i = 0; i < p.n; i++)
    if (!(p.loops[i] = cqrs_apply_loop_new(&svc.cfg, &svc.log, svc.metrics, p.pool, rm, cqrs_projections[i], &opts,
                                           &err)) ||
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
  for (size_t i = 0; i < p.n; i++) cqrs_apply_loop_destroy(p.loops[i]);
  free(p.loops);
  if (p.pool) mongoc_client_pool_destroy(p.pool);
  cqrs_read_models_destroy(rm);
  cqrs_log_info(&svc.log, "stopped", NULL);
  cqrs_service_cleanup(&svc);
  return rc;
}
