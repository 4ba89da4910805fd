/* API keys of a tenant: POST/GET /v1/admin/tenants/{t}/keys and DELETE
 * /v1/admin/tenants/{t}/keys/{keyId}. The key itself appears once, in the
 * answer to its POST; only its hash is written (cqrs/control.h). */
#include "../routes.h"

#include "cqrs/json.h"
#include "cqrs/util.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define TENANT_SCOPES (CQRS_SCOPE_COMMANDS_WRITE | CQRS_SCOPE_QUERIES_READ | CQRS_SCOPE_ADMIN)

/* The scope names of body's "scopes" array as bits: at least one, each a
 * tenant scope. False with a 400 err naming "scopes" otherwise. */
static bool parse_scopes(const bson_t *body, unsigned *scopes, cqrs_error_t *err) {
  bson_t arr;
  bool present;
  bson_iter_t it;
  if (!cqrs_json_get_array(body, "scopes", NULL, true, &arr, &present, err)) return false;
  *scopes = 0;
  if (bson_iter_init(&it, &arr)) {
    while (bson_iter_next(&it)) {
      const char *name = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
      unsigned bit = name && !strchr(name, ' ') ? cqrs_scopes_parse(name) : 0;
      if (bit == CQRS_SCOPE_PLATFORM) {
        cqrs_error_set(err, CQRS_ERR_INVALID, "scopes",
                       "an API key cannot carry platform:admin (platform administrators use a JWT)");
        return false;
      }
      if (!(bit & TENANT_SCOPES)) {
        cqrs_error_set(err, CQRS_ERR_INVALID, "scopes",
                       "scopes holds an unknown scope; allowed: commands:write, queries:read, admin");
        return false;
      }
      *scopes |= bit;
    }
  }
  if (!*scopes) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "scopes", "scopes must name at least one scope");
    return false;
  }
  return true;
}

/* rec as the API shows it (no hash); with key, the key too (its issue answer). */
static char *key_json(const cqrs_apikey_rec_t *rec, const char *key, size_t *len) {
  bson_t doc = BSON_INITIALIZER, arr;
  BSON_APPEND_UTF8(&doc, "keyId", rec->key_id);
  if (key) BSON_APPEND_UTF8(&doc, "key", key);
  BSON_APPEND_UTF8(&doc, "tenantId", rec->tenant);
  BSON_APPEND_ARRAY_BEGIN(&doc, "scopes", &arr);
  unsigned n = 0;
  for (unsigned bit = 1; bit <= TENANT_SCOPES; bit <<= 1) {
    if (!(rec->scopes & TENANT_SCOPES & bit)) continue;
    char idx[16];
    const char *k;
    bson_uint32_to_string(n++, &k, idx, sizeof idx);
    bson_append_utf8(&arr, k, -1, cqrs_scope_name(bit), -1);
  }
  bson_append_array_end(&doc, &arr);
  BSON_APPEND_UTF8(&doc, "createdAt", rec->created_at);
  if (!key) {
    BSON_APPEND_BOOL(&doc, "revoked", rec->revoked);
    if (rec->revoked) BSON_APPEND_UTF8(&doc, "revokedAt", rec->revoked_at);
  }
  char *json = cqrs_json_write(&doc, len);
  bson_destroy(&doc);
  return json;
}

static void reply_key(cqrs_http_req_t *req, int status, const cqrs_apikey_rec_t *rec, const char *key) {
  size_t len;
  char *json = key_json(rec, key, &len);
  cqrs_http_reply_json(req, status, json, len);
  bson_free(json);
}

static bool to_record(const cqrs_apikey_rec_t *r, admin_record_t *out, cqrs_error_t *err) {
  out->key = cqrs_control_apikey_key(r->key_id);
  out->value = cqrs_control_apikey_json(r, &out->value_len);
  if (out->key && out->value) return true;
  cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "out of memory");
  return false;
}

typedef struct {
  const char *tenant;
  const char *key_id; /* revoke */
  unsigned scopes;    /* issue */
  cqrs_apikey_rec_t result;
  char key[CQRS_API_KEY_LEN + 1]; /* issue: the key, for its one answer */
  bool wrote;                     /* revoke: false when it was revoked already */
} key_op_t;

