/* saga-svc: wiring only. The saga loop and the HTTP endpoints every service
 * has (/healthz, /readyz, /metrics, /openapi.json). */
#include "saga_loop.h"

#include "cqrs/service.h"

#include <stdio.h>
#include <unistd.h>

extern char **environ;

static bool ready_cb(void *ctx, cqrs_error_t *err) { return cqrs_saga_loop_ready(ctx, err); }
static bool failed_cb(void *ctx, cqrs_error_t *err) { return cqrs_saga_loop_failed(ctx, err); }

int main(void) {
  cqrs_service_t svc;
  cqrs_error_t err = {0};
  cqrs_saga_loop_t *loop = NULL;
  int rc = 1;
  if (!cqrs_service_init(&svc, "saga-svc", 8084, environ, &err)) goto done;
  cqrs_service_set_openapi(&svc, cqrs_openapi_json, cqrs_openapi_json_len);
  /* A transactional.id per live instance: fencing comes from the group generation (KIP-447). */
  char host[128] = "local", instance[200];
  gethostname(host, sizeof host - 1);
  snprintf(instance, sizeof instance, "%s-%d", host, svc.cfg.http_port);
  if (!(loop = cqrs_saga_loop_new(&svc.cfg, &svc.log, svc.metrics, instance, &err)) ||
      !cqrs_saga_loop_start(loop, &err)) {
    cqrs_log_error(&svc.log, "cannot start", "error", err.message, NULL);
    goto done;
  }
  cqrs_service_set_ready(&svc, ready_cb, loop);
  cqrs_service_set_failed(&svc, failed_cb, loop);
  if (!cqrs_service_start(&svc, &err)) goto done;
  rc = cqrs_service_wait(&svc) ? 0 : 1;
done:
  cqrs_http_server_stop(svc.http);
  cqrs_saga_loop_destroy(loop);
  cqrs_log_info(&svc.log, "stopped", NULL);
  cqrs_service_cleanup(&svc);
  return rc;
}
