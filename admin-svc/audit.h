/* The audit trail: every admin action (who, what, on what, when, outcome)
 * as one JSON record on the topic TOPIC_PREFIX + "audit" (one partition,
 * kept forever):
 *   {"at","who","tenant":str|null,"action","target","outcome":"ok|refused|failed","status":N}
 * who is the credential's subject (a JWT's sub, "apikey:<keyId>", or
 * "anonymous" with AUTH=off): never a secret. */
#ifndef ADMIN_AUDIT_H
#define ADMIN_AUDIT_H

#include "cqrs/config.h"
#include "cqrs/error.h"
#include "cqrs/log.h"

#include <stdbool.h>

typedef struct admin_audit admin_audit_t;

admin_audit_t *admin_audit_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_error_t *err);
void admin_audit_destroy(admin_audit_t *a);

/* Records one action and waits (bounded) for Kafka's acknowledgement; a
 * record that cannot be written is logged (the action itself stands).
 * tenant may be NULL or "". */
void admin_audit_write(admin_audit_t *a, const char *who, const char *tenant, const char *action, const char *target,
                       int status);

#endif
