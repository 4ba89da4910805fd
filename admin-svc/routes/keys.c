/* API keys of a tenant: POST/GET /v1/admin/tenants/{t}/keys and DELETE
 * /v1/admin/tenants/{t}/keys/{keyId}. The key itself appears once, in the
 * answer to its POST; only its hash is written (cqrs/control.h). */
#include "../decide.h"
#include "../routes.h"

#include "cqrs/json.h"
#include "cqrs/util.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply_key(cqrs_http_req_t *req, int status, const cqrs_apikey_rec_t *rec, const char *key) {
  size_t len;
  char *json = admin_key_json(rec, key, &len);
  cqrs_http_reply_json(req, status, json, len);
  if (key) OPENSSL_cleanse(json, len); /* it held the key */
  bson_free(json);
}

void admin_key_issue(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path) {
  admin_caller_t caller;
  if (!admin_gate_tenant_admin(req, ctx, path->tenant, &caller)) return;
  cqrs_error_t err = {0};
  size_t len;
  const char *body = cqrs_http_req_body(req, &len);
  bson_t *doc = cqrs_json_parse(body, len, &err);
  char now[32];
  cqrs_time_now_rfc3339(now);
  admin_key_op_t op = {.tenant = path->tenant, .now = now};
  static const char *const members[] = {"scopes", NULL};
  if (!doc || !cqrs_json_members_known(doc, members, &err) || !admin_scopes_parse(doc, &op.scopes, &err)) {
    cqrs_http_reply_cqrs_error(req, &err);
    admin_audit(ctx, &caller, "key.issue", path->tenant, 400);
  } else if (!admin_writer_apply(ctx->writer, admin_decide_key_issue, &op, &err)) {
    if (err.code == CQRS_ERR_NOT_FOUND)
      admin_reply_no_tenant(req);
    else
      admin_reply_error(req, &err);
    admin_audit(ctx, &caller, "key.issue", path->tenant, err.code == CQRS_ERR_NOT_FOUND ? 404 : 503);
  } else {
    cqrs_log_info(ctx->log, "API key issued", "tenant", op.tenant, "keyId", op.result.key_id, NULL);
    char location[96];
    snprintf(location, sizeof location, "/v1/admin/tenants/%s/keys/%s", op.tenant, op.result.key_id);
    cqrs_http_req_add_header(req, "Location", location);
    cqrs_http_req_add_header(req, "Cache-Control", "no-store"); /* the answer holds a secret */
    reply_key(req, 201, &op.result, op.key);
    char target[96]; /* the key's id, never the key */
    snprintf(target, sizeof target, "%s/%s", op.tenant, op.result.key_id);
    admin_audit(ctx, &caller, "key.issue", target, 201);
  }
  OPENSSL_cleanse(op.key, sizeof op.key);
  if (doc) bson_destroy(doc);
}

void admin_key_list(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path) {
  if (!admin_gate_tenant_admin(req, ctx, path->tenant, NULL)) return;
  if (cqrs_registry_tenant_state(ctx->reg, path->tenant) == CQRS_TENANT_UNKNOWN) {
    admin_reply_no_tenant(req);
    return;
  }
  size_t n;
  cqrs_apikey_rec_t *keys = cqrs_registry_apikeys(ctx->reg, path->tenant, &n);
  bson_string_t *out = bson_string_new("{\"items\":[");
  for (size_t i = 0; i < n; i++) {
    char *json = admin_key_json(&keys[i], NULL, NULL);
    if (i) bson_string_append_c(out, ',');
    bson_string_append(out, json);
    bson_free(json);
  }
  bson_string_append(out, "]}");
  cqrs_http_reply_json(req, 200, out->str, out->len);
  bson_string_free(out, true);
  free(keys);
}

void admin_key_revoke(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path) {
  admin_caller_t caller;
  if (!admin_gate_tenant_admin(req, ctx, path->tenant, &caller)) return;
  char target[96];
  snprintf(target, sizeof target, "%s/%s", path->tenant, path->key_id);
  cqrs_error_t err = {0};
  char now[32];
  cqrs_time_now_rfc3339(now);
  admin_key_op_t op = {.tenant = path->tenant, .key_id = path->key_id, .now = now};
  if (admin_writer_apply(ctx->writer, admin_decide_key_revoke, &op, &err)) {
    if (op.wrote) cqrs_log_info(ctx->log, "API key revoked", "tenant", op.tenant, "keyId", op.result.key_id, NULL);
    reply_key(req, 200, &op.result, NULL);
    admin_audit(ctx, &caller, "key.revoke", target, 200);
  } else if (err.code == CQRS_ERR_NOT_FOUND) {
    cqrs_http_reply_error(req, 404, "no such key", NULL);
    admin_audit(ctx, &caller, "key.revoke", target, 404);
  } else {
    admin_reply_error(req, &err);
    admin_audit(ctx, &caller, "key.revoke", target, 503);
  }
}
