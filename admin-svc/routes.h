/* admin-svc routes: tenants (routes/tenants.c) and their API keys
 * (routes/keys.c), behind one gate (routes/gate.c) that authenticates every
 * request and sends /v1/admin/tenants/{t}[/keys[/{keyId}]] on (path.h); the control
 * plane's jobs: replays (routes/replays.c), projections
 * (routes/projections.c), dead letters (routes/dlq.c), and the audit trail
 * (routes/audit.c) every action is written to. */
#ifndef ADMIN_ROUTES_H
#define ADMIN_ROUTES_H

#include "schema_writer.h"
#include "audit.h"
#include "path.h"
#include "probe.h"
#include "writer.h"

#include "cqrs/auth.h"
#include "cqrs/control.h"
#include "cqrs/http.h"
#include "cqrs/log.h"
#include "cqrs/ops.h"

typedef struct {
  cqrs_auth_t *auth;      /* borrowed */
  cqrs_registry_t *reg;   /* borrowed: what the control reader has read */
  admin_writer_t *writer; /* borrowed */
  admin_schemas_t *schemas; /* borrowed: the schema registry (routes/schemas.c) */
  const cqrs_log_t *log;  /* borrowed */
  cqrs_ops_t *ops;        /* borrowed: the ops topic (cqrs/ops.h) */
  admin_probe_t *probe;   /* borrowed */
  admin_audit_t *audit;   /* borrowed */
} admin_ctx_t;

/* Who is calling, once the gate let them in. */
typedef struct {
  cqrs_principal_t who;
  bool platform; /* a platform administrator (or anyone with AUTH=off) */
} admin_caller_t;

/* A handler of a path under /v1/admin/tenants/; it authorizes and answers. */
typedef void (*admin_handler_cb)(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path);

/* Registers every route on http. */
void admin_routes(cqrs_http_server_t *http, admin_ctx_t *ctx);
/* The control plane's routes, each file registering its own. */
void admin_replay_routes(cqrs_http_server_t *http, admin_ctx_t *ctx);
void admin_projection_routes(cqrs_http_server_t *http, admin_ctx_t *ctx);
void admin_dlq_routes(cqrs_http_server_t *http, admin_ctx_t *ctx);
void admin_audit_routes(cqrs_http_server_t *http, admin_ctx_t *ctx);

/* Registers the schema registry's routes, /v1/schemas/... (routes/schemas.c). */
void admin_schema_routes(cqrs_http_server_t *http, admin_ctx_t *ctx);

/* ---- the gate (routes/gate.c) ---- */

/* Authenticates req as a platform administrator (scope platform:admin). With
 * AUTH=off (admin-svc then listens on loopback only) every caller is one.
 * False once it has answered 401/403 (audited). caller (may be NULL) gets who
 * it is. */
bool admin_gate_platform(cqrs_http_req_t *req, admin_ctx_t *ctx, admin_caller_t *caller);

/* Authenticates req for tenant t's keys: a platform administrator, or a
 * credential of tenant t with scope admin. Another tenant's credential gets
 * the 404 an unknown tenant gets. False once it has answered. caller (may be
 * NULL) gets who it is. */
bool admin_gate_tenant_admin(cqrs_http_req_t *req, admin_ctx_t *ctx, const char *t, admin_caller_t *caller);

/* Authenticates req as an administrator: scope platform:admin, or scope
 * admin of a tenant (then caller->platform is false and the handler limits
 * what it shows and does to that tenant). A refusal is answered (401/403)
 * and audited as action. False once it has answered. */
bool admin_gate_admin(cqrs_http_req_t *req, admin_ctx_t *ctx, const char *action, admin_caller_t *caller);

/* Writes an audit record of an action (audit.h) by caller (NULL: unknown). */
void admin_audit(admin_ctx_t *ctx, const admin_caller_t *caller, const char *action, const char *target, int status);

/* Answers status with the JSON {"error": message} and audits it. */
void admin_refuse(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_caller_t *caller, const char *action,
                  const char *target, int status, const char *message);

/* True when req's query has only parameters in allowed (NULL-terminated);
 * false once it answered 400 naming the unknown one (or a malformed query). */
bool admin_query_only(cqrs_http_req_t *req, const char *const *allowed);

/* The ?limit= of a list (default 50, at most 500); false once it answered 400. */
bool admin_limit(cqrs_http_req_t *req, int *limit);

/* Answers 404 {"error":"no such tenant"}: also what another tenant's
 * credential sees, so it learns nothing. */
void admin_reply_no_tenant(cqrs_http_req_t *req);

/* Answers a failed write: err's status, and its message (a decision's reason
 * or "the control plane did not answer"). */
void admin_reply_error(cqrs_http_req_t *req, const cqrs_error_t *err);

/* ---- the handlers ---- */

void admin_tenant_create(cqrs_http_req_t *req, void *ctx);
void admin_tenant_list(cqrs_http_req_t *req, void *ctx);
void admin_tenant_get(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path);
void admin_tenant_delete(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path);
void admin_key_issue(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path);
void admin_key_list(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path);
void admin_key_revoke(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path);

#endif
