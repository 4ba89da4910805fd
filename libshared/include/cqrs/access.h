/* Who may do what, wired the same way in every service that authenticates:
 * the control registry (tenants and API keys), the reader that keeps it
 * current from the control topic, and the authenticator over both. One
 * place, so no service forgets that it must not answer before the registry
 * has been read (a key refused now would be accepted a moment later). */
#ifndef CQRS_ACCESS_H
#define CQRS_ACCESS_H

#include "cqrs/auth.h"
#include "cqrs/config.h"
#include "cqrs/control.h"
#include "cqrs/error.h"
#include "cqrs/log.h"

#include <stdbool.h>

typedef struct {
  cqrs_registry_t *registry;     /* NULL when neither authentication nor the caller needs it */
  cqrs_control_reader_t *reader; /* NULL when not followed (AUTH=off and not always) */
  cqrs_auth_t *auth;
} cqrs_access_t;

/* Makes acc (caller storage, zeroed before): an authenticator for cfg's AUTH
 * settings and, when authentication is on or always_follow is set (admin-svc
 * follows the control topic also with AUTH=off), a registry with a reader
 * following the control topic. on_deleted (may be NULL) and ctx go to the
 * reader. False with err (and nothing left to free but what
 * cqrs_access_stop frees) on bad settings or when the reader cannot start. */
bool cqrs_access_start(cqrs_access_t *acc, const cqrs_config_t *cfg, const cqrs_log_t *log, bool always_follow,
                       cqrs_tenant_deleted_cb on_deleted, void *ctx, cqrs_error_t *err);

/* For /readyz: true once the reader (if any) has read every control record
 * that existed at start; false with err (CQRS_ERR_UNAVAILABLE) before. */
bool cqrs_access_ready(const cqrs_access_t *acc, cqrs_error_t *err);

/* Stops the reader and frees everything. Safe on a zeroed or half-made acc. */
void cqrs_access_stop(cqrs_access_t *acc);

#endif
