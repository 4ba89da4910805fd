/* Control records (JSON in and out) and the registry of tenants and API keys
 * they build. Pure apart from the registry's lock. */
#include "cqrs/alloc.h"
#include "cqrs/control.h"

#include "cqrs/auth.h"
#include "cqrs/json.h"
#include "cqrs/map.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TENANT_PREFIX "tenant/"
#define APIKEY_PREFIX "apikey/"
#define MAX_KEY_LEN 64 /* longer than any valid record key */

/* The scopes a key record may grant: a tenant's. A platform administrator is
 * a JWT, never an API key. */
#define RECORD_SCOPES (CQRS_SCOPE_COMMANDS_WRITE | CQRS_SCOPE_QUERIES_READ | CQRS_SCOPE_ADMIN)

static const char *const state_names[] = {[CQRS_TENANT_ACTIVE] = "active", [CQRS_TENANT_DELETED] = "deleted"};

/* Records out --------------------------------------------------------- */

static char *prefixed(const char *prefix, const char *id) {
  size_t len = strlen(prefix) + strlen(id) + 1;
  char *s = cqrs_xmalloc(len);
  snprintf(s, len, "%s%s", prefix, id);
  return s;
}

char *cqrs_control_tenant_key(const char *tenant) { return prefixed(TENANT_PREFIX, tenant); }
char *cqrs_control_apikey_key(const char *key_id) { return prefixed(APIKEY_PREFIX, key_id); }

/* doc as JSON in a malloc'd string (the header promises free(), not bson_free). */
static char *to_json(const bson_t *doc, size_t *len) {
  size_t n = 0;
  char *json = cqrs_json_write(doc, &n);
  char *out = json ? cqrs_xmalloc(n + 1) : NULL;
  if (out) {
    memcpy(out, json, n + 1);
    if (len) *len = n;
  }
  bson_free(json);
  return out;
}

char *cqrs_control_tenant_json(const cqrs_tenant_rec_t *r, size_t *len) {
  if (r->state != CQRS_TENANT_ACTIVE && r->state != CQRS_TENANT_DELETED) return NULL;
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "tenantId", r->tenant);
  BSON_APPEND_UTF8(&doc, "state", state_names[r->state]);
  BSON_APPEND_UTF8(&doc, "createdAt", r->created_at);
  if (r->state == CQRS_TENANT_DELETED && r->deleted_at[0]) BSON_APPEND_UTF8(&doc, "deletedAt", r->deleted_at);
  char *out = to_json(&doc, len);
  bson_destroy(&doc);
  return out;
}

char *cqrs_control_apikey_json(const cqrs_apikey_rec_t *r, size_t *len) {
  static const char hex[] = "0123456789abcdef";
  char sha[65];
  for (int i = 0; i < 32; i++) {
    sha[2 * i] = hex[r->sha256[i] >> 4];
    sha[2 * i + 1] = hex[r->sha256[i] & 15];
  }
  sha[64] = '\0';
  bson_t doc = BSON_INITIALIZER, arr;
  BSON_APPEND_UTF8(&doc, "keyId", r->key_id);
  BSON_APPEND_UTF8(&doc, "tenantId", r->tenant);
  BSON_APPEND_ARRAY_BEGIN(&doc, "scopes", &arr);
  unsigned n = 0;
  for (unsigned bit = 1; bit <= RECORD_SCOPES; bit <<= 1) {
    if (!(r->scopes & RECORD_SCOPES & bit)) continue;
    char idx[16];
    const char *k;
    bson_uint32_to_string(n++, &k, idx, sizeof idx);
    bson_append_utf8(&arr, k, -1, cqrs_scope_name(bit), -1);
  }
  bson_append_array_end(&doc, &arr);
  BSON_APPEND_UTF8(&doc, "sha256", sha);
  BSON_APPEND_UTF8(&doc, "createdAt", r->created_at);
  BSON_APPEND_BOOL(&doc, "revoked", r->revoked);
  if (r->revoked && r->revoked_at[0]) BSON_APPEND_UTF8(&doc, "revokedAt", r->revoked_at);
  char *out = to_json(&doc, len);
  bson_destroy(&doc);
  return out;
}

/* Records in ---------------------------------------------------------- */