static bool tenant_active(cqrs_registry_t *reg, const char *t, cqrs_error_t *err) {
  if (cqrs_registry_tenant_state(reg, t) == CQRS_TENANT_ACTIVE) return true;
  cqrs_error_set(err, CQRS_ERR_NOT_FOUND, NULL, "no such tenant");
  return false;
}

static bool decide_issue(cqrs_registry_t *reg, void *ctx, admin_record_t *out, cqrs_error_t *err) {
  key_op_t *op = ctx;
  char now[32];
  cqrs_time_now_rfc3339(now);
  return tenant_active(reg, op->tenant, err) &&
         cqrs_apikey_new(op->tenant, op->scopes, now, &op->result, op->key, err) && to_record(&op->result, out, err);
}

static bool decide_revoke(cqrs_registry_t *reg, void *ctx, admin_record_t *out, cqrs_error_t *err) {
  key_op_t *op = ctx;
  if (!cqrs_registry_apikey(reg, op->key_id, &op->result) || strcmp(op->result.tenant, op->tenant) != 0) {
    cqrs_error_set(err, CQRS_ERR_NOT_FOUND, NULL, "no such key");
    return false;
  }
  if (op->result.revoked) return true; /* revoking again changes nothing */
  op->wrote = true;
  op->result.revoked = true;
  cqrs_time_now_rfc3339(op->result.revoked_at);
  return to_record(&op->result, out, err);
}

void admin_key_issue(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path) {
  if (!admin_gate_tenant_admin(req, ctx, path->tenant)) return;
  cqrs_error_t err = {0};
  size_t len;
  const char *body = cqrs_http_req_body(req, &len);
  bson_t *doc = cqrs_json_parse(body, len, &err);
  key_op_t op = {.tenant = path->tenant};
  if (!doc || !parse_scopes(doc, &op.scopes, &err)) {
    cqrs_http_reply_cqrs_error(req, &err);
  } else if (!admin_writer_apply(ctx->writer, decide_issue, &op, &err)) {
    if (err.code == CQRS_ERR_NOT_FOUND)
      admin_reply_no_tenant(req);
    else
      admin_reply_error(req, &err);
  } else {
    cqrs_log_info(ctx->log, "API key issued", "tenant", op.tenant, "keyId", op.result.key_id, NULL);
    char location[96];
    snprintf(location, sizeof location, "/v1/admin/tenants/%s/keys/%s", op.tenant, op.result.key_id);
    cqrs_http_req_add_header(req, "Location", location);
    cqrs_http_req_add_header(req, "Cache-Control", "no-store"); /* the answer holds a secret */
    reply_key(req, 201, &op.result, op.key);
  }
  OPENSSL_cleanse(op.key, sizeof op.key);
  if (doc) bson_destroy(doc);
}

void admin_key_list(cqrs_http_req_t *req, admin_ctx_t *ctx, const admin_path_t *path) {
  if (!admin_gate_tenant_admin(req, ctx, path->tenant)) return;
  if (cqrs_registry_tenant_state(ctx->reg, path->tenant) == CQRS_TENANT_UNKNOWN) {
    admin_reply_no_tenant(req);
    return;
  }
  size_t n;
  cqrs_apikey_rec_t *keys = cqrs_registry_apikeys(ctx->reg, path->tenant, &n);
  bson_string_t *out = bson_string_new("{\"items\":[");
  for (size_t i = 0; i < n; i++) {
    char *json = key_json(&keys[i], NULL, NULL);
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
  if (!admin_gate_tenant_admin(req, ctx, path->tenant)) return;
  cqrs_error_t err = {0};
  key_op_t op = {.tenant = path->tenant, .key_id = path->key_id};
  if (admin_writer_apply(ctx->writer, decide_revoke, &op, &err)) {
    if (op.wrote) cqrs_log_info(ctx->log, "API key revoked", "tenant", op.tenant, "keyId", op.result.key_id, NULL);
    reply_key(req, 200, &op.result, NULL);
  } else if (err.code == CQRS_ERR_NOT_FOUND) {
    cqrs_http_reply_error(req, 404, "no such key", NULL);
  } else {
    admin_reply_error(req, &err);
  }
}
