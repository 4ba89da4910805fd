/* admin-svc's decisions (admin-svc/decide.h): which control record each
 * write produces from the registry, when there is nothing to write, and what
 * is refused; the scopes of an issue request; a key as the API shows it. */
#include "decide.h"
#include "unit.h"

#include "cqrs/json.h"

#define NOW "2026-12-02T10:00:00.000Z"

static cqrs_registry_t *reg;
static admin_record_t out;

static void setup(void) {
  reg = cqrs_registry_new();
  memset(&out, 0, sizeof out);
}
static void teardown(void) {
  free(out.key);
  free(out.value);
  cqrs_registry_destroy(reg);
}

TestSuite(admin_decide, .init = setup, .fini = teardown);

/* Applies a decided record to the registry, as the reader would. */
static void apply(const admin_record_t *rec) {
  cqrs_error_t err = {0};
  cr_assert(cqrs_registry_apply(reg, rec->key, strlen(rec->key), rec->value, rec->value_len, &err), "%s",
            err.message);
}

static void reset_out(void) {
  free(out.key);
  free(out.value);
  memset(&out, 0, sizeof out);
}

static void create(const char *t) {
  admin_tenant_op_t op = {.tenant = t, .now = NOW};
  cqrs_error_t err = {0};
  cr_assert(admin_decide_tenant_create(reg, &op, &out, &err), "%s", err.message);
  apply(&out);
  reset_out();
}

Test(admin_decide, create_writes_an_active_tenant) {
  admin_tenant_op_t op = {.tenant = "acme", .now = NOW};
  cqrs_error_t err = {0};
  cr_assert(admin_decide_tenant_create(reg, &op, &out, &err));
  cr_assert(op.wrote);
  cr_assert_str_eq(out.key, "tenant/acme");
  bson_t *doc = u_parse(out.value);
  cr_assert_str_eq(u_str(doc, "state"), "active");
  cr_assert_str_eq(u_str(doc, "createdAt"), NOW);
  bson_destroy(doc);
  cr_assert_eq(op.result.state, CQRS_TENANT_ACTIVE);
  /* Deciding writes nothing by itself. */
  cr_assert_eq(cqrs_registry_tenant_state(reg, "acme"), CQRS_TENANT_UNKNOWN);
}

Test(admin_decide, create_refuses_an_existing_or_deleted_tenant) {
  create("acme");
  admin_tenant_op_t op = {.tenant = "acme", .now = NOW};
  cqrs_error_t err = {0};
  cr_assert_not(admin_decide_tenant_create(reg, &op, &out, &err));
  cr_assert_eq(err.code, CQRS_ERR_CONFLICT);
  cr_assert_str_eq(err.field, "tenantId");
  cr_assert_not_null(strstr(err.message, "already exists"));
  cr_assert_null(out.key);

  admin_tenant_op_t del = {.tenant = "acme", .now = NOW};
  cr_assert(admin_decide_tenant_delete(reg, &del, &out, &err));
  apply(&out);
  reset_out();
  cr_assert_not(admin_decide_tenant_create(reg, &op, &out, &err));
  cr_assert_eq(err.code, CQRS_ERR_CONFLICT);
  cr_assert_not_null(strstr(err.message, "cannot be used again"), "%s", err.message);
}

Test(admin_decide, delete_marks_deleted_once) {
  admin_tenant_op_t op = {.tenant = "acme", .now = NOW};
  cqrs_error_t err = {0};
  cr_assert_not(admin_decide_tenant_delete(reg, &op, &out, &err));
  cr_assert_eq(err.code, CQRS_ERR_NOT_FOUND);
  create("acme");
  cr_assert(admin_decide_tenant_delete(reg, &op, &out, &err));
  cr_assert(op.wrote);
  bson_t *doc = u_parse(out.value);
  cr_assert_str_eq(u_str(doc, "state"), "deleted");
  cr_assert_str_eq(u_str(doc, "deletedAt"), NOW);
  cr_assert_str_eq(u_str(doc, "createdAt"), NOW);
  bson_destroy(doc);
  apply(&out);
  reset_out();
  admin_tenant_op_t again = {.tenant = "acme", .now = "2027-01-01T00:00:00.000Z"};
  cr_assert(admin_decide_tenant_delete(reg, &again, &out, &err));
  cr_assert_not(again.wrote);
  cr_assert_null(out.key, "deleting a deleted tenant wrote a record");
  cr_assert_str_eq(again.result.deleted_at, NOW);
}

Test(admin_decide, issue_needs_an_active_tenant) {
  admin_key_op_t op = {.tenant = "acme", .now = NOW, .scopes = CQRS_SCOPE_QUERIES_READ};
  cqrs_error_t err = {0};
  cr_assert_not(admin_decide_key_issue(reg, &op, &out, &err));
  cr_assert_eq(err.code, CQRS_ERR_NOT_FOUND);
  create("acme");
  cr_assert(admin_decide_key_issue(reg, &op, &out, &err), "%s", err.message);
  cr_assert_eq(strlen(op.key), CQRS_API_KEY_LEN);
  char want_key[32];
  snprintf(want_key, sizeof want_key, "apikey/%s", op.result.key_id);
  cr_assert_str_eq(out.key, want_key);
  /* The record holds the hash, never the key's secret. */
  cr_assert_null(strstr(out.value, op.key + 5 + CQRS_KEY_ID_LEN + 1));
  bson_t *doc = u_parse(out.value);
  cr_assert_str_eq(u_str(doc, "tenantId"), "acme");
  cr_assert_str_eq(u_str(doc, "scopes.0"), "queries:read");
  bson_destroy(doc);
  apply(&out);
  cqrs_apikey_rec_t k;
  cr_assert(cqrs_registry_apikey(reg, op.result.key_id, &k));
  cr_assert_not(k.revoked);
}

