/* Control records and the registry (cqrs/control.h): round trips, apply and
 * tombstones, ordered snapshots, malformed records refused with the registry
 * unchanged, and readers racing one writer. */
#include "cqrs/auth.h"
#include "cqrs/control.h"
#include "unit.h"

#include <pthread.h>
#include <stdatomic.h>

static cqrs_registry_t *reg;

static void setup(void) { reg = cqrs_registry_new(); }
static void teardown(void) { cqrs_registry_destroy(reg); }

TestSuite(control, .init = setup, .fini = teardown);

static cqrs_tenant_rec_t tenant_rec(const char *t, cqrs_tenant_state_t s) {
  cqrs_tenant_rec_t r = {.state = s};
  snprintf(r.tenant, sizeof r.tenant, "%s", t);
  snprintf(r.created_at, sizeof r.created_at, "2026-12-01T10:00:00.000Z");
  if (s == CQRS_TENANT_DELETED) snprintf(r.deleted_at, sizeof r.deleted_at, "2026-12-01T11:00:00.000Z");
  return r;
}

static cqrs_apikey_rec_t key_rec(const char *id, const char *t, unsigned scopes, bool revoked) {
  cqrs_apikey_rec_t r = {.scopes = scopes, .revoked = revoked};
  snprintf(r.key_id, sizeof r.key_id, "%s", id);
  snprintf(r.tenant, sizeof r.tenant, "%s", t);
  for (int i = 0; i < 32; i++) r.sha256[i] = (unsigned char)(i * 7 + id[0]);
  snprintf(r.created_at, sizeof r.created_at, "2026-12-01T10:00:00.000Z");
  if (revoked) snprintf(r.revoked_at, sizeof r.revoked_at, "2026-12-01T12:00:00.000Z");
  return r;
}

/* Applies rec through its key and JSON, as the reader does. */
static void put_tenant(const cqrs_tenant_rec_t *r) {
  size_t len;
  char *k = cqrs_control_tenant_key(r->tenant), *v = cqrs_control_tenant_json(r, &len);
  cr_assert_not_null(k);
  cr_assert_not_null(v);
  cqrs_error_t err = {0};
  cr_assert(cqrs_registry_apply(reg, k, strlen(k), v, len, &err), "%s", err.message);
  free(k);
  free(v);
}

static void put_key(const cqrs_apikey_rec_t *r) {
  size_t len;
  char *k = cqrs_control_apikey_key(r->key_id), *v = cqrs_control_apikey_json(r, &len);
  cqrs_error_t err = {0};
  cr_assert(cqrs_registry_apply(reg, k, strlen(k), v, len, &err), "%s", err.message);
  free(k);
  free(v);
}

static bool apply_str(const char *k, const char *v, cqrs_error_t *err) {
  return cqrs_registry_apply(reg, k, strlen(k), v, v ? strlen(v) : 0, err);
}

Test(control, record_keys) {
  char *k = cqrs_control_tenant_key("acme");
  cr_assert_str_eq(k, "tenant/acme");
  free(k);
  k = cqrs_control_apikey_key("0123456789abcdef");
  cr_assert_str_eq(k, "apikey/0123456789abcdef");
  free(k);
}

Test(control, tenant_json_shape) {
  cqrs_tenant_rec_t r = tenant_rec("acme", CQRS_TENANT_ACTIVE);
  size_t len;
  char *v = cqrs_control_tenant_json(&r, &len);
  cr_assert_eq(strlen(v), len);
  bson_t *doc = u_parse(v);
  cr_assert_str_eq(u_str(doc, "tenantId"), "acme");
  cr_assert_str_eq(u_str(doc, "state"), "active");
  cr_assert_str_eq(u_str(doc, "createdAt"), "2026-12-01T10:00:00.000Z");
  cr_assert_not(u_has(doc, "deletedAt"));
  bson_destroy(doc);
  free(v);
}

