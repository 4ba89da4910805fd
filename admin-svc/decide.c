/* The decisions of admin writes, and the JSON of a key as the API shows it. */
#include "decide.h"

#include "cqrs/json.h"

#include <stdio.h>
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

static bool oom(cqrs_error_t *err) {
  cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "out of memory");
  return false;
}

static bool tenant_record(const cqrs_tenant_rec_t *r, admin_record_t *out, cqrs_error_t *err) {
  out->key = cqrs_control_tenant_key(r->tenant);
  out->value = cqrs_control_tenant_json(r, &out->value_len);
  return (out->key && out->value) || oom(err);
}

static bool key_record(const cqrs_apikey_rec_t *r, admin_record_t *out, cqrs_error_t *err) {
  out->key = cqrs_control_apikey_key(r->key_id);
  out->value = cqrs_control_apikey_json(r, &out->value_len);
  return (out->key && out->value) || oom(err);
}

bool admin_decide_tenant_create(cqrs_registry_t *reg, void *ctx, admin_record_t *out, cqrs_error_t *err) {
  admin_tenant_op_t *op = ctx;
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
  snprintf(op->result.created_at, sizeof op->result.created_at, "%s", op->now);
  op->wrote = true;
  return tenant_record(&op->result, out, err);
}

bool admin_decide_tenant_delete(cqrs_registry_t *reg, void *ctx, admin_record_t *out, cqrs_error_t *err) {
  admin_tenant_op_t *op = ctx;
  if (!admin_tenant_find(reg, op->tenant, &op->result)) {
    cqrs_error_set(err, CQRS_ERR_NOT_FOUND, NULL, "no such tenant");
    return false;
  }
  if (op->result.state == CQRS_TENANT_DELETED) return true; /* deleting again changes nothing */
  op->result.state = CQRS_TENANT_DELETED;
  snprintf(op->result.deleted_at, sizeof op->result.deleted_at, "%s", op->now);
  op->wrote = true;
  return tenant_record(&op->result, out, err);
}

bool admin_decide_key_issue(cqrs_registry_t *reg, void *ctx, admin_record_t *out, cqrs_error_t *err) {
  admin_key_op_t *op = ctx;
  if (cqrs_registry_tenant_state(reg, op->tenant) != CQRS_TENANT_ACTIVE) {
    cqrs_error_set(err, CQRS_ERR_NOT_FOUND, NULL, "no such tenant");
    return false;
  }
  if (!cqrs_apikey_new(op->tenant, op->scopes & ADMIN_KEY_SCOPES, op->now, &op->result, op->key, err))
    return false;
  op->wrote = true;
  return key_record(&op->result, out, err);
}

bool admin_decide_key_revoke(cqrs_registry_t *reg, void *ctx, admin_record_t *out, cqrs_error_t *err) {
  admin_key_op_t *op = ctx;
  if (!cqrs_registry_apikey(reg, op->key_id, &op->result) || strcmp(op->result.tenant, op->tenant) != 0) {
    cqrs_error_set(err, CQRS_ERR_NOT_FOUND, NULL, "no such key");
    return false;
  }
  if (op->result.revoked) return true; /* revoking again changes nothing */
  op->result.revoked = true;
  snprintf(op->result.revoked_at, sizeof op->result.revoked_at, "%s", op->now);
  op->wrote = true;
  return key_record(&op->result, out, err);
}

bool admin_scopes_parse(const bson_t *body, unsigned *scopes, cqrs_error_t *err) {
  bson_t arr;
  bool present;
  bson_iter_t it;
  if (!cqrs_json_get_array(body, "scopes", NULL, true, &arr, &present, err)) return false;
  *scopes = 0;
  if (bson_iter_init(&it, &arr)) {
    while (bson_iter_next(&it)) {
      const char *name = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
      /* One name per member: "queries:read admin" in one string is not two scopes. */
      unsigned bit = name && !strchr(name, ' ') ? cqrs_scopes_parse(name) : 0;
      if (bit == CQRS_SCOPE_PLATFORM) {
        cqrs_error_set(err, CQRS_ERR_INVALID, "scopes",
                       "an API key cannot carry platform:admin (platform administrators use a JWT)");
        return false;
      }
      if (!(bit & ADMIN_KEY_SCOPES)) {
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

char *admin_key_json(const cqrs_apikey_rec_t *rec, const char *key, size_t *len) {
  bson_t doc = BSON_INITIALIZER, arr;
  BSON_APPEND_UTF8(&doc, "keyId", rec->key_id);
  if (key) BSON_APPEND_UTF8(&doc, "key", key);
  BSON_APPEND_UTF8(&doc, "tenantId", rec->tenant);
  BSON_APPEND_ARRAY_BEGIN(&doc, "scopes", &arr);
  unsigned n = 0;
  for (unsigned bit = 1; bit <= ADMIN_KEY_SCOPES; bit <<= 1) {
    if (!(rec->scopes & ADMIN_KEY_SCOPES & bit)) continue;
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
