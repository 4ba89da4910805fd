/* admin-svc request bodies: POST /v1/admin/tenants {"tenantId"} and POST
 * /v1/admin/tenants/{t}/keys {"scopes":[...]}, read as the routes read them
 * (cqrs_json_parse, then the tenant id or admin_scopes_parse), then decided
 * by admin-svc's pure decisions (decide.c) against a registry that knows an
 * active tenant "acme" and a deleted one "gone".
 *
 * Input: the request body. Properties: a body the routes accept gets either
 * a refusal naming a field or a control record that every service's registry
 * applies (admin-svc never writes what its readers skip), and an issued key
 * carries exactly the scopes asked for and shows as JSON. */
#include "fuzz.h"

#include "decide.h"

#include "cqrs/json.h"

static cqrs_registry_t *registry(void) {
  static const char *const RECORDS[][2] = {
      {"tenant/acme", "{\"tenantId\":\"acme\",\"state\":\"active\",\"createdAt\":\"2026-01-01T00:00:00Z\"}"},
      {"tenant/gone", "{\"tenantId\":\"gone\",\"state\":\"deleted\",\"createdAt\":\"2026-01-01T00:00:00Z\","
                      "\"deletedAt\":\"2026-01-02T00:00:00Z\"}"},
  };
  cqrs_registry_t *reg = cqrs_registry_new();
  for (size_t i = 0; i < sizeof RECORDS / sizeof RECORDS[0]; i++)
    FUZZ_CHECK(cqrs_registry_apply(reg, RECORDS[i][0], strlen(RECORDS[i][0]), RECORDS[i][1], strlen(RECORDS[i][1]),
                                   NULL),
               "setup");
  return reg;
}

/* A decided record is one the registry applies. */
static void write_record(cqrs_registry_t *reg, admin_record_t *rec) {
  cqrs_error_t err = {0};
  FUZZ_CHECK(cqrs_registry_apply(reg, rec->key, strlen(rec->key), rec->value, rec->value_len, &err),
             "admin-svc decided a record its readers refuse: %s (%s)", err.message, err.field);
  free(rec->key);
  free(rec->value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cqrs_registry_t *reg = registry();
  cqrs_error_t err = {0};
  bson_t *body = cqrs_json_parse((const char *)data, size, &err);
  if (!body) goto done;

  /* POST /v1/admin/tenants */
  const char *t = NULL;
  const char *tenant = "acme";
  err = (cqrs_error_t){0};
  if (cqrs_json_get_string(body, "tenantId", NULL, true, 0, &t, &err) && cqrs_tenant_valid(t, &err)) {
    admin_tenant_op_t op = {.tenant = t, .now = "2026-01-05T00:00:00Z"};
    admin_record_t rec = {0};
    if (admin_decide_tenant_create(reg, &op, &rec, &err)) {
      FUZZ_CHECK(op.wrote && rec.key, "a create that writes nothing");
      write_record(reg, &rec);
      FUZZ_CHECK(cqrs_registry_tenant_state(reg, t) == CQRS_TENANT_ACTIVE, "created tenant %s not active", t);
      tenant = t;
    } else {
      FUZZ_CHECK(err.code == CQRS_ERR_CONFLICT, "a create refused with code %d", (int)err.code);
    }
  } else {
    FUZZ_CHECK(err.code == CQRS_ERR_INVALID, "tenantId refused with code %d", (int)err.code);
  }

  /* POST /v1/admin/tenants/{tenant}/keys */
  unsigned scopes = 0;
  err = (cqrs_error_t){0};
  if (admin_scopes_parse(body, &scopes, &err)) {
    FUZZ_CHECK(scopes && !(scopes & ~(unsigned)ADMIN_KEY_SCOPES), "scopes %#x", scopes);
    admin_key_op_t op = {.tenant = tenant, .now = "2026-01-05T00:00:00Z", .scopes = scopes};
    admin_record_t rec = {0};
    FUZZ_CHECK(admin_decide_key_issue(reg, &op, &rec, &err), "issue for active %s refused: %s", tenant, err.message);
    write_record(reg, &rec);
    cqrs_apikey_rec_t got;
    FUZZ_CHECK(cqrs_registry_apikey(reg, op.result.key_id, &got) && got.scopes == scopes && !got.revoked,
               "the issued key is not what was asked");
    size_t len;
    char *json = admin_key_json(&op.result, op.key, &len);
    bson_t *shown = cqrs_json_parse(json, len, &err);
    FUZZ_CHECK(shown, "the key's JSON does not parse: %s", err.message);
    bson_destroy(shown);
    bson_free(json);

    /* and DELETE /v1/admin/tenants/{tenant}/keys/{keyId} */
    admin_key_op_t rv = {.tenant = tenant, .now = "2026-01-06T00:00:00Z", .key_id = op.result.key_id};
    FUZZ_CHECK(admin_decide_key_revoke(reg, &rv, &rec, &err) && rv.wrote, "revoke refused: %s", err.message);
    write_record(reg, &rec);
    FUZZ_CHECK(cqrs_registry_apikey(reg, op.result.key_id, &got) && got.revoked, "the revoked key is live");
  } else {
    FUZZ_CHECK(err.code == CQRS_ERR_INVALID && strcmp(err.field, "scopes") == 0, "scopes refused as %s",
               err.field);
  }
  bson_destroy(body);
done:
  cqrs_registry_destroy(reg);
  return 0;
}
