/* What each admin write decides, from the registry as this process knows it:
 * the control record to write, nothing (already so), or a refusal. Pure but
 * for reading the registry; admin_writer_apply runs them under its lock. The
 * request's time comes in as now (RFC 3339), so a decision depends on its
 * inputs only. */
#ifndef ADMIN_DECIDE_H
#define ADMIN_DECIDE_H

#include "writer.h"

#include "cqrs/auth.h"
#include "cqrs/control.h"

#include <bson/bson.h>

/* The scopes an API key may carry: a tenant's. */
#define ADMIN_KEY_SCOPES (CQRS_SCOPE_COMMANDS_WRITE | CQRS_SCOPE_QUERIES_READ | CQRS_SCOPE_ADMIN)

/* A tenant write: tenant and now in; result (the tenant's record after it) and
 * wrote out. */
typedef struct {
  const char *tenant;
  const char *now;
  cqrs_tenant_rec_t result;
  bool wrote;
} admin_tenant_op_t;

/* Create: CQRS_ERR_CONFLICT (field tenantId) when the tenant exists or was
 * deleted (a deleted tenant's id is never used again). ctx: admin_tenant_op_t. */
bool admin_decide_tenant_create(cqrs_registry_t *reg, void *ctx, admin_record_t *out, cqrs_error_t *err);

/* Delete: CQRS_ERR_NOT_FOUND when unknown; nothing to write when already
 * deleted (result: its record). ctx: admin_tenant_op_t. */
bool admin_decide_tenant_delete(cqrs_registry_t *reg, void *ctx, admin_record_t *out, cqrs_error_t *err);

/* A key write: tenant, now, and scopes (issue) or key_id (revoke) in; result,
 * key (issue: the key itself, for its one answer) and wrote out. */
typedef struct {
  const char *tenant;
  const char *now;
  unsigned scopes;
  const char *key_id;
  cqrs_apikey_rec_t result;
  char key[CQRS_API_KEY_LEN + 1];
  bool wrote;
} admin_key_op_t;

/* Issue: CQRS_ERR_NOT_FOUND unless the tenant is active; a new key made by
 * cqrs_apikey_new otherwise. ctx: admin_key_op_t. */
bool admin_decide_key_issue(cqrs_registry_t *reg, void *ctx, admin_record_t *out, cqrs_error_t *err);

/* Revoke: CQRS_ERR_NOT_FOUND when there is no such key in that tenant;
 * nothing to write when already revoked. ctx: admin_key_op_t. */
bool admin_decide_key_revoke(cqrs_registry_t *reg, void *ctx, admin_record_t *out, cqrs_error_t *err);

/* The record of tenant t (copied into *out); false when there is none. */
bool admin_tenant_find(cqrs_registry_t *reg, const char *t, cqrs_tenant_rec_t *out);

/* The "scopes" array of an issue request as bits: at least one, each a
 * tenant scope. False with a CQRS_ERR_INVALID err naming "scopes" otherwise
 * (platform:admin gets its own message). */
bool admin_scopes_parse(const bson_t *body, unsigned *scopes, cqrs_error_t *err);

/* A key record as the API shows it: never its hash; with key (not NULL), the
 * key too and not the revocation (the issue answer). A string to bson_free. */
char *admin_key_json(const cqrs_apikey_rec_t *rec, const char *key, size_t *len);

#endif
