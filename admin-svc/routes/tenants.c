/* Tenant lifecycle: POST/GET /v1/admin/tenants, GET/DELETE
 * /v1/admin/tenants/{t}. Platform administrators only. A deleted tenant stays
 * listed (state "deleted") and its id is never given out again: its events
 * and keys still name it. */
#include "../decide.h"
#include "../routes.h"

#include "cqrs/json.h"
#include "cqrs/util.h"

#include <stdlib.h>
#include <string.h>

static void reply_tenant(cqrs_http_req_t *req, int status, const cqrs_tenant_rec_t *r) {
  size_t len;
  char *json = cqrs_control_tenant_json(r, &len); /* the record is the answer: it holds no secret */
  if (!json) {
    cqrs_http_reply_error(req, 500, "out of memory", NULL);
    return;
  }
  cqrs_http_reply_json(req, status, json, len);
  free(json);
}

void admin_tenant_create(cqrs_http_req_t *req, void *arg) {
  admin_ctx_t *ctx = arg;
  admin_caller_t caller;
  if (!admin_gate_platform(req, ctx, &caller)) return;
  cqrs_error_t err = {0};
  size_t len;
  const char *body = cqrs_http_req_body(req, &len);
  bson_t *doc = cqrs_json_parse(body, len, &err);
  const char *t = NULL;
  static const char *const members[] = {"tenantId", NULL};
  if (!doc || !cqrs_json_members_known(doc, members, &err) ||
      !cqrs_json_get_string(doc, "tenantId", NULL, true, 0, &t, &err) || !cqrs_tenant_valid(t, &err)) {
    if (doc && !err.field[0]) snprintf(err.field, sizeof err.field, "tenantId");
    cqrs_http_reply_cqrs_error(req, &err);
    admin_audit(ctx, &caller, "tenant.create", t ? t : "", 400);
    if (doc) bson_destroy(doc);
    return;
  }
  char now[32];
  cqrs_time_now_rfc3339(now);
  admin_tenant_op_t op = {.tenant = t, .now = now};
  if (admin_writer_apply(ctx->writer, admin_decide_tenant_create, &op, &err)) {
    char location[64];
    snprintf(location, sizeof location, "/v1/admin/tenants/%s", op.result.tenant);
    cqrs_http_req_add_header(req, "Location", location);
    cqrs_log_info(ctx->log, "tenant created", "tenant", op.result.tenant, NULL);
    reply_tenant(req, 201, &op.result);
    admin_audit(ctx, &caller, "tenant.create", t, 201);
  } else {
    admin_reply_error(req, &err);
    admin_audit(ctx, &caller, "tenant.create", t, err.code == CQRS_ERR_CONFLICT ? 409 : 503);
  }
  bson_destroy(doc);
}

void admin_tenant_list(cqrs_http_req_t *req, void *arg) {
  admin_ctx_t *ctx = arg;
  if (!admin_gate_platform(req, ctx, NULL)) return;
  size_t n;
  cqrs_tenant_rec_t *all = cqrs_registry_tenants(ctx->reg, &n);
  bson_string_t *out = bson_string_new("{\"items\":[");
  for (size_t i = 0; i < n; i++) {
    char *json = cqrs_control_tenant_json(&all[i], NULL);
    if (i) bson_string_append_c(out, ',');
    if (json) bson_string_append(out, json);
    free(json);
  }
  bson_string_append(out, "]}");
  cqrs_http_reply_json(req, 200, out->str, out->len);
  bson_string_free(out, true);
  free(all);
}

void admin_tenant_get(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path) {
  if (!admin_gate_platform(req, ctx, NULL)) return;
  cqrs_tenant_rec_t r;
  if (admin_tenant_find(ctx->reg, path->tenant, &r))
    reply_tenant(req, 200, &r);
  else
    admin_reply_no_tenant(req);
}

void admin_tenant_delete(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path) {
  admin_caller_t caller;
  if (!admin_gate_platform(req, ctx, &caller)) return;
  cqrs_error_t err = {0};
  char now[32];
  cqrs_time_now_rfc3339(now);
  admin_tenant_op_t op = {.tenant = path->tenant, .now = now};
  if (admin_writer_apply(ctx->writer, admin_decide_tenant_delete, &op, &err)) {
    if (op.wrote) cqrs_log_info(ctx->log, "tenant marked deleted", "tenant", op.result.tenant, NULL);
    reply_tenant(req, 200, &op.result);
    admin_audit(ctx, &caller, "tenant.delete", path->tenant, 200);
  } else if (err.code == CQRS_ERR_NOT_FOUND) {
    admin_reply_no_tenant(req);
    admin_audit(ctx, &caller, "tenant.delete", path->tenant, 404);
  } else {
    admin_reply_error(req, &err);
    admin_audit(ctx, &caller, "tenant.delete", path->tenant, 503);
  }
}
