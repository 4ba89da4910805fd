/* command-svc: wiring only. Authentication (the control registry and its
 * reader), the HTTP ingress and the command loop. */
#include "command_loop.h"
#include "ingress.h"

#include "cqrs/alloc.h"
#include "cqrs/access.h"
#include "cqrs/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern char **environ;

/* What /readyz and the failure watch ask. */
typedef struct {
  cqrs_command_loop_t **lanes;
  int n_lanes;
  const cqrs_access_t *access;
  cqrs_ingress_t *ingress;
} parts_t;

static bool ready_cb(void *ctx, cqrs_error_t *err) {
  parts_t *p = ctx;
  if (!cqrs_access_ready(p->access, err) || !cqrs_ingress_ready(p->ingress, err)) return false;
  for (int i = 0; i < p->n_lanes; i++)
    if (!cqrs_command_loop_ready(p->lanes[i], err)) return false;
  return true;
}

/* One failed lane fails the instance: it restarts clean, all lanes at once. */
static bool failed_cb(void *ctx, cqrs_error_t *err) {
  parts_t *p = ctx;
  for (int i = 0; i < p->n_lanes; i++)
    if (cqrs_command_loop_failed(p->lanes[i], err)) return true;
  return false;
}

int main(void) {
  cqrs_service_t svc;
  cqrs_error_t err = {0};
  cqrs_access_t access = {0};
  cqrs_command_loop_t **lanes = NULL;
  cqrs_ingress_t *ingress = NULL;
  cqrs_ratelimit_t *limits = NULL;
  parts_t parts = {0};
  int rc = 1;
  if (!cqrs_service_init(&svc, "command-svc", 8080, environ, &err)) goto done;
  cqrs_service_set_openapi(&svc, cqrs_openapi_json, cqrs_openapi_json_len);
  /* A transactional.id per live instance; with KIP-447 fencing comes from the
   * consumer group generation, so it need not survive restarts. */
  char host[128] = "local", instance[200];
  gethostname(host, sizeof host - 1);
  snprintf(instance, sizeof instance, "%s-%d", host, svc.cfg.http_port);
  /* One per-tenant command rate for the instance: its lanes take the tokens, its HTTP gate peeks. */
  limits = cqrs_ratelimit_new(svc.cfg.rate_limit_commands, 2.0 * svc.cfg.rate_limit_commands,
                              CQRS_RATELIMIT_TENANTS);
  int n = svc.cfg.command_lanes;
  lanes = cqrs_xcalloc((size_t)n, sizeof *lanes);
  bool ok = cqrs_access_start(&access, &svc.cfg, &svc.log, false, NULL, NULL, &err);
  for (int i = 0; ok && i < n; i++)
    ok = (lanes[i] = cqrs_command_loop_new(&svc.cfg, &svc.log, svc.metrics, access.auth, limits, instance, i, &err));
  ok = ok && (ingress = cqrs_ingress_new(&svc.cfg, &svc.log, svc.metrics, access.auth, limits, svc.http, &err));
  for (int i = 0; ok && i < n; i++) ok = cqrs_command_loop_start(lanes[i], &err);
  if (!ok || !cqrs_ingress_start(ingress, &err)) {
    cqrs_log_error(&svc.log, "cannot start", "error", err.message, NULL);
    goto done;
  }
  parts = (parts_t){lanes, n, &access, ingress};
  cqrs_service_set_ready(&svc, ready_cb, &parts);
  /* A fatal error in a command lane ends the wait like SIGTERM: stop
   * cleanly, exit 1, and let the orchestrator start a fresh instance. */
  cqrs_service_set_failed(&svc, failed_cb, &parts);
  if (!cqrs_service_start(&svc, &err)) goto done;
  rc = cqrs_service_wait(&svc) ? 0 : 1;
done:
  /* Order: stop taking requests, then finish the batch in hand, then flush;
   * authentication goes last, as both use it. */
  cqrs_http_server_stop(svc.http);
  for (int i = 0; lanes && i < svc.cfg.command_lanes; i++) cqrs_command_loop_stop(lanes[i]);
  for (int i = 0; lanes && i < svc.cfg.command_lanes; i++) cqrs_command_loop_destroy(lanes[i]);
  free(lanes);
  cqrs_ingress_destroy(ingress);
  cqrs_ratelimit_destroy(limits);
  cqrs_access_stop(&access);
  cqrs_log_info(&svc.log, "stopped", NULL);
  cqrs_service_cleanup(&svc);
  return rc;
}
