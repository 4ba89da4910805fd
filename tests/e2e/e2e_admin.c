/* End to end: admin-svc with authentication on (a JWKS file made here, signed
 * tokens from tools/cqrs-token's library) against the real broker: tenant
 * lifecycle, API keys shown once, who may do what, and an issued key
 * verifying in a second authenticator fed by its own control reader (as any
 * other service's) until it is revoked. */
#include "testkit.h"
#include "tk_auth.h"

#include "cqrs/auth.h"
#include "cqrs/control.h"
#include "cqrs/util.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 10000

static tk_env_t env;
static pid_t admin;
static tk_auth_t *auth;
static char *platform_token;

static void nap(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static char *token_for(const char *tenant, const char *scope) { return tk_auth_token(auth, tenant, scope, 600); }

static void setup(void) {
  tk_env_init(&env);
  auth = tk_auth_new(&env);
  const char *extra[TK_AUTH_ENV_MAX];
  admin = tk_start(&env, TK_ADMIN, tk_auth_env(auth, (const char *const[]){"TOPIC_REPLICATION=1", NULL}, extra));
  platform_token = token_for(NULL, "platform:admin");
}

static void teardown(void) {
  if (admin > 0) tk_stop(admin, SIGTERM);
  admin = 0;
  tk_auth_destroy(auth);
  auth = NULL;
  free(platform_token);
}

TestSuite(admin, .init = setup, .fini = teardown, .timeout = 300);

/* One request to admin-svc with credential (NULL: none). */
static int call(const char *method, const char *path, const char *credential, const char *body, tk_response_t *r) {
  tk_auth_http(method, env.admin_port, path, credential, NULL, body, r);
  return r->status;
}

/* A request without credential to an admin-svc on port. */
static int call_port(int port, const char *method, const char *path, const char *body, tk_response_t *r) {
  tk_http_headers(method, port, path, "", body, body ? strlen(body) : 0, r);
  return r->status;
}

/* call, failing the test unless it answers want; returns the body (free it). */
static char *expect(int want, const char *method, const char *path, const char *credential, const char *body) {
  tk_response_t r;
  int status = call(method, path, credential, body, &r);
  cr_assert_eq(status, want, "%s %s answered %d, not %d: %s", method, path, status, want, r.body ? r.body : "");
  char *out = strdup(r.body ? r.body : "");
  tk_response_cleanup(&r);
  return out;
}

static void expect_field(const char *json, const char *key, const char *want) {
  char *v = tk_json_string(json, key);
  cr_assert_not_null(v, "%s has no %s", json, key);
  cr_assert_str_eq(v, want, "%s: %s is %s, not %s", json, key, v, want);
  free(v);
}

Test(admin, tenant_lifecycle) {
  /* Open routes stay open; the document is admin-svc's own. */
  char *doc = expect(200, "GET", "/openapi.json", NULL, NULL);
  cr_assert_not_null(strstr(doc, "\"title\": \"admin-svc\""), "not admin-svc's OpenAPI document");
  cr_assert_not_null(strstr(doc, "/v1/admin/tenants/{tenantId}/keys/{keyId}"));
  free(doc);
  free(expect(200, "GET", "/readyz", NULL, NULL));
  char *b = expect(201, "POST", "/v1/admin/tenants", platform_token, "{\"tenantId\":\"acme\"}");
  expect_field(b, "tenantId", "acme");
  expect_field(b, "state", "active");
  char *created = tk_json_string(b, "createdAt");
  cr_assert(created && strlen(created) >= 20, "createdAt: %s", b);
  free(created);
  free(b);
  /* Read your writes: the answer came after the record was read back. */
  b = expect(200, "GET", "/v1/admin/tenants/acme", platform_token, NULL);
  expect_field(b, "state", "active");
  free(b);
  free(expect(201, "POST", "/v1/admin/tenants", platform_token, "{\"tenantId\":\"beta-2\"}"));
  b = expect(200, "GET", "/v1/admin/tenants", platform_token, NULL);
  cr_assert(strstr(b, "{\"items\":[{\"tenantId\":\"acme\"") == b, "list: %s", b);
  cr_assert_not_null(strstr(b, "\"tenantId\":\"beta-2\""), "list: %s", b);
  free(b);

  b = expect(409, "POST", "/v1/admin/tenants", platform_token, "{\"tenantId\":\"acme\"}");
  cr_assert_not_null(strstr(b, "already exists"), "%s", b);
  free(b);
  const char *invalid[] = {"{\"tenantId\":\"Acme\"}", "{\"tenantId\":\"a/b\"}", "{\"tenantId\":\"\"}", "{}",
                           "{\"tenantId\":\"-x\"}", "{\"tenantId\":\"0123456789012345678901234567890123\"}",
                           "not json"};
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
    b = expect(400, "POST", "/v1/admin/tenants", platform_token, invalid[i]);
    if (i < 6) expect_field(b, "field", "tenantId");
    free(b);
  }
  free(expect(404, "GET", "/v1/admin/tenants/nobody", platform_token, NULL));
  free(expect(404, "DELETE", "/v1/admin/tenants/nobody", platform_token, NULL));

  b = expect(200, "DELETE", "/v1/admin/tenants/acme", platform_token, NULL);
  expect_field(b, "state", "deleted");
  char *deleted_at = tk_json_string(b, "deletedAt");
  cr_assert_not_null(deleted_at, "%s", b);
  free(b);
  b = expect(200, "GET", "/v1/admin/tenants/acme", platform_token, NULL);
  expect_field(b, "state", "deleted");
  expect_field(b, "deletedAt", deleted_at);
  free(b);
  /* Deleting again answers the same record; the id is never reused. */
  b = expect(200, "DELETE", "/v1/admin/tenants/acme", platform_token, NULL);
  expect_field(b, "deletedAt", deleted_at);
  free(b);
  free(deleted_at);
  b = expect(409, "POST", "/v1/admin/tenants", platform_token, "{\"tenantId\":\"acme\"}");
  cr_assert_not_null(strstr(b, "cannot be used again"), "%s", b);
  free(b);
  /* A deleted tenant gets no keys. */
  free(expect(404, "POST", "/v1/admin/tenants/acme/keys", platform_token, "{\"scopes\":[\"queries:read\"]}"));
}