static bool copy_string(const bson_t *doc, const char *key, bool required, char *out, size_t size,
                        cqrs_error_t *err) {
  const char *s = NULL;
  if (!cqrs_json_get_string(doc, key, NULL, required, 0, &s, err)) return false;
  if (!s) {
    out[0] = '\0';
    return true;
  }
  if (strlen(s) >= size) {
    cqrs_error_set(err, CQRS_ERR_INVALID, key, "%s is too long", key);
    return false;
  }
  strcpy(out, s);
  return true;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

static bool is_key_id(const char *s) {
  if (strlen(s) != CQRS_KEY_ID_LEN) return false;
  for (const char *p = s; *p; p++)
    if (hex_digit(*p) < 0) return false;
  return true;
}

static bool decode_tenant(const bson_t *doc, const char *id, cqrs_tenant_rec_t *r, cqrs_error_t *err) {
  char state[16];
  memset(r, 0, sizeof *r);
  if (!copy_string(doc, "tenantId", true, r->tenant, sizeof r->tenant, err) ||
      !copy_string(doc, "state", true, state, sizeof state, err) ||
      !copy_string(doc, "createdAt", true, r->created_at, sizeof r->created_at, err) ||
      !copy_string(doc, "deletedAt", false, r->deleted_at, sizeof r->deleted_at, err))
    return false;
  if (strcmp(r->tenant, id) != 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "tenantId", "tenantId differs from the record key");
    return false;
  }
  if (strcmp(state, "active") == 0) {
    r->state = CQRS_TENANT_ACTIVE;
  } else if (strcmp(state, "deleted") == 0) {
    r->state = CQRS_TENANT_DELETED;
  } else {
    cqrs_error_set(err, CQRS_ERR_INVALID, "state", "state is neither active nor deleted");
    return false;
  }
  /* Only a deleted tenant has a deletion time: the record's JSON writes none
   * for an active one, so keeping it would make the registry hold what no
   * record of it says (found by tests/fuzz/fuzz_control). */
  if (r->state != CQRS_TENANT_DELETED) memset(r->deleted_at, 0, sizeof r->deleted_at);
  return true;
}

static bool decode_scopes(const bson_t *doc, unsigned *out, cqrs_error_t *err) {
  bson_t arr;
  bool present;
  if (!cqrs_json_get_array(doc, "scopes", NULL, true, &arr, &present, err)) return false;
  bson_iter_t it;
  *out = 0;
  if (!bson_iter_init(&it, &arr)) return true;
  while (bson_iter_next(&it)) {
    if (!BSON_ITER_HOLDS_UTF8(&it)) {
      cqrs_error_set(err, CQRS_ERR_INVALID, "scopes", "scopes holds something other than a string");
      return false;
    }
    /* A name this version does not know (a newer admin-svc's) grants nothing. */
    const char *name = bson_iter_utf8(&it, NULL);
    if (!strchr(name, ' ')) *out |= cqrs_scopes_parse(name) & RECORD_SCOPES;
  }
  return true;
}

static bool decode_apikey(const bson_t *doc, const char *id, cqrs_apikey_rec_t *r, cqrs_error_t *err) {
  char sha[65];
  memset(r, 0, sizeof *r);
  if (!copy_string(doc, "keyId", true, r->key_id, sizeof r->key_id, err) ||
      !copy_string(doc, "tenantId", true, r->tenant, sizeof r->tenant, err) ||
      !copy_string(doc, "sha256", true, sha, sizeof sha, err) ||
      !copy_string(doc, "createdAt", true, r->created_at, sizeof r->created_at, err) ||
      !copy_string(doc, "revokedAt", false, r->revoked_at, sizeof r->revoked_at, err) ||
      !decode_scopes(doc, &r->scopes, err))
    return false;
  if (strcmp(r->key_id, id) != 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "keyId", "keyId differs from the record key");
    return false;
  }
  if (!cqrs_tenant_valid(r->tenant, err)) return false;
  if (strlen(sha) != 64) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "sha256", "sha256 is not 64 hex digits");
    return false;
  }
  for (int i = 0; i < 32; i++) {
    int hi = hex_digit(sha[2 * i]), lo = hex_digit(sha[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      cqrs_error_set(err, CQRS_ERR_INVALID, "sha256", "sha256 is not 64 hex digits");
      return false;
    }
    r->sha256[i] = (unsigned char)(hi << 4 | lo);
  }
  bson_iter_t it;
  if (bson_iter_init_find(&it, doc, "revoked")) {
    if (!BSON_ITER_HOLDS_BOOL(&it)) {
      cqrs_error_set(err, CQRS_ERR_INVALID, "revoked", "revoked is not a boolean");
      return false;
    }
    r->revoked = bson_iter_bool(&it);
  }
  if (!r->revoked) memset(r->revoked_at, 0, sizeof r->revoked_at); /* as deletedAt above */
  return true;
}

/* The registry ---------------------------------------------------------- */

struct cqrs_registry {
  pthread_rwlock_t lock;
  cqrs_map_t *tenants; /* tenant id -> cqrs_tenant_rec_t* */
  cqrs_map_t *keys;    /* keyId -> cqrs_apikey_rec_t* */
};

cqrs_registry_t *cqrs_registry_new(void) {
  cqrs_registry_t *reg = cqrs_xcalloc(1, sizeof *reg);
  if (pthread_rwlock_init(&reg->lock, NULL) != 0) {
    free(reg);
    return NULL;
  }
  reg->tenants = cqrs_map_new(free);
  reg->keys = cqrs_map_new(free);
  return reg;
}

void cqrs_registry_destroy(cqrs_registry_t *reg) {
  if (!reg) return;
  cqrs_map_destroy(reg->tenants);
  cqrs_map_destroy(reg->keys);
  pthread_rwlock_destroy(&reg->lock);
  free(reg);
}

