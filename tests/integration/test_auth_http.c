/* Authentication over real loopback HTTP: a JWKS served by a cqrs_http_server
 * in the test (rotated to a new kid while the authenticator runs), and the
 * gate cqrs_auth_http in front of a route: status codes, WWW-Authenticate,
 * JSON bodies, and logs that never hold the credential. */
#include "cqrs/auth.h"
#include "cqrs/http.h"
#include "jwt_craft.h"
#include "testkit.h"
#include "token.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ISS "https://issuer.test/"
#define AUD "cqrs-api"

/* The identity provider's JWKS endpoint: serves whatever jwks holds. */
static pthread_mutex_t idp_mu = PTHREAD_MUTEX_INITIALIZER;
static char *idp_jwks;
static int idp_fetches;

static void serve_jwks(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  pthread_mutex_lock(&idp_mu);
  idp_fetches++;
  cqrs_http_reply_json(req, 200, idp_jwks, strlen(idp_jwks));
  pthread_mutex_unlock(&idp_mu);
}

static void idp_set(const char *jwks) {
  pthread_mutex_lock(&idp_mu);
  free(idp_jwks);
  idp_jwks = strdup(jwks);
  pthread_mutex_unlock(&idp_mu);
}

static int idp_count(void) {
  pthread_mutex_lock(&idp_mu);
  int n = idp_fetches;
  pthread_mutex_unlock(&idp_mu);
  return n;
}

/* A protected route: needs queries:read, answers the principal's tenant. */
static cqrs_auth_t *gate_auth;
static void protected_route(cqrs_http_req_t *req, void *ctx) {
  (void)ctx;
  cqrs_principal_t who;
  if (!cqrs_auth_http(gate_auth, req, CQRS_SCOPE_QUERIES_READ, &who)) return;
  char body[128];
  int n = snprintf(body, sizeof body, "{\"tenant\":\"%s\"}", who.tenant);
  cqrs_http_reply_json(req, 200, body, (size_t)n);
}

static cqrs_http_server_t *srv;
static cqrs_registry_t *reg;
static cqrs_config_t cfg;
static char *key1, *jwks1, *key2, *jwks2;
static const cqrs_log_t log_info = {.service = "test", .level = CQRS_LOG_INFO};

static void setup(void) {
  cqrs_error_t err;
  cr_assert(cqrs_token_keygen("ES256", &key1, &jwks1, &err), "%s", err.message);
  cr_assert(cqrs_token_keygen("RS256", &key2, &jwks2, &err), "%s", err.message);
  idp_set(jwks1);
  srv = cqrs_http_server_new(0, 1, 1 << 16, &err);
  cr_assert_not_null(srv, "%s", err.message);
  cqrs_http_server_route(srv, "GET", "/jwks", "jwks", serve_jwks, NULL);
  cqrs_http_server_route(srv, "GET", "/v1/things", "things", protected_route, NULL);
  cr_assert(cqrs_http_server_start(srv, &err), "%s", err.message);
  reg = cqrs_registry_new();
  const char *k = "tenant/acme", *v = "{\"tenantId\":\"acme\",\"state\":\"active\",\"createdAt\":\"2026-01-01T00:00:00Z\"}";
  cr_assert(cqrs_registry_apply(reg, k, strlen(k), v, strlen(v), &err), "%s", err.message);
  char url[128];
  snprintf(url, sizeof url, "AUTH_JWKS_URL=http://127.0.0.1:%d/jwks", cqrs_http_server_port(srv));
  char *env[] = {url, "AUTH_ISSUER=" ISS, "AUTH_AUDIENCE=" AUD, NULL};
  cr_assert(cqrs_config_load(&cfg, env, 8080, &err), "%s", err.message);
  gate_auth = cqrs_auth_new(&cfg, &log_info, reg, &err);
  cr_assert_not_null(gate_auth, "%s", err.message);
}

static void teardown(void) {
  cqrs_http_server_destroy(srv);
  cqrs_auth_destroy(gate_auth);
  cqrs_registry_destroy(reg);
  cqrs_config_cleanup(&cfg);
  free(key1), free(jwks1), free(key2), free(jwks2), free(idp_jwks);
}

TestSuite(auth_http, .init = setup, .fini = teardown, .timeout = 60);

static char *token(const char *key, const char *tenant, const char *scope) {
  char *claims = cqrs_token_claims(ISS, AUD, "user-7", tenant, scope, (int64_t)time(NULL), 600);
  cqrs_error_t err;
  char *t = cqrs_token_sign(key, claims, &err);
  cr_assert_not_null(t, "%s", err.message);
  free(claims);
  return t;
}

static bool verifies(const char *t, cqrs_principal_t *who, cqrs_error_t *err) {
  char h[4096];
  snprintf(h, sizeof h, "Bearer %s", t);
  return cqrs_auth_verify(gate_auth, h, who, err);
}

Test(auth_http, kid_misses_are_rate_limited) {
  cqrs_principal_t who;
  cqrs_error_t err;
  char *t1 = token(key1, "acme", "queries:read"), *t2 = token(key2, "acme", "queries:read");
  cr_assert(verifies(t1, &who, &err), "%s", err.message);
  int before = idp_count();
  cr_assert_not(verifies(t2, &who, &err), "key 2 is not published yet");
  cr_assert_str_eq(err.message, "unknown kid");
  cr_assert_eq(idp_count(), before + 1, "an unknown kid fetches the JWKS at once");
  /* made-up kids (or a key published just after that fetch) fetch nothing
   * more within 10 s: a flood of them cannot hammer the identity provider */
  idp_set(jwks2);
  for (int i = 0; i < 20; i++) cr_assert_not(verifies(t2, &who, &err));
  cr_assert_eq(idp_count(), before + 1, "kid misses within 10 s of the last fetch fetch nothing");
  free(t1), free(t2);
}