Test(admin, authentication_and_scopes) {
  tk_response_t r;
  cr_assert_eq(call("GET", "/v1/admin/tenants", NULL, NULL, &r), 401);
  cr_assert_not_null(strstr(r.headers, "WWW-Authenticate: Bearer"), "%s", r.headers);
  cr_assert_null(strstr(r.headers, "invalid_token"), "%s", r.headers);
  tk_response_cleanup(&r);
  cr_assert_eq(call("POST", "/v1/admin/tenants", "garbage.token.here", "{\"tenantId\":\"x\"}", &r), 401);
  cr_assert_not_null(strstr(r.headers, "error=\"invalid_token\""), "%s", r.headers);
  cr_assert_null(strstr(r.body, "garbage"), "the credential was echoed: %s", r.body);
  tk_response_cleanup(&r);

  free(expect(201, "POST", "/v1/admin/tenants", platform_token, "{\"tenantId\":\"t-one\"}"));
  free(expect(201, "POST", "/v1/admin/tenants", platform_token, "{\"tenantId\":\"t-two\"}"));
  char *one_admin = token_for("t-one", "commands:write queries:read admin");
  char *one_reader = token_for("t-one", "queries:read");
  /* A tenant credential, even with admin, is not a platform administrator. */
  cr_assert_eq(call("GET", "/v1/admin/tenants", one_admin, NULL, &r), 403);
  cr_assert_not_null(strstr(r.headers, "insufficient_scope"), "%s", r.headers);
  tk_response_cleanup(&r);
  free(expect(403, "POST", "/v1/admin/tenants", one_admin, "{\"tenantId\":\"t-three\"}"));
  free(expect(403, "GET", "/v1/admin/tenants/t-one", one_admin, NULL));
  free(expect(403, "DELETE", "/v1/admin/tenants/t-two", one_admin, NULL));
  free(expect(404, "GET", "/v1/admin/tenants/t-three", platform_token, NULL));

  /* Its own keys: with admin yes, without it 403; another tenant's: 404 as if absent. */
  char *b = expect(201, "POST", "/v1/admin/tenants/t-one/keys", one_admin, "{\"scopes\":[\"queries:read\"]}");
  expect_field(b, "tenantId", "t-one");
  free(b);
  free(expect(200, "GET", "/v1/admin/tenants/t-one/keys", one_admin, NULL));
  cr_assert_eq(call("GET", "/v1/admin/tenants/t-one/keys", one_reader, NULL, &r), 403);
  cr_assert_not_null(strstr(r.headers, "insufficient_scope"), "%s", r.headers);
  tk_response_cleanup(&r);
  char *other = expect(404, "GET", "/v1/admin/tenants/t-two/keys", one_admin, NULL);
  char *absent = expect(404, "GET", "/v1/admin/tenants/t-nine/keys", platform_token, NULL);
  cr_assert_str_eq(other, absent, "another tenant's keys must look absent");
  free(other);
  free(absent);
  free(expect(404, "POST", "/v1/admin/tenants/t-two/keys", one_admin, "{\"scopes\":[\"queries:read\"]}"));

  /* Deleting a tenant stops its tokens at once (admin-svc's own registry). */
  free(expect(200, "DELETE", "/v1/admin/tenants/t-one", platform_token, NULL));
  free(expect(401, "GET", "/v1/admin/tenants/t-one/keys", one_admin, NULL));
  free(one_admin);
  free(one_reader);
}