Test(admin_decide, revoke_only_the_tenants_own_key_once) {
  create("acme");
  create("other");
  admin_key_op_t issue = {.tenant = "acme", .now = NOW, .scopes = CQRS_SCOPE_ADMIN};
  cqrs_error_t err = {0};
  cr_assert(admin_decide_key_issue(reg, &issue, &out, &err));
  apply(&out);
  reset_out();

  admin_key_op_t wrong = {.tenant = "other", .now = NOW, .key_id = issue.result.key_id};
  cr_assert_not(admin_decide_key_revoke(reg, &wrong, &out, &err));
  cr_assert_eq(err.code, CQRS_ERR_NOT_FOUND, "another tenant's key must look absent");
  admin_key_op_t unknown = {.tenant = "acme", .now = NOW, .key_id = "0000000000000000"};
  cr_assert_not(admin_decide_key_revoke(reg, &unknown, &out, &err));
  cr_assert_eq(err.code, CQRS_ERR_NOT_FOUND);

  admin_key_op_t op = {.tenant = "acme", .now = NOW, .key_id = issue.result.key_id};
  cr_assert(admin_decide_key_revoke(reg, &op, &out, &err));
  cr_assert(op.wrote);
  apply(&out);
  reset_out();
  cqrs_apikey_rec_t k;
  cr_assert(cqrs_registry_apikey(reg, issue.result.key_id, &k));
  cr_assert(k.revoked);
  cr_assert_str_eq(k.revoked_at, NOW);
  admin_key_op_t again = {.tenant = "acme", .now = NOW, .key_id = issue.result.key_id};
  cr_assert(admin_decide_key_revoke(reg, &again, &out, &err));
  cr_assert_not(again.wrote);
  cr_assert_null(out.key);
}

static bool scopes_of(const char *json, unsigned *scopes, cqrs_error_t *err) {
  bson_t *doc = cqrs_json_parse(json, strlen(json), err);
  cr_assert_not_null(doc);
  bool ok = admin_scopes_parse(doc, scopes, err);
  bson_destroy(doc);
  return ok;
}

Test(admin_decide, scopes) {
  unsigned s = 0;
  cqrs_error_t err = {0};
  cr_assert(scopes_of("{\"scopes\":[\"commands:write\",\"queries:read\",\"admin\",\"admin\"]}", &s, &err));
  cr_assert_eq(s, ADMIN_KEY_SCOPES);
  const char *bad[] = {"{\"scopes\":[\"platform:admin\"]}", "{\"scopes\":[\"queries:write\"]}",
                       "{\"scopes\":[\"queries:read admin\"]}", "{\"scopes\":[]}", "{\"scopes\":\"admin\"}",
                       "{\"scopes\":[1]}", "{}", "{\"scopes\":[\"admin\",null]}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cqrs_error_clear(&err);
    cr_assert_not(scopes_of(bad[i], &s, &err), "%s was accepted", bad[i]);
    cr_assert_eq(err.code, CQRS_ERR_INVALID);
    cr_assert_str_eq(err.field, "scopes", "%s: field %s", bad[i], err.field);
  }
  cqrs_error_clear(&err);
  scopes_of("{\"scopes\":[\"platform:admin\"]}", &s, &err);
  cr_assert_not_null(strstr(err.message, "platform:admin"));
}

Test(admin_decide, key_json_never_has_the_hash) {
  cqrs_apikey_rec_t r = {.key_id = "0123456789abcdef", .tenant = "acme",
                         .scopes = CQRS_SCOPE_ADMIN | CQRS_SCOPE_COMMANDS_WRITE, .revoked = true,
                         .created_at = NOW, .revoked_at = NOW};
  memset(r.sha256, 0xab, sizeof r.sha256);
  char *json = admin_key_json(&r, NULL, NULL);
  bson_t *doc = u_parse(json);
  cr_assert_str_eq(u_str(doc, "keyId"), "0123456789abcdef");
  cr_assert_str_eq(u_str(doc, "scopes.0"), "commands:write");
  cr_assert_str_eq(u_str(doc, "scopes.1"), "admin");
  cr_assert_str_eq(u_str(doc, "revokedAt"), NOW);
  cr_assert_not(u_has(doc, "key"));
  cr_assert_not(u_has(doc, "sha256"));
  cr_assert_null(strstr(json, "abab"));
  bson_destroy(doc);
  bson_free(json);
  json = admin_key_json(&r, "cqrs_0123456789abcdef_x", NULL);
  doc = u_parse(json);
  cr_assert_str_eq(u_str(doc, "key"), "cqrs_0123456789abcdef_x");
  cr_assert_not(u_has(doc, "revoked"));
  bson_destroy(doc);
  bson_free(json);
}
