/* Credentials as every service's gate reads them: the Authorization value
 * through cqrs_auth_verify (Bearer parsing, API keys, JWT header, alg and key
 * choice, signature, claims), with an authenticator configured as in
 * production: a JWKS file (an RS256 and an ES256 key made at start) and an
 * HS256 secret, issuer and audience, and a registry with tenants and a key.
 *
 * Input: its first byte picks how the rest is used:
 *   0  the Authorization value itself ("Bearer ...", an API key, anything);
 *   1  "<header JSON>\n<claims JSON>", made into a JWT signed with the HS256
 *      secret, so the claims checks are reached with any header and claims;
 *   2  "<claims JSON>", signed with the ES256 key of the JWKS.
 * Properties: a refusal is UNAUTHENTICATED and its reason never contains the
 * credential; an accepted credential names an active tenant (or is a platform
 * administrator) and a subject an event can record as its actor, with its
 * kind. */
#include "fuzz.h"

#include "jwt_craft.h"
#include "token.h"

#include "cqrs/auth.h"

#include <unistd.h>

#define ISS "https://issuer.test/"
#define AUD "cqrs-api"
#define HS_SECRET "an-hs256-secret-of-at-least-32-bytes!"

/* The key "cqrs_00000000000000aa_<0123456789abcdef x4>" of tenant acme. */
#define KEY_RECORD                                                                                             \
  "{\"keyId\":\"00000000000000aa\",\"tenantId\":\"acme\",\"scopes\":[\"queries:read\",\"commands:write\"],"    \
  "\"sha256\":\"a8ae6e6ee929abea3afcfc5258c8ccd6f85273e0d4626d26c7279f3250f77c8e\","                          \
  "\"createdAt\":\"2026-01-01T00:00:00Z\",\"revoked\":false}"

static cqrs_auth_t *auth;
static cqrs_registry_t *reg;
static cqrs_config_t cfg;
static char *es_priv;
static char dir[256], jwks_path[300];

static void cleanup(void) {
  cqrs_auth_destroy(auth);
  cqrs_registry_destroy(reg);
  cqrs_config_cleanup(&cfg);
  free(es_priv);
  unlink(jwks_path);
  rmdir(dir);
}

static void put(const char *key, const char *value) {
  cqrs_error_t err = {0};
  FUZZ_CHECK(cqrs_registry_apply(reg, key, strlen(key), value, strlen(value), &err), "setup: %s", err.message);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  cqrs_error_t err = {0};
  char *rs_priv, *rs_jwks, *es_jwks;
  FUZZ_CHECK(cqrs_token_keygen("RS256", &rs_priv, &rs_jwks, &err), "keygen: %s", err.message);
  FUZZ_CHECK(cqrs_token_keygen("ES256", &es_priv, &es_jwks, &err), "keygen: %s", err.message);
  const char *both[] = {rs_jwks, es_jwks};
  char *set = tk_jwks_merge(both, 2);
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/cqrs-fuzz-auth-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
  FUZZ_CHECK(mkdtemp(dir), "mkdtemp");
  snprintf(jwks_path, sizeof jwks_path, "%s/jwks.json", dir);
  FILE *f = fopen(jwks_path, "w");
  FUZZ_CHECK(f && fputs(set, f) >= 0 && fclose(f) == 0, "writing the JWKS");
  free(set), free(rs_priv), free(rs_jwks), free(es_jwks);

  reg = cqrs_registry_new();
  put("tenant/acme", "{\"tenantId\":\"acme\",\"state\":\"active\",\"createdAt\":\"2026-01-01T00:00:00Z\"}");
  put("tenant/gone", "{\"tenantId\":\"gone\",\"state\":\"deleted\",\"createdAt\":\"2026-01-01T00:00:00Z\","
                     "\"deletedAt\":\"2026-01-02T00:00:00Z\"}");
  put("apikey/00000000000000aa", KEY_RECORD);
  char path_var[320];
  snprintf(path_var, sizeof path_var, "AUTH_JWKS_FILE=%s", jwks_path);
  char *env[] = {path_var, "AUTH_ISSUER=" ISS, "AUTH_AUDIENCE=" AUD, "AUTH_HS256_SECRET=" HS_SECRET,
                 "LOG_LEVEL=error", NULL};
  FUZZ_CHECK(cqrs_config_load(&cfg, env, 8080, &err), "config: %s", err.message);
  static const cqrs_log_t quiet = {.service = "fuzz", .level = CQRS_LOG_ERROR};
  auth = cqrs_auth_new(&cfg, &quiet, reg, &err);
  FUZZ_CHECK(auth, "auth: %s", err.message);
  atexit(cleanup);
  return 0;
}

static void verify(const char *authorization, const char *credential) {
  cqrs_principal_t who;
  cqrs_error_t err = {0};
  if (cqrs_auth_verify(auth, authorization, &who, &err)) {
    FUZZ_CHECK(cqrs_event_authid_valid(who.subject, strlen(who.subject)) && who.kind,
               "accepted with a subject no event can record: \"%s\"", who.subject);
    FUZZ_CHECK(who.tenant[0] ? cqrs_registry_tenant_state(reg, who.tenant) == CQRS_TENANT_ACTIVE
                             : (who.scopes & CQRS_SCOPE_PLATFORM) != 0,
               "accepted for tenant \"%s\"", who.tenant);
  } else {
    FUZZ_CHECK(err.code == CQRS_ERR_UNAUTHENTICATED, "refused with code %d", (int)err.code);
    FUZZ_CHECK(strlen(credential) < 8 || !strstr(err.message, credential), "the reason holds the credential");
  }
}

static void verify_token(char *token) {
  if (!token) return;
  size_t n = strlen(token) + 8;
  char *h = malloc(n);
  snprintf(h, n, "Bearer %s", token);
  verify(h, token);
  free(h);
  free(token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  char *text = fuzz_text(data + 1, size - 1), *end = text + size - 1, *rest = text;
  switch (data[0] % 3) {
  case 0:
    verify(text, text);
    break;
  case 1: {
    char *header = fuzz_next(&rest, end, '\n', NULL);
    verify_token(tk_jwt_hs256(header, rest ? rest : "", HS_SECRET, strlen(HS_SECRET)));
    break;
  }
  case 2:
    verify_token(cqrs_token_sign(es_priv, text, NULL));
    break;
  }
  free(text);
  return 0;
}
