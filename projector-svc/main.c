/* projector-svc: wiring only. One apply loop per projection, writing into
 * each tenant's database, and the control reader that drops a deleted
 * tenant's; or, with --rebuild, one rebuild and exit. */
#include "apply_loop.h"
#include "rebuild.h"
#include "tenants.h"

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
#define ALIAS_TTL_MS 1000     /* how soon a rebuild's swap reaches the live loops */
#define CONTROL_WAIT_MS 30000 /* reading the control topic to its end at start */

static void default_store_timeout(cqrs_config_t *cfg) {
  if (cfg->mongo_timeout_ms == 0) cfg->mongo_timeout_ms = DEFAULT_MONGO_TIMEOUT_MS;
}

typedef struct {
  cqrs_service_t *svc;
  mongoc_client_pool_t *pool;
  cqrs_control_reader_t *control;
  cqrs_apply_loop_t **loops;
  size_t n;
} projector_t;

static bool ready_cb(void *ctx, cqrs_error_t *err) {
  projector_t *p = ctx;
  if (!cqrs_mongo_ping(p->pool, p->svc->cfg.mongo_db, err)) return false;
  if (!cqrs_control_reader_caught_up(p->control)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the control topic is not read to its end yet");
    return false;
  }
  for (size_t i = 0; i < p->n; i++)
    if (!cqrs_apply_loop_ready(p->loops[i], err)) return false;
  return true;
}

static void help(FILE *out) {
  fprintf(out,
          "usage: projector-svc\n"
          "       projector-svc --rebuild <projection> [--from-beginning | --from-time <RFC 3339 | ms>]\n"
          "                     [--tenant <tenantId>]\n"
          "       projector-svc --help\n"
          "\n"
          "Without arguments: runs every projection, each tenant's documents in its own database\n"
          "<MONGO_DB>_<tenant>; a tenant deleted in the control plane has its database dropped and\n"
          "its events skipped from then on.\n"
          "\n"
          "--rebuild replays the event log into a fresh collection and swaps the read model to it\n"
          "once caught up (queries read the old one until then), then exits. --from-beginning\n"
          "(the default) replays the whole log, --from-time only events at or after the time.\n"
          "--tenant rebuilds only that tenant's read model, in its database: the whole log is read,\n"
          "only its events applied, and no other tenant's documents are touched. Without --tenant\n"
          "every tenant met in the log is rebuilt, each in its own database. A deleted tenant is\n"
          "never rebuilt.\n"
          "\n"
          "projections:");
  for (size_t i = 0; cqrs_projections[i]; i++) fprintf(out, " %s", cqrs_projections[i]->name);
  fputc('\n', out);
}

static int usage(void) {
  help(stderr);
  return 2;
}

static int rebuild_main(int argc, char **argv) {
  const cqrs_projection_t *proj = argc >= 3 ? cqrs_projection_find(argv[2]) : NULL;
  int64_t from = 0;
  const char *tenant = NULL;
  bool from_given = false;
  if (!proj) return usage();
  for (int i = 3; i < argc; i++) {
    if (strcmp(argv[i], "--from-beginning") == 0 && !from_given) {
      from_given = true;
    } else if (strcmp(argv[i], "--from-time") == 0 && !from_given && i + 1 < argc) {
      from_given = true;
      if (!cqrs_rebuild_parse_time(argv[++i], &from)) return usage();
    } else if (strcmp(argv[i], "--tenant") == 0 && !tenant && i + 1 < argc) {
      cqrs_error_t err;
      if (!cqrs_tenant_valid(argv[++i], &err)) {
        fprintf(stderr, "projector-svc: --tenant: %s\n", err.message);
        return 2;
      }
      tenant = argv[i];
    } else {
      return usage();
    }
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
  int rc = cqrs_rebuild_run(&cfg, &log, proj, from, tenant);
  cqrs_config_cleanup(&cfg);
  return rc;
}

int main(int argc, char **argv) {
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    help(stdout);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "--rebuild") == 0) return rebuild_main(argc, argv);
  if (argc != 1) return usage();
  cqrs_service_t svc;
  cqrs_error_t err = {0};
  projector_t p = {.svc = &svc};
  while (cqrs_projections[p.n]) p.n++;
  p.loops = calloc(p.n, sizeof *p.loops);
  cqrs_registry_t *reg = cqrs_registry_new();
  cqrs_tenants_t *tenants = NULL;
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
  cqrs_metrics_describe(svc.metrics, "events_applied_by_tenant_total", CQRS_METRIC_COUNTER,
                        "Events written to a read model, per tenant (the first 50 tenants, then _other).");
  cqrs_metrics_describe(svc.metrics, "events_skipped_total", CQRS_METRIC_COUNTER,
                        "Events not written, by reason (tenant_deleted: their tenant is deleted).");
  default_store_timeout(&svc.cfg);
  if (!(p.pool = cqrs_mongo_pool_new(&svc.cfg, "projector-svc", &err))) goto fail;
  tenants = cqrs_tenants_new(&svc.cfg, &svc.log, p.pool, reg, ALIAS_TTL_MS);
  /* before the first batch: a deleted tenant's events must be known as such */
  if (!(p.control = cqrs_tenants_follow(tenants, CONTROL_WAIT_MS, &err))) goto fail;
  cqrs_apply_opts_t opts = {.poison = svc.cfg.poison_halt ? CQRS_POISON_HALT : CQRS_POISON_DLQ};
  for (size_t i = 0; i < p.n; i++)
    if (!(p.loops[i] = cqrs_apply_loop_new(&svc.cfg, &svc.log, svc.metrics, p.pool, tenants, cqrs_projections[i], &opts,
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
  /* the loops first: a drop in progress on the reader thread waits for their batches */
  for (size_t i = 0; i < p.n; i++) cqrs_apply_loop_destroy(p.loops[i]);
  free(p.loops);
  cqrs_control_reader_stop(p.control);
  cqrs_tenants_destroy(tenants);
  if (p.pool) mongoc_client_pool_destroy(p.pool);
  cqrs_registry_destroy(reg);
  cqrs_log_info(&svc.log, "stopped", NULL);
  cqrs_service_cleanup(&svc);
  return rc;
}
