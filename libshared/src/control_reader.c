/* The control reader: the control topic followed (cqrs/follow.h) into a
 * registry, telling who asked when a tenant is deleted. */
#include "cqrs/alloc.h"
#include "cqrs/control.h"

#include "cqrs/follow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cqrs_control_reader {
  cqrs_log_t log;
  cqrs_registry_t *reg;
  cqrs_tenant_deleted_cb on_deleted;
  void *ctx;
  cqrs_follower_t *follower;
};

/* The tenant id of a "tenant/<id>" record key into t; false for other keys. */
static bool tenant_of_key(const char *key, size_t len, char t[CQRS_TENANT_MAX + 1]) {
  static const char prefix[] = "tenant/";
  size_t plen = sizeof prefix - 1;
  if (!key || len <= plen || len - plen > CQRS_TENANT_MAX || memcmp(key, prefix, plen) != 0) return false;
  memcpy(t, key + plen, len - plen);
  t[len - plen] = '\0';
  return true;
}

/* @locality the follower's thread */
static void apply(const char *key, size_t key_len, const char *value, size_t value_len, int64_t offset, void *arg) {
  cqrs_control_reader_t *r = arg;
  char t[CQRS_TENANT_MAX + 1];
  bool is_tenant = tenant_of_key(key, key_len, t);
  cqrs_tenant_state_t before = is_tenant ? cqrs_registry_tenant_state(r->reg, t) : CQRS_TENANT_UNKNOWN;
  cqrs_error_t err = {0};
  if (!cqrs_registry_apply(r->reg, key, key_len, value, value_len, &err)) {
    char at[24];
    snprintf(at, sizeof at, "%lld", (long long)offset);
    /* Never the value: a key record holds a hash worth keeping to ourselves. */
    cqrs_log_warn(&r->log, "control record skipped", "offset", at, "error", err.message, NULL);
    return;
  }
  if (is_tenant && before != CQRS_TENANT_DELETED && cqrs_registry_tenant_state(r->reg, t) == CQRS_TENANT_DELETED) {
    cqrs_log_info(&r->log, "tenant deleted", "tenant", t, NULL);
    if (r->on_deleted) r->on_deleted(t, r->ctx);
  }
}

cqrs_control_reader_t *cqrs_control_reader_start(const cqrs_config_t *cfg, const cqrs_log_t *log,
                                                 cqrs_registry_t *reg, cqrs_tenant_deleted_cb on_deleted,
                                                 void *ctx, cqrs_error_t *err) {
  cqrs_control_reader_t *r = cqrs_xcalloc(1, sizeof *r);
  r->log = *log;
  r->reg = reg;
  r->on_deleted = on_deleted;
  r->ctx = ctx;
  if (!(r->follower = cqrs_follower_start(cfg, log, CQRS_TOPIC_CONTROL, "control", apply, r, err))) {
    free(r);
    return NULL;
  }
  return r;
}

bool cqrs_control_reader_caught_up(const cqrs_control_reader_t *r) { return cqrs_follower_caught_up(r->follower); }

bool cqrs_control_reader_sync(cqrs_control_reader_t *r, int timeout_ms, cqrs_error_t *err) {
  return cqrs_follower_sync(r->follower, timeout_ms, err);
}

void cqrs_control_reader_stop(cqrs_control_reader_t *r) {
  if (!r) return;
  cqrs_follower_stop(r->follower);
  free(r);
}
