/* Every admin route's entry: authentication through cqrs_auth_http, who may
 * act on which tenant, and the table that sends a path under
 * /v1/admin/tenants/ to its handler. */
#include "../routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An audit action name for a request the gate refused: "<METHOD> <path>". */
static void refused(cqrs_http_req_t *req, admin_ctx_t *ctx) {
  char action[160];
  snprintf(action, sizeof action, "%s %s", cqrs_http_req_method(req), cqrs_http_req_path(req));
  admin_audit(ctx, NULL, action, cqrs_http_req_path(req), 403);
}

bool admin_gate_platform(cqrs_http_req_t *req, admin_ctx_t *ctx, admin_caller_t *caller) {
  bool on = cqrs_auth_enabled(ctx->auth);
  admin_caller_t c = {0};
  /* AUTH=off passes everyone as tenant "default"; admin-svc then serves on
   * loopback only, and whoever reaches it there is the operator. */
  bool ok = cqrs_auth_http(ctx->auth, req, on ? CQRS_SCOPE_PLATFORM : 0, &c.who);
  if (!ok) refused(req, ctx);
  c.platform = ok;
  if (caller) *caller = c;
  return ok;
}

bool admin_gate_admin(cqrs_http_req_t *req, admin_ctx_t *ctx, const char *action, admin_caller_t *caller) {
  memset(caller, 0, sizeof *caller);
  if (!cqrs_auth_http(ctx->auth, req, 0, &caller->who)) {
    admin_audit(ctx, NULL, action, cqrs_http_req_path(req), 401);
    return false;
  }
  caller->platform = !cqrs_auth_enabled(ctx->auth) || (caller->who.scopes & CQRS_SCOPE_PLATFORM);
  if (caller->platform) return true;
  cqrs_error_t err;
  if (!cqrs_auth_require(&caller->who, CQRS_SCOPE_ADMIN, &err)) {
    cqrs_http_req_add_header(req, "WWW-Authenticate", "Bearer error=\"insufficient_scope\", scope=\"admin\"");
    cqrs_http_reply_error(req, 403, err.message, NULL);
    admin_audit(ctx, caller, action, cqrs_http_req_path(req), 403);
    return false;
  }
  return true;
}

void admin_audit(admin_ctx_t *ctx, const admin_caller_t *caller, const char *action, const char *target, int status) {
  if (!ctx->audit) return;
  admin_audit_write(ctx->audit, caller ? caller->who.subject : "unknown", caller ? caller->who.tenant : NULL, action,
                    target, status);
}

void admin_refuse(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_caller_t *caller, const char *action,
                  const char *target, int status, const char *message) {
  cqrs_http_reply_error(req, status, message, NULL);
  admin_audit(ctx, caller, action, target, status);
}

bool admin_query_only(cqrs_http_req_t *req, const char *const *allowed) {
  const char *unknown = NULL;
  if (!cqrs_http_req_query_unknown(req, allowed, &unknown)) return true;
  char msg[160];
  if (*unknown)
    snprintf(msg, sizeof msg, "unknown query parameter \"%.100s\"", unknown);
  else
    snprintf(msg, sizeof msg, "the query string is malformed");
  cqrs_http_reply_error(req, 400, msg, *unknown ? unknown : NULL);
  return false;
}

bool admin_limit(cqrs_http_req_t *req, int *limit) {
  const char *l = cqrs_http_req_query(req, "limit");
  *limit = 50;
  if (!l) return true;
  char *end;
  long v = strtol(l, &end, 10);
  if (!*l || *end || v < 1 || v > 500) {
    cqrs_http_reply_error(req, 400, "limit must be an integer from 1 to 500", "limit");
    return false;
  }
  *limit = (int)v;
  return true;
}