Test(control, tenant_round_trip) {
  cqrs_tenant_rec_t in = tenant_rec("acme", CQRS_TENANT_DELETED);
  put_tenant(&in);
  size_t n;
  cqrs_tenant_rec_t *all = cqrs_registry_tenants(reg, &n);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(all[0].tenant, "acme");
  cr_assert_eq(all[0].state, CQRS_TENANT_DELETED);
  cr_assert_str_eq(all[0].created_at, in.created_at);
  cr_assert_str_eq(all[0].deleted_at, in.deleted_at);
  free(all);
  cr_assert_eq(cqrs_registry_tenant_state(reg, "acme"), CQRS_TENANT_DELETED);
}

Test(control, apikey_json_has_hash_not_secret_shape) {
  cqrs_apikey_rec_t r = key_rec("0123456789abcdef", "acme", CQRS_SCOPE_QUERIES_READ | CQRS_SCOPE_ADMIN, false);
  char *v = cqrs_control_apikey_json(&r, NULL);
  bson_t *doc = u_parse(v);
  cr_assert_str_eq(u_str(doc, "keyId"), "0123456789abcdef");
  cr_assert_str_eq(u_str(doc, "tenantId"), "acme");
  cr_assert_eq(strlen(u_str(doc, "sha256")), 64);
  cr_assert_str_eq(u_str(doc, "scopes.0"), "queries:read");
  cr_assert_str_eq(u_str(doc, "scopes.1"), "admin");
  cr_assert_not(u_has(doc, "scopes.2"));
  cr_assert_not(u_has(doc, "revokedAt"));
  bson_destroy(doc);
  free(v);
}

Test(control, apikey_round_trip) {
  cqrs_apikey_rec_t in = key_rec("00000000000000aa", "acme", CQRS_SCOPE_COMMANDS_WRITE | CQRS_SCOPE_QUERIES_READ, true);
  put_key(&in);
  cqrs_apikey_rec_t out;
  cr_assert(cqrs_registry_apikey(reg, "00000000000000aa", &out));
  cr_assert_str_eq(out.key_id, in.key_id);
  cr_assert_str_eq(out.tenant, in.tenant);
  cr_assert_eq(out.scopes, in.scopes);
  cr_assert_eq(memcmp(out.sha256, in.sha256, 32), 0);
  cr_assert(out.revoked);
  cr_assert_str_eq(out.created_at, in.created_at);
  cr_assert_str_eq(out.revoked_at, in.revoked_at);
  cr_assert_not(cqrs_registry_apikey(reg, "00000000000000ab", &out));
}

/* Found by tests/fuzz/fuzz_control: a deletedAt on an active tenant (a
 * revokedAt on a live key) was kept, though the record's JSON never writes
 * it, so the registry held what no record of it says. */
Test(control, deletion_times_only_with_their_state) {
  cqrs_error_t err = {0};
  cr_assert(apply_str("tenant/acme",
                      "{\"tenantId\":\"acme\",\"state\":\"active\",\"createdAt\":\"2026-01-01T00:00:00Z\","
                      "\"deletedAt\":\"2026-01-02T00:00:00Z\"}",
                      &err),
            "%s", err.message);
  size_t n;
  cqrs_tenant_rec_t *all = cqrs_registry_tenants(reg, &n);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(all[0].deleted_at, "");
  free(all);
  cr_assert(apply_str("apikey/00000000000000aa",
                      "{\"keyId\":\"00000000000000aa\",\"tenantId\":\"acme\",\"scopes\":[],\"sha256\":"
                      "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\",\"createdAt\":\"x\","
                      "\"revoked\":false,\"revokedAt\":\"2026-01-03T00:00:00Z\"}",
                      &err),
            "%s", err.message);
  cqrs_apikey_rec_t k;
  cr_assert(cqrs_registry_apikey(reg, "00000000000000aa", &k));
  cr_assert_not(k.revoked);
  cr_assert_str_eq(k.revoked_at, "");
}

