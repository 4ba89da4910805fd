/* The schemas topic followed (cqrs/follow.h) into a cqrs_schemas_t. */
#include "cqrs/alloc.h"
#include "cqrs/schemas.h"

#include "cqrs/follow.h"

#include <stdio.h>
#include <stdlib.h>

struct cqrs_schemas_reader {
  cqrs_log_t log;
  cqrs_schemas_t *schemas;
  cqrs_follower_t *follower;
};

/* @locality the follower's thread */
static void apply(const char *key, size_t key_len, const char *value, size_t value_len, int64_t offset, void *arg) {
  cqrs_schemas_reader_t *r = arg;
  cqrs_error_t err = {0};
  if (!cqrs_schemas_apply(r->schemas, key, key_len, value, value_len, NULL, &err)) {
    char at[24];
    snprintf(at, sizeof at, "%lld", (long long)offset);
    cqrs_log_warn(&r->log, "schemas record skipped", "offset", at, "error", err.message, NULL);
  }
}

cqrs_schemas_reader_t *cqrs_schemas_reader_start(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_schemas_t *s,
                                                 cqrs_error_t *err) {
  cqrs_schemas_reader_t *r = cqrs_xcalloc(1, sizeof *r);
  r->log = *log;
  r->schemas = s;
  if (!(r->follower = cqrs_follower_start(cfg, log, CQRS_TOPIC_SCHEMAS, "schemas", apply, r, err))) {
    free(r);
    return NULL;
  }
  return r;
}

bool cqrs_schemas_reader_caught_up(const cqrs_schemas_reader_t *r) { return cqrs_follower_caught_up(r->follower); }

bool cqrs_schemas_reader_sync(cqrs_schemas_reader_t *r, int timeout_ms, cqrs_error_t *err) {
  return cqrs_follower_sync(r->follower, timeout_ms, err);
}

void cqrs_schemas_reader_stop(cqrs_schemas_reader_t *r) {
  if (!r) return;
  cqrs_follower_stop(r->follower);
  free(r);
}