bool cqrs_registry_apply(cqrs_registry_t *reg, const char *key, size_t key_len, const char *value,
                         size_t value_len, cqrs_error_t *err) {
  char k[MAX_KEY_LEN + 1];
  if (!key || key_len > MAX_KEY_LEN || memchr(key, '\0', key_len)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "key", "control record key is not one of ours");
    return false;
  }
  memcpy(k, key, key_len);
  k[key_len] = '\0';
  bool tenant = strncmp(k, TENANT_PREFIX, strlen(TENANT_PREFIX)) == 0;
  bool apikey = !tenant && strncmp(k, APIKEY_PREFIX, strlen(APIKEY_PREFIX)) == 0;
  const char *id = k + strlen(tenant ? TENANT_PREFIX : APIKEY_PREFIX);
  if ((!tenant && !apikey) || (tenant && !cqrs_tenant_valid(id, NULL)) || (apikey && !is_key_id(id))) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "key", "control record key is not one of ours");
    return false;
  }
  void *rec = NULL;
  if (value) {
    bson_t *doc = cqrs_json_parse(value, value_len, err);
    if (!doc) return false;
    rec = tenant ? cqrs_xmalloc(sizeof(cqrs_tenant_rec_t)) : cqrs_xmalloc(sizeof(cqrs_apikey_rec_t));
    bool ok = tenant ? decode_tenant(doc, id, rec, err) : decode_apikey(doc, id, rec, err);
    bson_destroy(doc);
    if (!ok) {
      free(rec);
      return false;
    }
  }
  cqrs_map_t *m = tenant ? reg->tenants : reg->keys;
  pthread_rwlock_wrlock(&reg->lock);
  if (rec)
    cqrs_map_put(m, id, rec);
  else
    cqrs_map_delete(m, id);
  pthread_rwlock_unlock(&reg->lock);
  return true;
}

cqrs_tenant_state_t cqrs_registry_tenant_state(cqrs_registry_t *reg, const char *t) {
  pthread_rwlock_rdlock(&reg->lock);
  const cqrs_tenant_rec_t *r = cqrs_map_get(reg->tenants, t);
  cqrs_tenant_state_t s = r ? r->state : CQRS_TENANT_UNKNOWN;
  pthread_rwlock_unlock(&reg->lock);
  return s;
}

bool cqrs_registry_apikey(cqrs_registry_t *reg, const char *key_id, cqrs_apikey_rec_t *out) {
  pthread_rwlock_rdlock(&reg->lock);
  const cqrs_apikey_rec_t *r = cqrs_map_get(reg->keys, key_id);
  if (r) *out = *r;
  pthread_rwlock_unlock(&reg->lock);
  return r != NULL;
}

/* Collects copies of the records cqrs_map_filter walks (keeping every entry). */
typedef struct {
  char *items;
  size_t n, cap, size;
  const char *tenant; /* key records: only this tenant's */
} collect_t;

static void collect_push(collect_t *c, const void *rec) {
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 16;
    c->items = cqrs_xrealloc(c->items, c->cap * c->size);
  }
  memcpy(c->items + c->n++ * c->size, rec, c->size);
}

static bool collect_tenant(const char *key, void *value, void *ctx) {
  (void)key;
  collect_push(ctx, value);
  return false;
}

static bool collect_apikey(const char *key, void *value, void *ctx) {
  (void)key;
  collect_t *c = ctx;
  const cqrs_apikey_rec_t *r = value;
  if (strcmp(r->tenant, c->tenant) == 0) collect_push(c, value);
  return false;
}

static int tenant_cmp(const void *a, const void *b) {
  return strcmp(((const cqrs_tenant_rec_t *)a)->tenant, ((const cqrs_tenant_rec_t *)b)->tenant);
}

static int apikey_cmp(const void *a, const void *b) {
  return strcmp(((const cqrs_apikey_rec_t *)a)->key_id, ((const cqrs_apikey_rec_t *)b)->key_id);
}

cqrs_tenant_rec_t *cqrs_registry_tenants(cqrs_registry_t *reg, size_t *n) {
  collect_t c = {.size = sizeof(cqrs_tenant_rec_t)};
  /* cqrs_map_filter only removes what its callback asks, so a read lock is enough. */
  pthread_rwlock_rdlock(&reg->lock);
  cqrs_map_filter(reg->tenants, collect_tenant, &c);
  pthread_rwlock_unlock(&reg->lock);
  if (c.n) qsort(c.items, c.n, c.size, tenant_cmp);
  *n = c.n;
  return (cqrs_tenant_rec_t *)c.items;
}

cqrs_apikey_rec_t *cqrs_registry_apikeys(cqrs_registry_t *reg, const char *t, size_t *n) {
  collect_t c = {.size = sizeof(cqrs_apikey_rec_t), .tenant = t};
  pthread_rwlock_rdlock(&reg->lock);
  cqrs_map_filter(reg->keys, collect_apikey, &c);
  pthread_rwlock_unlock(&reg->lock);
  if (c.n) qsort(c.items, c.n, c.size, apikey_cmp);
  *n = c.n;
  return (cqrs_apikey_rec_t *)c.items;
}