Test(control, later_record_replaces_earlier) {
  cqrs_tenant_rec_t r = tenant_rec("acme", CQRS_TENANT_ACTIVE);
  put_tenant(&r);
  cr_assert_eq(cqrs_registry_tenant_state(reg, "acme"), CQRS_TENANT_ACTIVE);
  r = tenant_rec("acme", CQRS_TENANT_DELETED);
  put_tenant(&r);
  cr_assert_eq(cqrs_registry_tenant_state(reg, "acme"), CQRS_TENANT_DELETED);
  cqrs_apikey_rec_t k = key_rec("00000000000000aa", "acme", CQRS_SCOPE_ADMIN, false);
  put_key(&k);
  k.revoked = true;
  put_key(&k);
  cqrs_apikey_rec_t out;
  cr_assert(cqrs_registry_apikey(reg, "00000000000000aa", &out));
  cr_assert(out.revoked);
}

Test(control, tombstone_forgets) {
  cqrs_tenant_rec_t r = tenant_rec("acme", CQRS_TENANT_ACTIVE);
  put_tenant(&r);
  cqrs_apikey_rec_t k = key_rec("00000000000000aa", "acme", CQRS_SCOPE_ADMIN, false);
  put_key(&k);
  cqrs_error_t err = {0};
  cr_assert(apply_str("tenant/acme", NULL, &err));
  cr_assert(apply_str("apikey/00000000000000aa", NULL, &err));
  cr_assert_eq(cqrs_registry_tenant_state(reg, "acme"), CQRS_TENANT_UNKNOWN);
  cqrs_apikey_rec_t out;
  cr_assert_not(cqrs_registry_apikey(reg, "00000000000000aa", &out));
  /* A tombstone for a key never seen is fine (compaction may have kept only it). */
  cr_assert(apply_str("tenant/never", NULL, &err));
}

Test(control, snapshots_are_ordered_and_filtered) {
  const char *names[] = {"zeta", "alpha", "mid-1", "beta", "0first"};
  for (size_t i = 0; i < 5; i++) {
    cqrs_tenant_rec_t r = tenant_rec(names[i], CQRS_TENANT_ACTIVE);
    put_tenant(&r);
  }
  size_t n;
  cqrs_tenant_rec_t *all = cqrs_registry_tenants(reg, &n);
  cr_assert_eq(n, 5);
  const char *want[] = {"0first", "alpha", "beta", "mid-1", "zeta"};
  for (size_t i = 0; i < n; i++) cr_assert_str_eq(all[i].tenant, want[i]);
  free(all);

  const char *ids[] = {"000000000000000c", "000000000000000a", "000000000000000b"};
  for (size_t i = 0; i < 3; i++) {
    cqrs_apikey_rec_t k = key_rec(ids[i], "alpha", CQRS_SCOPE_ADMIN, false);
    put_key(&k);
  }
  cqrs_apikey_rec_t other = key_rec("00000000000000ff", "beta", CQRS_SCOPE_ADMIN, false);
  put_key(&other);
  cqrs_apikey_rec_t *keys = cqrs_registry_apikeys(reg, "alpha", &n);
  cr_assert_eq(n, 3);
  cr_assert_str_eq(keys[0].key_id, "000000000000000a");
  cr_assert_str_eq(keys[1].key_id, "000000000000000b");
  cr_assert_str_eq(keys[2].key_id, "000000000000000c");
  free(keys);
  cr_assert_null(cqrs_registry_apikeys(reg, "zeta", &n));
  cr_assert_eq(n, 0);
}

Test(control, empty_registry_snapshots) {
  size_t n = 99;
  cr_assert_null(cqrs_registry_tenants(reg, &n));
  cr_assert_eq(n, 0);
  cr_assert_eq(cqrs_registry_tenant_state(reg, "acme"), CQRS_TENANT_UNKNOWN);
}