/* A second authenticator, as command-svc or query-svc run it. */
typedef struct {
  cqrs_config_t cfg;
  cqrs_registry_t *reg;
  cqrs_control_reader_t *reader;
  cqrs_auth_t *auth;
} verifier_t;

static void verifier_start(verifier_t *v) {
  static cqrs_log_t log = {"e2e-verifier", CQRS_LOG_WARN};
  char brokers[300], prefix[100], file[300];
  snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", env.brokers);
  snprintf(prefix, sizeof prefix, "TOPIC_PREFIX=%s", env.prefix);
  snprintf(file, sizeof file, "AUTH_JWKS_FILE=%s", tk_auth_jwks_path(auth));
  char *envp[] = {brokers, prefix, file, "AUTH_ISSUER=" TK_AUTH_ISSUER, "AUTH_AUDIENCE=" TK_AUTH_AUDIENCE, NULL};
  cqrs_error_t err = {0};
  cr_assert(cqrs_config_load(&v->cfg, envp, 0, &err), "%s", err.message);
  v->reg = cqrs_registry_new();
  v->auth = cqrs_auth_new(&v->cfg, &log, v->reg, &err);
  cr_assert_not_null(v->auth, "%s", err.message);
  v->reader = cqrs_control_reader_start(&v->cfg, &log, v->reg, NULL, NULL, &err);
  cr_assert_not_null(v->reader, "%s", err.message);
}

static void verifier_stop(verifier_t *v) {
  cqrs_control_reader_stop(v->reader);
  cqrs_auth_destroy(v->auth);
  cqrs_registry_destroy(v->reg);
  cqrs_config_cleanup(&v->cfg);
}

/* Polls cqrs_auth_verify until its answer is want or timeout_ms passes. */
static bool await_verify(verifier_t *v, const char *authorization, bool want, int timeout_ms,
                         cqrs_principal_t *who) {
  int64_t deadline = cqrs_time_monotonic_ms() + timeout_ms;
  for (;;) {
    cqrs_error_t err = {0};
    bool ok = cqrs_auth_verify(v->auth, authorization, who, &err);
    if (ok == want) return true;
    if (cqrs_time_monotonic_ms() > deadline) return false;
    nap(20);
  }
}

