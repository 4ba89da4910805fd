/* Control records as every service reads them off the control topic
 * (cqrs_registry_apply in libshared/src/control.c).
 *
 * Input: records, one a line, "key<TAB>value"; a line without a tab is a
 * tombstone of that key (at most 16). Keys and values sit in buffers of
 * their exact size, as librdkafka hands them over. Properties: every tenant
 * and key the registry then holds writes out (cqrs_control_*_json) to a
 * record that a fresh registry applies to the same record. */
#include "fuzz.h"

#include "cqrs/control.h"

#define MAX_RECORDS 16

static char *exact_copy(const char *p, size_t len) {
  char *b = malloc(len ? len : 1);
  if (!b) abort();
  memcpy(b, p, len);
  return b;
}

static bool same_tenant(const cqrs_tenant_rec_t *a, const cqrs_tenant_rec_t *b) {
  return strcmp(a->tenant, b->tenant) == 0 && a->state == b->state && strcmp(a->created_at, b->created_at) == 0 &&
         strcmp(a->deleted_at, b->deleted_at) == 0;
}

static bool same_key(const cqrs_apikey_rec_t *a, const cqrs_apikey_rec_t *b) {
  return strcmp(a->key_id, b->key_id) == 0 && strcmp(a->tenant, b->tenant) == 0 && a->scopes == b->scopes &&
         memcmp(a->sha256, b->sha256, sizeof a->sha256) == 0 && a->revoked == b->revoked &&
         strcmp(a->created_at, b->created_at) == 0 && strcmp(a->revoked_at, b->revoked_at) == 0;
}

static void apply(cqrs_registry_t *reg, const char *key, size_t klen, const char *value, size_t vlen) {
  char *k = exact_copy(key, klen), *v = value ? exact_copy(value, vlen) : NULL;
  cqrs_error_t err = {0};
  if (!cqrs_registry_apply(reg, k, klen, v, vlen, &err))
    FUZZ_CHECK(err.code == CQRS_ERR_INVALID, "a refusal of code %d", (int)err.code);
  free(k);
  free(v);
}

/* What the registry holds survives its own JSON. */
static void check_roundtrip(cqrs_registry_t *reg) {
  size_t n, nk;
  cqrs_tenant_rec_t *tenants = cqrs_registry_tenants(reg, &n);
  for (size_t i = 0; i < n; i++) {
    cqrs_registry_t *fresh = cqrs_registry_new();
    size_t len;
    char *key = cqrs_control_tenant_key(tenants[i].tenant), *json = cqrs_control_tenant_json(&tenants[i], &len);
    cqrs_error_t err = {0};
    FUZZ_CHECK(cqrs_registry_apply(fresh, key, strlen(key), json, len, &err), "tenant %s: %s", key, err.message);
    size_t m;
    cqrs_tenant_rec_t *back = cqrs_registry_tenants(fresh, &m);
    FUZZ_CHECK(m == 1 && same_tenant(back, &tenants[i]), "tenant %s changed through its JSON", key);
    free(back);
    free(key);
    free(json);

    cqrs_apikey_rec_t *keys = cqrs_registry_apikeys(reg, tenants[i].tenant, &nk);
    for (size_t j = 0; j < nk; j++) {
      char *kkey = cqrs_control_apikey_key(keys[j].key_id), *kjson = cqrs_control_apikey_json(&keys[j], &len);
      FUZZ_CHECK(cqrs_registry_apply(fresh, kkey, strlen(kkey), kjson, len, &err), "key %s: %s", kkey, err.message);
      cqrs_apikey_rec_t got;
      FUZZ_CHECK(cqrs_registry_apikey(fresh, keys[j].key_id, &got) && same_key(&got, &keys[j]),
                 "key %s changed through its JSON", kkey);
      free(kkey);
      free(kjson);
    }
    free(keys);
    cqrs_registry_destroy(fresh);
  }
  free(tenants);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size), *end = text + size, *rest = text, *line;
  cqrs_registry_t *reg = cqrs_registry_new();
  size_t len;
  for (int n = 0; n < MAX_RECORDS && (line = fuzz_next(&rest, end, '\n', &len)); n++) {
    char *tab = memchr(line, '\t', len);
    if (tab)
      apply(reg, line, (size_t)(tab - line), tab + 1, (size_t)(line + len - tab - 1));
    else
      apply(reg, line, len, NULL, 0);
  }
  check_roundtrip(reg);
  cqrs_registry_destroy(reg);
  free(text);
  return 0;
}