Test(auth_http, new_kid_fetched_on_first_sight) {
  cqrs_principal_t who;
  cqrs_error_t err;
  char *t1 = token(key1, "acme", "queries:read"), *t2 = token(key2, "acme", "queries:read");
  cr_assert(verifies(t1, &who, &err), "%s", err.message);
  const char *both[] = {jwks1, jwks2};
  char *set = tk_jwks_merge(both, 2);
  idp_set(set);
  free(set);
  int before = idp_count();
  cr_assert(verifies(t2, &who, &err), "a new kid is accepted without recreating the authenticator: %s", err.message);
  cr_assert_str_eq(who.tenant, "acme");
  cr_assert_eq(idp_count(), before + 1, "one fetch for the unknown kid");
  cr_assert(verifies(t1, &who, &err), "key 1 is still published: %s", err.message);
  free(t1), free(t2);
}

static bool header_line(const tk_response_t *r, const char *line) {
  char want[512];
  snprintf(want, sizeof want, "\r\n%s\r\n", line);
  return r->headers && strstr(r->headers, want);
}

static tk_response_t get(const char *headers) {
  tk_response_t r;
  tk_http_headers("GET", cqrs_http_server_port(srv), "/v1/things", headers, NULL, 0, &r);
  return r;
}

static void assert_error_body(const tk_response_t *r) {
  char *e = tk_json_string(r->body, "error");
  cr_assert_not_null(e, "a JSON error body: %s", r->body);
  free(e);
}

Test(auth_http, gate_replies) {
  char *good = token(key1, "acme", "queries:read"), *no_scope = token(key1, "acme", "commands:write");
  char *expired_claims = cqrs_token_claims(ISS, AUD, "user-7", "acme", "queries:read", (int64_t)time(NULL) - 3600, 60);
  cqrs_error_t err;
  char *expired = cqrs_token_sign(key1, expired_claims, &err);
  char h[4096];
  const char *creds[] = {good, no_scope, expired};

  FILE *cap = tmpfile();
  fflush(stderr);
  int saved = dup(2);
  dup2(fileno(cap), 2);

  tk_response_t r = get("");
  cr_assert_eq(r.status, 401);
  cr_assert(header_line(&r, "WWW-Authenticate: Bearer"), "%s", r.headers);
  assert_error_body(&r);
  tk_response_cleanup(&r);

  snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", expired);
  r = get(h);
  cr_assert_eq(r.status, 401);
  cr_assert(header_line(&r, "WWW-Authenticate: Bearer error=\"invalid_token\""), "%s", r.headers);
  assert_error_body(&r);
  cr_assert_null(strstr(r.body, expired));
  tk_response_cleanup(&r);

  r = get("Authorization: Bearer not-a-token\r\n");
  cr_assert_eq(r.status, 401);
  cr_assert(header_line(&r, "WWW-Authenticate: Bearer error=\"invalid_token\""), "%s", r.headers);
  tk_response_cleanup(&r);

  snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", no_scope);
  r = get(h);
  cr_assert_eq(r.status, 403);
  cr_assert(header_line(&r, "WWW-Authenticate: Bearer error=\"insufficient_scope\", scope=\"queries:read\""), "%s",
            r.headers);
  assert_error_body(&r);
  tk_response_cleanup(&r);

  snprintf(h, sizeof h, "Authorization: Bearer %s\r\nX-Tenant-Id: globex\r\n", good);
  r = get(h);
  cr_assert_eq(r.status, 403, "a tenant header never selects a tenant; another one is 403");
  cr_assert_null(strstr(r.headers, "WWW-Authenticate"));
  assert_error_body(&r);
  tk_response_cleanup(&r);

  snprintf(h, sizeof h, "Authorization: Bearer %s\r\nX-Tenant-Id: acme\r\n", good);
  r = get(h);
  cr_assert_eq(r.status, 200, "%s", r.body);
  tk_response_cleanup(&r);

  snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", good);
  r = get(h);
  cr_assert_eq(r.status, 200, "%s", r.body);
  char *t = tk_json_string(r.body, "tenant");
  cr_assert_str_eq(t, "acme");
  free(t);
  tk_response_cleanup(&r);

  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  long n = ftell(cap);
  char *logs = calloc(1, (size_t)n + 1);
  rewind(cap);
  cr_assert_eq(fread(logs, 1, (size_t)n, cap), (size_t)n);
  fclose(cap);

  cr_assert(strstr(logs, "token expired"), "the reason is logged: %s", logs);
  cr_assert(strstr(logs, "/v1/things"), "with the route path: %s", logs);
  cr_assert(strstr(logs, "\"missing\""), "%s", logs);
  for (size_t i = 0; i < 3; i++) {
    cr_assert_null(strstr(logs, creds[i]), "a credential reached the log");
    /* not even its signature part on its own */
    cr_assert_null(strstr(logs, strrchr(creds[i], '.') + 1));
  }
  cr_assert_null(strstr(logs, "not-a-token"));
  free(logs);
  free(good), free(no_scope), free(expired), free(expired_claims);
}