Test(admin, api_keys_shown_once_verified_elsewhere_and_revoked) {
  free(expect(201, "POST", "/v1/admin/tenants", platform_token, "{\"tenantId\":\"keyed\"}"));
  const char *bad_scopes[] = {"{\"scopes\":[\"platform:admin\"]}", "{\"scopes\":[\"queries:write\"]}",
                              "{\"scopes\":[]}", "{\"scopes\":\"admin\"}", "{}", "{\"scopes\":[7]}"};
  for (size_t i = 0; i < sizeof bad_scopes / sizeof bad_scopes[0]; i++) {
    char *b = expect(400, "POST", "/v1/admin/tenants/keyed/keys", platform_token, bad_scopes[i]);
    expect_field(b, "field", "scopes");
    free(b);
  }
  free(expect(404, "POST", "/v1/admin/tenants/unknown/keys", platform_token, "{\"scopes\":[\"admin\"]}"));

  char *b = expect(201, "POST", "/v1/admin/tenants/keyed/keys", platform_token,
                   "{\"scopes\":[\"commands:write\",\"queries:read\"]}");
  char *key_id = tk_json_string(b, "keyId"), *key = tk_json_string(b, "key");
  cr_assert(key_id && strlen(key_id) == CQRS_KEY_ID_LEN, "%s", b);
  cr_assert(key && strlen(key) == CQRS_API_KEY_LEN, "%s", b);
  cr_assert(strncmp(key, "cqrs_", 5) == 0 && strncmp(key + 5, key_id, CQRS_KEY_ID_LEN) == 0, "%s", b);
  expect_field(b, "tenantId", "keyed");
  cr_assert_not_null(strstr(b, "\"scopes\":[\"commands:write\",\"queries:read\"]"), "%s", b);
  free(b);

  /* Shown once: the list has the key's record, never the key nor its hash. */
  b = expect(200, "GET", "/v1/admin/tenants/keyed/keys", platform_token, NULL);
  cr_assert_not_null(strstr(b, key_id), "%s", b);
  cr_assert_null(strstr(b, key + 5 + CQRS_KEY_ID_LEN + 1), "the secret is listed: %s", b);
  cr_assert_null(strstr(b, "\"key\""), "%s", b);
  cr_assert_null(strstr(b, "sha256"), "%s", b);
  cr_assert_not_null(strstr(b, "\"revoked\":false"), "%s", b);
  free(b);

  /* The key works on another service's authenticator... */
  verifier_t v = {0};
  verifier_start(&v);
  char authorization[CQRS_API_KEY_LEN + 16];
  snprintf(authorization, sizeof authorization, "Bearer %s", key);
  cqrs_principal_t who;
  cr_assert(await_verify(&v, authorization, true, WAIT_MS, &who), "the issued key did not verify within %d ms",
            WAIT_MS);
  cr_assert_str_eq(who.tenant, "keyed");
  cr_assert_eq(who.scopes, CQRS_SCOPE_COMMANDS_WRITE | CQRS_SCOPE_QUERIES_READ);
  /* ...and on admin-svc itself, where it lacks admin. */
  free(expect(403, "GET", "/v1/admin/tenants/keyed/keys", key, NULL));

  /* Revoked: it stops verifying within 5 s. */
  char path[128];
  snprintf(path, sizeof path, "/v1/admin/tenants/keyed/keys/%s", key_id);
  free(expect(404, "DELETE", "/v1/admin/tenants/keyed/keys/0000000000000000", platform_token, NULL));
  free(expect(404, "DELETE", "/v1/admin/tenants/keyless/keys/0000000000000000", platform_token, NULL));
  b = expect(200, "DELETE", path, platform_token, NULL);
  cr_assert_not_null(strstr(b, "\"revoked\":true"), "%s", b);
  free(b);
  int64_t t0 = cqrs_time_monotonic_ms();
  cr_assert(await_verify(&v, authorization, false, 5000, &who), "a revoked key still verifies after 5 s");
  int64_t took = cqrs_time_monotonic_ms() - t0;
  cr_assert(took <= 5000, "revocation took %lld ms", (long long)took);
  b = expect(200, "GET", "/v1/admin/tenants/keyed/keys", platform_token, NULL);
  cr_assert_not_null(strstr(b, "\"revoked\":true"), "%s", b);
  cr_assert_not_null(strstr(b, "\"revokedAt\""), "%s", b);
  free(b);
  free(expect(401, "GET", "/v1/admin/tenants", key, NULL));
  verifier_stop(&v);
  free(key_id);
  free(key);
}