bool admin_gate_tenant_admin(cqrs_http_req_t *req, admin_ctx_t *ctx, const char *t, admin_caller_t *caller) {
  admin_caller_t c = {0};
  if (!cqrs_auth_http(ctx->auth, req, 0, &c.who)) {
    refused(req, ctx);
    return false;
  }
  c.platform = !cqrs_auth_enabled(ctx->auth) || (c.who.scopes & CQRS_SCOPE_PLATFORM);
  if (caller) *caller = c;
  const cqrs_principal_t *who = &c.who;
  if (c.platform) return true;
  if (strcmp(who->tenant, t) != 0) {
    admin_reply_no_tenant(req);
    return false;
  }
  cqrs_error_t err;
  if (!cqrs_auth_require(who, CQRS_SCOPE_ADMIN, &err)) {
    cqrs_log_info(ctx->log, "request refused: scope missing", "reason", err.message, "path",
                  cqrs_http_req_path(req), "subject", who->subject, NULL);
    cqrs_http_req_add_header(req, "WWW-Authenticate", "Bearer error=\"insufficient_scope\", scope=\"admin\"");
    cqrs_http_reply_error(req, 403, err.message, NULL);
    admin_audit(ctx, &c, "access", cqrs_http_req_path(req), 403);
    return false;
  }
  return true;
}

void admin_reply_no_tenant(cqrs_http_req_t *req) { cqrs_http_reply_error(req, 404, "no such tenant", NULL); }

void admin_reply_error(cqrs_http_req_t *req, const cqrs_error_t *err) {
  if (err->code == CQRS_ERR_UNAVAILABLE) {
    /* The detail (a Kafka error) went to the log. */
    cqrs_http_req_add_header(req, "Retry-After", "1");
    cqrs_http_reply_error(req, 503, "the control plane did not answer in time; retry", NULL);
    return;
  }
  cqrs_http_reply_cqrs_error(req, err);
}

typedef struct {
  const char *method;
  const char *path; /* the router's pattern */
  int parts;
  admin_handler_cb cb;
} subroute_t;

static const subroute_t subroutes[] = {
    {"GET", "/v1/admin/tenants/{tenantId}", 1, admin_tenant_get},
    {"DELETE", "/v1/admin/tenants/{tenantId}", 1, admin_tenant_delete},
    {"POST", "/v1/admin/tenants/{tenantId}/keys", 2, admin_key_issue},
    {"GET", "/v1/admin/tenants/{tenantId}/keys", 2, admin_key_list},
    {"DELETE", "/v1/admin/tenants/{tenantId}/keys/{keyId}", 3, admin_key_revoke},
};

static void dispatch(cqrs_http_req_t *req, void *ctx) {
  admin_path_t path;
  int parts = admin_path_split(cqrs_http_req_tail(req), &path);
  const char *method = cqrs_http_req_method(req);
  if (strcmp(method, "HEAD") == 0) method = "GET";
  for (size_t i = 0; parts && i < sizeof subroutes / sizeof subroutes[0]; i++) {
    if (subroutes[i].parts == parts && strcmp(subroutes[i].method, method) == 0) {
      subroutes[i].cb(req, ctx, &path);
      return;
    }
  }
  /* Authenticate before saying anything about a path: a 404 for a tenant
   * that cannot exist must not be had without a credential. */
  if (admin_gate_platform(req, ctx, NULL)) cqrs_http_reply_error(req, 404, "no such resource", NULL);
}

/* Paths under /v1/admin/tenants/ no route serves, or a method they do not
 * take: authenticated first too, then 404, or 405 with Allow. */
static void fallback(cqrs_http_req_t *req, void *ctx) {
  if (!admin_gate_platform(req, ctx, NULL)) return;
  if (*cqrs_http_req_allow(req))
    cqrs_http_reply_not_allowed(req);
  else
    cqrs_http_reply_error(req, 404, "no such resource", NULL);
}

void admin_routes(cqrs_http_server_t *http, admin_ctx_t *ctx) {
  admin_replay_routes(http, ctx);
  admin_projection_routes(http, ctx);
  admin_dlq_routes(http, ctx);
  admin_audit_routes(http, ctx);
  cqrs_http_server_route(http, "POST", "/v1/admin/tenants", "/v1/admin/tenants", admin_tenant_create, ctx);
  cqrs_http_server_route(http, "GET", "/v1/admin/tenants", "/v1/admin/tenants", admin_tenant_list, ctx);
  for (size_t i = 0; i < sizeof subroutes / sizeof subroutes[0]; i++)
    cqrs_http_server_route(http, subroutes[i].method, subroutes[i].path, "/v1/admin/tenants/{tenantId}/...",
                           dispatch, ctx);
  cqrs_http_server_fallback(http, "/v1/admin/tenants/", "/v1/admin/tenants/{tenantId}/...", fallback, ctx);
  admin_schema_routes(http, ctx);
}
