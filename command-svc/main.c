/* command-svc: wiring only. Authentication (the control registry and its
 * reader), the HTTP ingress and the command loop. */
#include "command_loop.h"
#include "ingress.h"

#include "cqrs/auth.h"
#include "cqrs/control.h"
#include "cqrs/service.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern char **environ;

/* What /readyz asks. */
typedef struct {
  cqrs_command_loop_t *loop;
  cqrs_control_reader_t *control; /* NULL with AUTH=off */
} parts_t;

static bool ready_cb(void *ctx, cqrs_error_t *err) {
  parts_t *p = ctx;
  /* Not before every API key and tenant known at start has been read: a
   * credential refused now would be accepted a moment later. */
  if (p->control && !cqrs_control_reader_caught_up(p->control)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the control records are not read yet");
    return false;
  }
  return cqrs_command_loop_ready(p->loop, err);
}

static bool failed_cb(void *ctx, cqrs_error_t *err) { return cqrs_command_loop_failed(ctx, err); }

int main(void) {
  cqrs_service_t svc;
  cqrs_error_t err = {0};
  cqrs_registry_t *registry = NULL;
  cqrs_control_reader_t *control = NULL;
  cqrs_auth_t *auth = NULL;
  cqrs_command_loop_t *loop = NULL;
  cqrs_ingress_t *ingress = NULL;
  parts_t parts = {0};
  int rc = 1;
  if (!cqrs_service_init(&svc, "command-svc", 8080, environ, &err)) goto done;
  cqrs_service_set_openapi(&svc, cqrs_openapi_json, cqrs_openapi_json_len);
  /* A transactional.id per live instance; with KIP-447 fencing comes from the
   * consumer group generation, so it need not survive restarts. */
  char host[128] = "local", instance[200];
  gethostname(host, sizeof host - 1);
  snprintf(instance, sizeof instance, "%s-%d", host, svc.cfg.http_port);
  if (svc.cfg.auth_enabled &&
      (!(registry = cqrs_registry_new()) ||
       !(control = cqrs_control_reader_start(&svc.cfg, &svc.log, registry, NULL, NULL, &err)))) {
    if (!registry) cqrs_error_set(&err, CQRS_ERR_INTERNAL, NULL, "out of memory");
    cqrs_log_error(&svc.log, "cannot start", "error", err.message, NULL);
    goto done;
  }
  if (!(auth = cqrs_auth_new(&svc.cfg, &svc.log, registry, &err)) ||
      !(loop = cqrs_command_loop_new(&svc.cfg, &svc.log, svc.metrics, auth, instance, &err)) ||
      !(ingress = cqrs_ingress_new(&svc.cfg, &svc.log, svc.metrics, auth, svc.http, &err)) ||
      !cqrs_command_loop_start(loop, &err) || !cqrs_ingress_start(ingress, &err)) {
    cqrs_log_error(&svc.log, "cannot start", "error", err.message, NULL);
    goto done;
  }
  parts = (parts_t){loop, control};
  cqrs_service_set_ready(&svc, ready_cb, &parts);
  /* A fatal error in the command loop ends the wait like SIGTERM: stop
   * cleanly, exit 1, and let the orchestrator start a fresh instance. */
  cqrs_service_set_failed(&svc, failed_cb, loop);
  if (!cqrs_service_start(&svc, &err)) goto done;
  rc = cqrs_service_wait(&svc) ? 0 : 1;
done:
  /* Order: stop taking requests, then finish the batch in hand, then flush;
   * authentication goes last, as both use it. */
  cqrs_http_server_stop(svc.http);
  cqrs_command_loop_destroy(loop);
  cqrs_ingress_destroy(ingress);
  cqrs_control_reader_stop(control);
  cqrs_auth_destroy(auth);
  if (registry) cqrs_registry_destroy(registry);
  cqrs_log_info(&svc.log, "stopped", NULL);
  cqrs_service_cleanup(&svc);
  return rc;
}
