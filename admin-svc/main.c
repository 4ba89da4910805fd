/* admin-svc: wiring only. The control plane: tenants and their API keys, as
 * records on the control topic (cqrs/control.h); the schema registry, as
 * records on the schemas topic (cqrs/schemas.h); replays, projections and
 * dead letters as records on the ops topic (cqrs/ops.h) that projector-svc
 * acts on; saga inspection; the audit trail; the web console. Never writes
 * events. */
#include "console.h"
#include "routes.h"
#include "sagas.h"
#include "writer.h"

#include "cqrs/access.h"
#include "cqrs/service.h"

extern char **environ;

typedef struct {
  cqrs_access_t access;
  admin_writer_t *writer;
  admin_schemas_t *schemas;
  admin_sagas_t *sagas;
  cqrs_ops_t *ops;
  admin_probe_t *probe;
  admin_audit_t *audit;
} ready_ctx_t;

static bool ready_cb(void *arg, cqrs_error_t *err) {
  ready_ctx_t *r = arg;
  if (!cqrs_access_ready(&r->access, err)) return false;
  if (!cqrs_ops_caught_up(r->ops)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the ops topic is not read to its end yet");
    return false;
  }
  if (!admin_writer_ping(r->writer, 1000)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "Kafka does not answer");
    return false;
  }
  /* Ready once the registry holds every schema of the contract. */
  if (!admin_schemas_caught_up(r->schemas) || !admin_schemas_bootstrapped(r->schemas)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the schema registry is not read and filled yet");
    return false;
  }
  return true;
}

int main(void) {
  cqrs_service_t svc;
  cqrs_error_t err = {0};
  ready_ctx_t ready = {0};
  int rc = 1;
  /* An unauthenticated control plane (AUTH=off) is served on loopback only. */
  if (!cqrs_service_init_ex(&svc, "admin-svc", 8083, environ, CQRS_SERVICE_LOOPBACK_WITHOUT_AUTH, &err)) goto done;
  cqrs_service_set_openapi(&svc, cqrs_openapi_json, cqrs_openapi_json_len);
  /* It follows the control topic also with AUTH=off: its answers come from it. */
  cqrs_access_t *acc = &ready.access;
  if (!cqrs_access_start(acc, &svc.cfg, &svc.log, true, NULL, NULL, &err)) goto fail;
  if (!(ready.writer = admin_writer_new(&svc.cfg, &svc.log, acc->registry, acc->reader, svc.cfg.command_timeout_ms,
                                        &err)))
    goto fail;
  if (!(ready.schemas = admin_schemas_new(&svc.cfg, &svc.log, svc.cfg.command_timeout_ms, &err)) ||
      !admin_schemas_bootstrap_start(ready.schemas, &err))
    goto fail;
  if (!(ready.ops = cqrs_ops_open(&svc.cfg, &svc.log, NULL, NULL, &err)) ||
      !(ready.probe = admin_probe_new(&svc.cfg, &svc.log, &err)) ||
      !(ready.audit = admin_audit_new(&svc.cfg, &svc.log, &err)))
    goto fail;
  admin_ctx_t routes = {.auth = acc->auth, .reg = acc->registry, .writer = ready.writer, .schemas = ready.schemas,
                        .log = &svc.log, .ops = ready.ops, .probe = ready.probe, .audit = ready.audit};
  admin_routes(svc.http, &routes);
  if (!(ready.sagas = admin_sagas_start(&svc.cfg, &routes, svc.http, &err))) goto fail;
  admin_console_routes(svc.http, &routes);
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
  admin_sagas_stop(ready.sagas);
  admin_writer_destroy(ready.writer);
  admin_schemas_destroy(ready.schemas);
  admin_audit_destroy(ready.audit);
  admin_probe_destroy(ready.probe);
  cqrs_ops_close(ready.ops);
  cqrs_access_stop(&ready.access);
  cqrs_log_info(&svc.log, "stopped", NULL);
  cqrs_service_cleanup(&svc);
  return rc;
}
