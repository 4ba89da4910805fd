/* Tenant lifecycle: POST/GET /v1/admin/tenants, GET/DELETE
 * /v1/admin/tenants/{t}. Platform administrators only. A deleted tenant stays
 * listed (state "deleted") and its id is never given out again: its events
 * and keys still name it. */
#include "../routes.h"

#include "cqrs/json.h"
#include "cqrs/util.h"

#include <stdlib.h>
#include <string.h>

static int tenant_cmp(const void *key, const void *rec) {
  return strcmp(key, ((const cqrs_tenant_rec_t *)rec)->tenant);
}

bool admin_tenant_find(cqrs_registry_t *reg, const char *t, cqrs_tenant_rec_t *out) {
  size_t n;
  cqrs_tenant_rec_t *all = cqrs_registry_tenants(reg, &n);
  const cqrs_tenant_rec_t *r = all ? bsearch(t, all, n, sizeof *all, tenant_cmp) : NULL;
  if (r) *out = *r;
  free(all);
  return r != NULL;
}

/* What a tenant write decides on, and the record it leaves. */
typedef struct {
  const char *tenant;
  cqrs_tenant_rec_t result;
  bool wrote; /* false when the tenant was already as asked */
} tenant_op_t;

static bool to_record(const cqrs_tenant_rec_t *r, admin_record_t *out) {
  out->key = cqrs_control_tenant_key(r->tenant);
  out->value = cqrs_control_tenant_json(r, &out->value_len);
  return out->key && out->value;
}

static bool decide_create(cqrs_registry_t *reg, void *ctx, admin_record_t *out, cqrs_error_t *err) {
  tenant_op_t *op = ctx;
  switch (cqrs_registry_tenant_state(reg, op->tenant)) {
  case CQRS_TENANT_ACTIVE:
    cqrs_error_set(err, CQRS_ERR_CONFLICT, "tenantId", "tenant %s already exists", op->tenant);
    return false;
  case CQRS_TENANT_DELETED:
    cqrs_error_set(err, CQRS_ERR_CONFLICT, "tenantId",
                   "tenant %s was deleted; a deleted tenant's id cannot be used again", op->tenant);
    return false;
  case CQRS_TENANT_UNKNOWN:
    break;
  }
  memset(&op->result, 0, sizeof op->result);
  snprintf(op->result.tenant, sizeof op->result.tenant, "%s", op->tenant);
  op->result.state = CQRS_TENANT_ACTIVE;
  cqrs_time_now_rfc3339(op->result.created_at);
  if (!to_record(&op->result, out)) {
    cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "out of memory");
    return false;
  }
  return true;
}

static bool decide_delete(cqrs_registry_t *reg, void *ctx, admin_record_t *out, cqrs_error_t *err) {
  tenant_op_t *op = ctx;
  if (!admin_tenant_find(reg, op->tenant, &op->result)) {
    cqrs_error_set(err, CQRS_ERR_NOT_FOUND, NULL, "no such tenant");
    return false;
  }
  if (op->result.state == CQRS_TENANT_DELETED) return true; /* deleting again changes nothing */
  op->wrote = true;
  op->result.state = CQRS_TENANT_DELETED;
  cqrs_time_now_rfc3339(op->result.deleted_at);
  if (!to_record(&op->result, out)) {
    cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "out of memory");
    return false;
  }
  return true;
}

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
  if (!admin_gate_platform(req, ctx)) return;
  cqrs_error_t err = {0};
  size_t len;
  const char *body = cqrs_http_req_body(req, &len);
  bson_t *doc = cqrs_json_parse(body, len, &err);
  const char *t = NULL;
  if (!doc || !cqrs_json_get_string(doc, "tenantId", NULL, true, 0, &t, &err) || !cqrs_tenant_valid(t, &err)) {
    if (doc && !err.field[0]) snprintf(err.field, sizeof err.field, "tenantId");
    cqrs_http_reply_cqrs_error(req, &err);
    if (doc) bson_destroy(doc);
    return;
  }
  tenant_op_t op = {.tenant = t};
  if (admin_writer_apply(ctx->writer, decide_create, &op, &err)) {
    char location[64];
    snprintf(location, sizeof location, "/v1/admin/tenants/%s", op.result.tenant);
    cqrs_http_req_add_header(req, "Location", location);
    cqrs_log_info(ctx->log, "tenant created", "tenant", op.result.tenant, NULL);
    reply_tenant(req, 201, &op.result);
  } else {
    admin_reply_error(req, &err);
  }
  bson_destroy(doc);
}

void admin_tenant_list(cqrs_http_req_t *req, void *arg) {
  admin_ctx_t *ctx = arg;
  if (!admin_gate_platform(req, ctx)) return;
  size_t n;
  cqrs_tenant_rec_t *all = cqrs_registry_tenants(ctx->reg, &n);
  bson_string_t *out = bson_string_new("{\"items\":[");
  for (size_t i = 0; i < n; i++) {
    char *json = cqrs_control_tenant_json(&all[i], NULL);
    if (i) bson_string_append_c(out, ',');
    bson_string_append(out, json);
    free(json);
  }
  bson_string_append(out, "]}");
  cqrs_http_reply_json(req, 200, out->str, out->len);
  bson_string_free(out, true);
  free(all);
}

void admin_tenant_get(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path) {
  if (!admin_gate_platform(req, ctx)) return;
  cqrs_tenant_rec_t r;
  if (admin_tenant_find(ctx->reg, path->tenant, &r))
    reply_tenant(req, 200, &r);
  else
    admin_reply_no_tenant(req);
}

void admin_tenant_delete(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path) {
  if (!admin_gate_platform(req, ctx)) return;
  cqrs_error_t err = {0};
  tenant_op_t op = {.tenant = path->tenant};
  if (admin_writer_apply(ctx->writer, decide_delete, &op, &err)) {
    if (op.wrote) cqrs_log_info(ctx->log, "tenant marked deleted", "tenant", op.result.tenant, NULL);
    reply_tenant(req, 200, &op.result);
  } else if (err.code == CQRS_ERR_NOT_FOUND) {
    admin_reply_no_tenant(req);
  } else {
    admin_reply_error(req, &err);
  }
}