/* Every malformed record is refused as invalid and changes nothing. */
Test(control, malformed_records_leave_registry_unchanged) {
  cqrs_tenant_rec_t r = tenant_rec("acme", CQRS_TENANT_ACTIVE);
  put_tenant(&r);
  cqrs_apikey_rec_t k = key_rec("00000000000000aa", "acme", CQRS_SCOPE_ADMIN, false);
  put_key(&k);
  const char *sha = "\"sha256\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"";
  char good_key[512];
  snprintf(good_key, sizeof good_key,
           "{\"keyId\":\"00000000000000aa\",\"tenantId\":\"acme\",\"scopes\":[],%s,\"createdAt\":\"x\","
           "\"revoked\":true}",
           sha);
  struct {
    const char *key, *value;
  } bad[] = {
      {"tenant/acme", "not json"},
      {"tenant/acme", "[1,2]"},
      {"tenant/acme", "{\"tenantId\":\"acme\",\"state\":\"paused\",\"createdAt\":\"x\"}"},
      {"tenant/acme", "{\"tenantId\":\"other\",\"state\":\"deleted\",\"createdAt\":\"x\"}"},
      {"tenant/acme", "{\"tenantId\":\"acme\",\"state\":\"deleted\"}"},
      {"tenant/acme", "{\"tenantId\":\"acme\",\"state\":7,\"createdAt\":\"x\"}"},
      {"tenant/acme", "{\"tenantId\":\"acme\",\"state\":\"deleted\",\"state\":\"active\",\"createdAt\":\"x\"}"},
      {"tenant/Bad_Id", "{\"tenantId\":\"Bad_Id\",\"state\":\"active\",\"createdAt\":\"x\"}"},
      {"tenant/", "{}"},
      {"other/acme", "{}"},
      {"", "{}"},
      {"apikey/00000000000000aa", "{\"keyId\":\"00000000000000aa\",\"tenantId\":\"acme\",\"scopes\":[],"
                                  "\"sha256\":\"abc\",\"createdAt\":\"x\",\"revoked\":true}"},
      {"apikey/00000000000000aa", "{\"keyId\":\"00000000000000aa\",\"tenantId\":\"acme\",\"scopes\":[1],"
                                  "\"sha256\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
                                  "\"createdAt\":\"x\",\"revoked\":true}"},
      {"apikey/00000000000000aa", "{\"keyId\":\"00000000000000aa\",\"tenantId\":\"acme\",\"scopes\":[],"
                                  "\"sha256\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
                                  "\"createdAt\":\"x\",\"revoked\":\"yes\"}"},
      {"apikey/00000000000000ab", good_key}, /* keyId differs from the key */
      {"apikey/XYZ", good_key},
      {"apikey/00000000000000aa", "{\"keyId\":\"00000000000000aa\",\"tenantId\":\"acme\","
                                  "\"sha256\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
                                  "\"createdAt\":\"x\",\"revoked\":true}"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cqrs_error_t err = {0};
    cr_assert_not(apply_str(bad[i].key, bad[i].value, &err), "record %zu was accepted", i);
    cr_assert_eq(err.code, CQRS_ERR_INVALID, "record %zu: code %d", i, err.code);
  }
  cqrs_error_t err = {0};
  cr_assert_not(cqrs_registry_apply(reg, "tenant/acme\0x", 13, NULL, 0, &err));
  cr_assert_not(cqrs_registry_apply(reg, NULL, 0, NULL, 0, &err));

  cr_assert_eq(cqrs_registry_tenant_state(reg, "acme"), CQRS_TENANT_ACTIVE);
  size_t n;
  cqrs_tenant_rec_t *all = cqrs_registry_tenants(reg, &n);
  cr_assert_eq(n, 1);
  free(all);
  cqrs_apikey_rec_t out;
  cr_assert(cqrs_registry_apikey(reg, "00000000000000aa", &out));
  cr_assert_not(out.revoked);
  cr_assert_eq(out.scopes, CQRS_SCOPE_ADMIN);
  cr_assert_not(cqrs_registry_apikey(reg, "00000000000000ab", &out));
  /* The good record itself is accepted: the refusals above were about their flaws. */
  cr_assert(apply_str("apikey/00000000000000aa", good_key, &err), "%s", err.message);
}

Test(control, unknown_scope_names_grant_nothing) {
  cqrs_error_t err = {0};
  cr_assert(apply_str("apikey/00000000000000aa",
                      "{\"keyId\":\"00000000000000aa\",\"tenantId\":\"acme\",\"scopes\":[\"queries:read\","
                      "\"platform:admin\",\"future:thing\"],"
                      "\"sha256\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
                      "\"createdAt\":\"x\",\"revoked\":false}",
                      &err),
            "%s", err.message);
  cqrs_apikey_rec_t out;
  cr_assert(cqrs_registry_apikey(reg, "00000000000000aa", &out));
  cr_assert_eq(out.scopes, CQRS_SCOPE_QUERIES_READ);
  cr_assert_eq(out.sha256[0], 0x00);
  cr_assert_eq(out.sha256[31], 0xff);
}

/* One writer flips tenants and keys while readers take snapshots and look
 * records up: every record seen is whole (never half of one write). Run under
 * ASan/TSan-free builds, this also catches use-after-free in snapshots. */
#define N_READERS 4
#define ROUNDS 2000

static atomic_bool writer_done;
static atomic_int torn;

static void *reader_main(void *arg) {
  (void)arg;
  while (!atomic_load(&writer_done)) {
    size_t n;
    cqrs_tenant_rec_t *all = cqrs_registry_tenants(reg, &n);
    for (size_t i = 0; i < n; i++) {
      bool deleted = all[i].state == CQRS_TENANT_DELETED;
      if (deleted != (all[i].deleted_at[0] != '\0')) atomic_fetch_add(&torn, 1);
      if (i && strcmp(all[i - 1].tenant, all[i].tenant) >= 0) atomic_fetch_add(&torn, 1);
    }
    free(all);
    cqrs_apikey_rec_t k;
    if (cqrs_registry_apikey(reg, "00000000000000aa", &k) && k.revoked != (k.revoked_at[0] != '\0'))
      atomic_fetch_add(&torn, 1);
    cqrs_apikey_rec_t *keys = cqrs_registry_apikeys(reg, "t-1", &n);
    free(keys);
    (void)cqrs_registry_tenant_state(reg, "t-3");
  }
  return NULL;
}

Test(control, concurrent_readers_one_writer) {
  atomic_store(&writer_done, false);
  atomic_store(&torn, 0);
  pthread_t th[N_READERS];
  for (int i = 0; i < N_READERS; i++) cr_assert_eq(pthread_create(&th[i], NULL, reader_main, NULL), 0);
  for (int round = 0; round < ROUNDS; round++) {
    char t[16];
    snprintf(t, sizeof t, "t-%d", round % 8);
    cqrs_tenant_rec_t r = tenant_rec(t, round % 3 ? CQRS_TENANT_ACTIVE : CQRS_TENANT_DELETED);
    put_tenant(&r);
    cqrs_apikey_rec_t k = key_rec("00000000000000aa", t, CQRS_SCOPE_ADMIN, round % 2);
    put_key(&k);
    if (round % 5 == 0) {
      char *key = cqrs_control_tenant_key(t);
      cr_assert(cqrs_registry_apply(reg, key, strlen(key), NULL, 0, NULL));
      free(key);
    }
  }
  atomic_store(&writer_done, true);
  for (int i = 0; i < N_READERS; i++) pthread_join(th[i], NULL);
  cr_assert_eq(atomic_load(&torn), 0);
}