/* Concurrent creates of one tenant in one process: writes are serialized, so
 * exactly one is created and the others conflict. */
#define RACERS 8

static void *race_create(void *arg) {
  tk_response_t r;
  call("POST", "/v1/admin/tenants", platform_token, "{\"tenantId\":\"raced\"}", &r);
  *(int *)arg = r.status;
  tk_response_cleanup(&r);
  return NULL;
}

Test(admin, concurrent_creates_one_wins) {
  pthread_t th[RACERS];
  int status[RACERS] = {0};
  for (int i = 0; i < RACERS; i++) cr_assert_eq(pthread_create(&th[i], NULL, race_create, &status[i]), 0);
  int created = 0, conflicts = 0;
  for (int i = 0; i < RACERS; i++) {
    pthread_join(th[i], NULL);
    created += status[i] == 201;
    conflicts += status[i] == 409;
  }
  cr_assert_eq(created, 1, "%d creates answered 201", created);
  cr_assert_eq(conflicts, RACERS - 1, "%d creates answered 409", conflicts);
}

/* With AUTH=off admin-svc serves loopback only, and there every caller is a
 * platform administrator. 127.0.0.2 is loopback too, but a socket bound to
 * 127.0.0.1 does not answer it, while one bound to every interface does. */
Test(admin, auth_off_serves_127_0_0_1_only) {
  cr_assert(tk_port_open("127.0.0.2", env.admin_port), "admin-svc with AUTH on should listen on every interface");
  tk_env_t off = env;
  off.admin_port = tk_free_port();
  const char *extra[] = {"AUTH=off", "TOPIC_REPLICATION=1", NULL};
  pid_t pid = tk_start(&off, TK_ADMIN, extra);
  bool other = tk_port_open("127.0.0.2", off.admin_port);
  tk_response_t r;
  int status = call_port(off.admin_port, "POST", "/v1/admin/tenants", "{\"tenantId\":\"local\"}", &r);
  tk_response_cleanup(&r);
  tk_stop(pid, SIGTERM);
  cr_assert_not(other, "admin-svc with AUTH=off answered on 127.0.0.2");
  cr_assert_eq(status, 201, "AUTH=off on loopback: create answered %d", status);
}

Test(admin, paths_outside_the_api) {
  static const struct {
    const char *method, *path;
  } paths[] = {{"GET", "/v1/admin/tenants/acme/other"},
               {"DELETE", "/v1/admin/tenants/acme/keys/XYZ"},
               {"GET", "/v1/admin/tenants/acme/keys/0123456789abcdef/more"},
               {"GET", "/v1/admin/tenants/Bad_Id"}};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    tk_response_t r;
    /* Nothing is said about a path before the credential is checked. */
    cr_assert_eq(call(paths[i].method, paths[i].path, NULL, NULL, &r), 401, "%s", paths[i].path);
    tk_response_cleanup(&r);
    free(expect(404, paths[i].method, paths[i].path, platform_token, NULL));
  }
  /* A method a path does not take: 405 naming the path's own methods, also
   * only past the credential. */
  static const struct {
    const char *method, *path, *allow;
  } wrong[] = {{"PUT", "/v1/admin/tenants/acme", "Allow: GET, HEAD, DELETE\r\n"},
               {"GET", "/v1/admin/tenants/acme/keys/0123456789abcdef", "Allow: DELETE\r\n"},
               {"DELETE", "/v1/admin/tenants/acme/keys", "Allow: GET, HEAD, POST\r\n"}};
  for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
    tk_response_t r;
    cr_assert_eq(call(wrong[i].method, wrong[i].path, NULL, "{}", &r), 401, "%s", wrong[i].path);
    cr_expect(r.headers && !strstr(r.headers, "Allow:"), "a 401 names the path's methods: %s", r.headers);
    tk_response_cleanup(&r);
    cr_assert_eq(call(wrong[i].method, wrong[i].path, platform_token, "{}", &r), 405, "%s", wrong[i].path);
    cr_expect(r.headers && strstr(r.headers, wrong[i].allow), "%s %s: %s", wrong[i].method, wrong[i].path,
              r.headers);
    tk_response_cleanup(&r);
  }
}

