/* The registry, its reader and the authenticator, together (cqrs/access.h). */
#include "cqrs/access.h"

#include <string.h>

bool cqrs_access_start(cqrs_access_t *acc, const cqrs_config_t *cfg, const cqrs_log_t *log, bool always_follow,
                       cqrs_tenant_deleted_cb on_deleted, void *ctx, cqrs_error_t *err) {
  if (cfg->auth_enabled || always_follow) {
    if (!(acc->registry = cqrs_registry_new())) {
      cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "cannot initialise the registry's lock");
      return false;
    }
    if (!(acc->reader = cqrs_control_reader_start(cfg, log, acc->registry, on_deleted, ctx, err))) return false;
  }
  return (acc->auth = cqrs_auth_new(cfg, log, acc->registry, err)) != NULL;
}

bool cqrs_access_ready(const cqrs_access_t *acc, cqrs_error_t *err) {
  if (acc->reader && !cqrs_control_reader_caught_up(acc->reader)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the control records are not read yet");
    return false;
  }
  return true;
}

void cqrs_access_stop(cqrs_access_t *acc) {
  if (!acc) return;
  cqrs_control_reader_stop(acc->reader); /* first: it writes into the registry */
  cqrs_auth_destroy(acc->auth);
  if (acc->registry) cqrs_registry_destroy(acc->registry);
  memset(acc, 0, sizeof *acc);
}
