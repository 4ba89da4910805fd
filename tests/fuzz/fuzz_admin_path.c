/* admin-svc's paths under /v1/admin/tenants/ (admin-svc/path.h), as the gate
 * splits every request's tail before it picks a handler (routes/gate.c).
 *
 * Input: the tail, NUL-terminated in a buffer of its exact size plus the NUL
 * (a read past the NUL is an ASan report). Properties: a split path is one
 * of the three shapes and rebuilds to the tail exactly (a valid tenant, and
 * a key id of CQRS_KEY_ID_LEN lowercase hex); and whenever the tail starts
 * with a valid tenant, that tenant's three shapes, the key id taken from the
 * tail when it has one of the right form, are split as such. */
#include "fuzz.h"

#include "path.h"

#define KEY_SAMPLE "0123456789abcdef"

static void assert_split(const char *tail, int want, const char *tenant, const char *key_id) {
  admin_path_t path;
  int got = admin_path_split(tail, &path);
  FUZZ_CHECK(got == want, "\"%s\" split into %d parts, not %d", tail, got, want);
  FUZZ_CHECK(strcmp(path.tenant, tenant) == 0, "\"%s\": tenant \"%s\"", tail, path.tenant);
  FUZZ_CHECK(strcmp(path.key_id, key_id) == 0, "\"%s\": key \"%s\"", tail, path.key_id);
}

static bool key_id_ok(const char *k, size_t n) {
  if (n != CQRS_KEY_ID_LEN) return false;
  for (size_t i = 0; i < n; i++)
    if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f'))) return false;
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *tail = fuzz_text(data, size);
  admin_path_t path;
  int parts = admin_path_split(tail, &path);
  FUZZ_CHECK(parts >= 0 && parts <= 3, "%d parts", parts);
  if (parts) {
    FUZZ_CHECK(cqrs_tenant_valid(path.tenant, NULL), "tenant \"%s\" is not one", path.tenant);
    FUZZ_CHECK(parts == 3 ? key_id_ok(path.key_id, strlen(path.key_id)) : !path.key_id[0], "key \"%s\" with %d parts",
               path.key_id, parts);
    char again[128];
    static const char *const SHAPES[] = {"", "%s", "%s/keys", "%s/keys/%s"};
    snprintf(again, sizeof again, SHAPES[parts], path.tenant, path.key_id);
    FUZZ_CHECK(strcmp(again, tail) == 0, "\"%s\" split into what rebuilds as \"%s\"", tail, again);
  }

  /* Completeness: the tenant the tail starts with (up to its first '/'). */
  size_t n = strcspn(tail, "/");
  if (n >= 1 && n <= CQRS_TENANT_MAX) {
    char tenant[CQRS_TENANT_MAX + 1] = {0};
    memcpy(tenant, tail, n);
    if (cqrs_tenant_valid(tenant, NULL)) {
      const char *k = tail[n] ? strrchr(tail, '/') + 1 : "";
      const char *key = key_id_ok(k, strlen(k)) ? k : KEY_SAMPLE;
      char built[128];
      assert_split(tenant, 1, tenant, "");
      snprintf(built, sizeof built, "%s/keys", tenant);
      assert_split(built, 2, tenant, "");
      snprintf(built, sizeof built, "%s/keys/%s", tenant, key);
      assert_split(built, 3, tenant, key);
    }
  }
  free(tail);
  return 0;
}