/* The control plane's routes with AUTH=on: a tenant's administrator replays
 * (dry run) its own tenant only and sees its own audit records; a key's
 * secret never reaches the audit trail, its keyId and the actor do. */
Test(admin, control_plane_scoped_and_audited) {
  free(expect(201, "POST", "/v1/admin/tenants", platform_token, "{\"tenantId\":\"ctl-a\"}"));
  free(expect(201, "POST", "/v1/admin/tenants", platform_token, "{\"tenantId\":\"ctl-b\"}"));
  char *b = expect(201, "POST", "/v1/admin/tenants/ctl-a/keys", platform_token, "{\"scopes\":[\"admin\"]}");
  char *key = tk_json_string(b, "key"), *key_id = tk_json_string(b, "keyId");
  cr_assert(key && key_id, "%s", b);
  free(b);
  char *a_admin = token_for("ctl-a", "admin"), *a_reader = token_for("ctl-a", "queries:read");

  const char *dry = "{\"projection\":\"user_profiles\",\"from\":\"beginning\"}";
  b = expect(200, "POST", "/v1/admin/replays", a_admin, dry);
  expect_field(b, "tenant", "ctl-a"); /* a tenant's administrator replays its own read models */
  free(b);
  b = expect(200, "POST", "/v1/admin/replays", key, dry); /* the API key with scope admin */
  expect_field(b, "tenant", "ctl-a");
  free(b);
  free(expect(400, "POST", "/v1/admin/replays", a_admin,
              "{\"projection\":\"user_profiles\",\"from\":\"beginning\",\"tenant\":\"ctl-b\"}"));
  free(expect(403, "POST", "/v1/admin/replays", a_reader, dry));
  free(expect(401, "GET", "/v1/admin/replays", NULL, NULL));
  free(expect(403, "POST", "/v1/admin/projections/user_profiles/pause", a_admin, NULL));
  b = expect(200, "POST", "/v1/admin/replays", platform_token,
             "{\"projection\":\"user_profiles\",\"from\":\"beginning\",\"tenant\":\"ctl-b\"}");
  expect_field(b, "tenant", "ctl-b");
  free(b);

  b = expect(200, "GET", "/v1/admin/audit?limit=500", platform_token, NULL);
  cr_expect(strstr(b, "\"action\":\"tenant.create\",\"target\":\"ctl-a\""), "%s", b);
  cr_expect(strstr(b, "\"action\":\"key.issue\""), "%s", b);
  cr_expect(strstr(b, key_id), "the keyId is the key's name in the audit: %s", b);
  cr_expect_null(strstr(b, key), "a key's secret reached the audit trail");
  char who[64];
  snprintf(who, sizeof who, "\"who\":\"apikey:%s\"", key_id);
  cr_expect(strstr(b, who), "the key's dry run is not attributed to it: %s", b);
  cr_expect(strstr(b, "\"outcome\":\"refused\",\"status\":403"), "%s", b);
  free(b);
  b = expect(200, "GET", "/v1/admin/audit?limit=500", a_admin, NULL);
  cr_expect(strstr(b, "\"tenant\":\"ctl-a\""), "%s", b);
  cr_expect_null(strstr(b, "\"tenant\":\"ctl-b\""), "another tenant's audit records: %s", b);
  cr_expect_null(strstr(b, "\"tenant\":null"), "a platform record shown to a tenant: %s", b);
  free(b);
  free(key), free(key_id), free(a_admin), free(a_reader);
}
