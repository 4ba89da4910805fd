/* admin-svc: wiring only. The control plane: tenants and their API keys, as
 * records on the control topic (cqrs/control.h). Never writes events. */
#include "routes.h"
#include "writer.h"

#include "cqrs/auth.h"
#include "cqrs/control.h"
#include "cqrs/service.h"

extern char **environ;

typedef struct {
  cqrs_control_reader_t *reader;
  admin_writer_t *writer;
} ready_ctx_t;

static bool ready_cb(void *arg, cqrs_error_t *err) {
  ready_ctx_t *r = arg;
  if (!cqrs_control_reader_caught_up(r->reader)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "control records not read yet");
    return false;
  }
  if (!admin_writer_ping(r->writer, 1000)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "Kafka does not answer");
    return false;
  }
  return true;
}

int main(void) {
  cqrs_service_t svc;
  cqrs_error_t err = {0};
  cqrs_registry_t *reg = NULL;
  cqrs_auth_t *auth = NULL;
  ready_ctx_t ready = {0};
  int rc = 1;
  /* An unauthenticated control plane (AUTH=off) is served on loopback only. */
  if (!cqrs_service_init_ex(&svc, "admin-svc", 8083, environ, CQRS_SERVICE_LOOPBACK_WITHOUT_AUTH, &err)) goto done;
  cqrs_service_set_openapi(&svc, cqrs_openapi_json, cqrs_openapi_json_len);
  if (!(reg = cqrs_registry_new())) {
    cqrs_error_set(&err, CQRS_ERR_FATAL, NULL, "out of memory");
    goto fail;
  }
  if (!(auth = cqrs_auth_new(&svc.cfg, &svc.log, reg, &err))) goto fail;
  if (!(ready.reader = cqrs_control_reader_start(&svc.cfg, &svc.log, reg, NULL, NULL, &err))) goto fail;
  if (!(ready.writer = admin_writer_new(&svc.cfg, &svc.log, reg, ready.reader, svc.cfg.command_timeout_ms, &err)))
    goto fail;
  admin_ctx_t routes = {.auth = auth, .reg = reg, .writer = ready.writer, .log = &svc.log};
  admin_routes(svc.http, &routes);
  cqrs_service_set_ready(&svc, ready_cb, &ready);
  if (!cqrs_service_start(&svc, &err)) goto done;
  rc = cqrs_service_wait(&svc) ? 0 : 1;
  goto done;
fail:
  cqrs_log_error(&svc.log, "cannot start", "error", err.message, NULL);
done:
  /* HTTP first (handlers use everything below), then the writer (it syncs
   * with the reader), then the reader (it fills reg), then what they borrow. */
  cqrs_http_server_stop(svc.http);
  admin_writer_destroy(ready.writer);
  cqrs_control_reader_stop(ready.reader);
  cqrs_auth_destroy(auth);
  cqrs_registry_destroy(reg);
  cqrs_log_info(&svc.log, "stopped", NULL);
  cqrs_service_cleanup(&svc);
  return rc;
}
