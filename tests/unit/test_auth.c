/* Authentication (cqrs/auth.h) without a network: JWTs from a JWKS file
 * (every token attack answered as invalid), scopes, API keys against a
 * registry, the cache, AUTH=off and the settings that are refused. */
#include "cqrs/auth.h"
#include "jwt_craft.h"
#include "token.h"
#include "unit.h"

#include <cjose/cjose.h>

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define ISS "https://issuer.test/"
#define AUD "cqrs-api"
#define HS_SECRET "an-hs256-secret-of-at-least-32-bytes!"

static const cqrs_log_t quiet = {.service = "test", .level = CQRS_LOG_ERROR};
static char dir[256], jwks_path[300];
static char *rsa_priv, *rsa_jwks, *ec_priv, *ec_jwks, *other_priv, *other_jwks;
static cqrs_registry_t *reg;
static cqrs_auth_t *auth;
static cqrs_config_t cfg;

static void write_text(const char *path, const char *text) {
  char tmp[320];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
  cr_assert_eq(rename(tmp, path), 0); /* a reader never sees half a file */
}

static void apply(const char *key, const char *value) {
  cqrs_error_t err;
  cr_assert(cqrs_registry_apply(reg, key, strlen(key), value, value ? strlen(value) : 0, &err), "%s: %s", key,
            err.message);
}

static void tenant(const char *t, const char *state) {
  char key[64], value[256];
  snprintf(key, sizeof key, "tenant/%s", t);
  snprintf(value, sizeof value, "{\"tenantId\":\"%s\",\"state\":\"%s\",\"createdAt\":\"2026-01-01T00:00:00Z\"%s}", t,
           state, strcmp(state, "deleted") == 0 ? ",\"deletedAt\":\"2026-01-02T00:00:00Z\"" : "");
  apply(key, value);
}

/* An authenticator over env (NULL-terminated "NAME=value"); NULL with *err. */
static cqrs_auth_t *make(char **env, cqrs_error_t *err) {
  cqrs_config_cleanup(&cfg);
  cr_assert(cqrs_config_load(&cfg, env, 8080, err), "%s", err->message);
  return cqrs_auth_new(&cfg, &quiet, reg, err);
}

static void setup(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/cqrs-auth-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
  cr_assert_not_null(mkdtemp(dir));
  snprintf(jwks_path, sizeof jwks_path, "%s/jwks.json", dir);
  cqrs_error_t err;
  cr_assert(cqrs_token_keygen("RS256", &rsa_priv, &rsa_jwks, &err), "%s", err.message);
  cr_assert(cqrs_token_keygen("ES256", &ec_priv, &ec_jwks, &err), "%s", err.message);
  cr_assert(cqrs_token_keygen("ES256", &other_priv, &other_jwks, &err), "%s", err.message);
  const char *both[] = {rsa_jwks, ec_jwks};
  char *set = tk_jwks_merge(both, 2);
  write_text(jwks_path, set);
  free(set);
  reg = cqrs_registry_new();
  tenant("acme", "active");
  tenant("globex", "active");
  tenant("gone", "deleted");
  char path_var[320];
  snprintf(path_var, sizeof path_var, "AUTH_JWKS_FILE=%s", jwks_path);
  char *env[] = {path_var, "AUTH_ISSUER=" ISS, "AUTH_AUDIENCE=" AUD, "AUTH_LEEWAY_S=30", NULL};
  auth = make(env, &err);
  cr_assert_not_null(auth, "%s", err.message);
}

static void teardown(void) {
  cqrs_auth_destroy(auth);
  cqrs_registry_destroy(reg);
  cqrs_config_cleanup(&cfg);
  free(rsa_priv), free(rsa_jwks), free(ec_priv), free(ec_jwks), free(other_priv), free(other_jwks);
  unlink(jwks_path);
  rmdir(dir);
}

TestSuite(auth, .init = setup, .fini = teardown);

static int64_t now(void) { return (int64_t)time(NULL); }

/* A token signed by key with the usual claims for tenant acme. */
static char *token(const char *key, const char *tenant_id, const char *scope) {
  char *claims = cqrs_token_claims(ISS, AUD, "user-1", tenant_id, scope, now(), 600);
  cqrs_error_t err;
  char *t = cqrs_token_sign(key, claims, &err);
  cr_assert_not_null(t, "%s", err.message);
  free(claims);
  return t;
}

static char *signed_claims(const char *key, const char *claims) {
  cqrs_error_t err;
  char *t = cqrs_token_sign(key, claims, &err);
  cr_assert_not_null(t, "%s", err.message);
  return t;
}

static bool verify(cqrs_auth_t *a, const char *credential, cqrs_principal_t *who, cqrs_error_t *err) {
  char header[12000];
  snprintf(header, sizeof header, "Bearer %s", credential);
  return cqrs_auth_verify(a, header, who, err);
}

static void assert_ok(const char *credential, const char *want_tenant, unsigned want_scopes) {
  cqrs_principal_t who;
  cqrs_error_t err;
  cr_assert(verify(auth, credential, &who, &err), "refused: %s", err.message);
  cr_assert_str_eq(who.tenant, want_tenant);
  cr_assert_eq(who.scopes, want_scopes);
}

/* Refused as invalid, with reason (a substring of the logged reason) and a
 * message that never holds the credential. */
static void assert_invalid(const char *credential, const char *reason) {
  cqrs_principal_t who;
  cqrs_error_t err;
  cr_assert_not(verify(auth, credential, &who, &err), "accepted a token that should fail with %s", reason);
  cr_assert_eq(err.code, CQRS_ERR_UNAUTHENTICATED);
  cr_assert(strstr(err.message, reason), "reason \"%s\", expected \"%s\"", err.message, reason);
  cr_assert(!*credential || !strstr(err.message, credential));
  cr_assert_str_eq(who.tenant, "", "nothing of a refused credential is left in who");
}

static char *kid_of(const char *jwk) { return tk_jwk_member(jwk, "kid"); }

/* The claims of a token with exp, nbf and aud chosen. */
static char *claims_with(const char *aud_json, int64_t exp, const char *extra) {
  char *c = malloc(512);
  snprintf(c, 512,
           "{\"iss\":\"" ISS "\",\"aud\":%s,\"sub\":\"user-1\",\"tenant\":\"acme\",\"scope\":\"queries:read\","
           "\"exp\":%lld%s}",
           aud_json, (long long)exp, extra ? extra : "");
  return c;
}

/* Scopes ---------------------------------------------------------------- */

Test(auth, scopes_parse_names) {
  cr_assert_eq(cqrs_scopes_parse("commands:write queries:read"), CQRS_SCOPE_COMMANDS_WRITE | CQRS_SCOPE_QUERIES_READ);
  cr_assert_eq(cqrs_scopes_parse("  admin   openid profile "), CQRS_SCOPE_ADMIN, "unknown names are ignored");
  cr_assert_eq(cqrs_scopes_parse("platform:admin"), CQRS_SCOPE_PLATFORM);
  cr_assert_eq(cqrs_scopes_parse("admin:x adminx queries:readx commands:write:"), 0, "whole names only");
  cr_assert_eq(cqrs_scopes_parse(""), 0);
  cr_assert_eq(cqrs_scopes_parse(NULL), 0);
  for (unsigned bit = 1; bit <= CQRS_SCOPE_PLATFORM; bit <<= 1)
    cr_assert_eq(cqrs_scopes_parse(cqrs_scope_name(bit)), bit);
  cr_assert_null(cqrs_scope_name(1u << 20));
}

Test(auth, require_names_the_missing_scope) {
  cqrs_principal_t who = {.tenant = "acme", .subject = "s", .scopes = CQRS_SCOPE_QUERIES_READ};
  cqrs_error_t err;
  cr_assert(cqrs_auth_require(&who, CQRS_SCOPE_QUERIES_READ, &err));
  cr_assert(cqrs_auth_require(&who, 0, &err));
  cr_assert_not(cqrs_auth_require(&who, CQRS_SCOPE_QUERIES_READ | CQRS_SCOPE_COMMANDS_WRITE, &err));
  cr_assert_eq(err.code, CQRS_ERR_FORBIDDEN);
  cr_assert(strstr(err.message, "commands:write"), "%s", err.message);
}

/* JWTs that verify ------------------------------------------------------- */

Test(auth, rs256_and_es256_accepted) {
  char *rs = token(rsa_priv, "acme", "queries:read commands:write");
  char *es = token(ec_priv, "globex", "admin");
  assert_ok(rs, "acme", CQRS_SCOPE_QUERIES_READ | CQRS_SCOPE_COMMANDS_WRITE);
  assert_ok(es, "globex", CQRS_SCOPE_ADMIN);
  cqrs_principal_t who;
  cr_assert(verify(auth, rs, &who, NULL));
  cr_assert_str_eq(who.subject, "user-1");
  cr_assert_str_eq(who.kind, CQRS_AUTHTYPE_APP_USER, "what its events record");
  cr_assert(cqrs_auth_enabled(auth));
  free(rs);
  free(es);
}

Test(auth, scheme_is_case_insensitive_and_spaces_tolerated) {
  char *t = token(ec_priv, "acme", "queries:read"), h[4096];
  cqrs_principal_t who;
  cqrs_error_t err;
  snprintf(h, sizeof h, "bearer   %s ", t);
  cr_assert(cqrs_auth_verify(auth, h, &who, &err), "%s", err.message);
  free(t);
}

Test(auth, platform_admin_needs_no_tenant) {
  char *t = token(ec_priv, NULL, "platform:admin");
  assert_ok(t, "", CQRS_SCOPE_PLATFORM);
  free(t);
  t = token(ec_priv, NULL, "admin queries:read");
  assert_invalid(t, "tenant claim missing");
  free(t);
}

Test(auth, within_leeway_accepted) {
  char *c = claims_with("\"" AUD "\"", now() - 10, NULL); /* expired 10 s ago; leeway 30 */
  char *t = signed_claims(ec_priv, c);
  assert_ok(t, "acme", CQRS_SCOPE_QUERIES_READ);
  free(c), free(t);
  char extra[64];
  snprintf(extra, sizeof extra, ",\"nbf\":%lld", (long long)now() + 10);
  c = claims_with("\"" AUD "\"", now() + 600, extra);
  t = signed_claims(ec_priv, c);
  assert_ok(t, "acme", CQRS_SCOPE_QUERIES_READ);
  free(c), free(t);
}

Test(auth, aud_array_containing_ours_accepted) {
  char *c = claims_with("[\"other\",\"" AUD "\"]", now() + 600, NULL);
  char *t = signed_claims(rsa_priv, c);
  assert_ok(t, "acme", CQRS_SCOPE_QUERIES_READ);
  free(c), free(t);
}

/* Token attacks ----------------------------------------------------------- */

Test(auth, alg_none_refused) {
  char *kid = kid_of(ec_priv), hdr[256];
  char *c = claims_with("\"" AUD "\"", now() + 600, NULL);
  snprintf(hdr, sizeof hdr, "{\"alg\":\"none\",\"kid\":\"%s\"}", kid);
  char *t = tk_jwt_craft(hdr, c, NULL, 0);
  assert_invalid(t, "alg not allowed");
  free(t);
  t = tk_jwt_craft("{\"alg\":\"none\"}", c, "x", 1);
  assert_invalid(t, "alg not allowed");
  free(t);
  t = tk_jwt_craft("{\"alg\":\"RS512\"}", c, "x", 1);
  assert_invalid(t, "alg not allowed");
  free(t);
  t = tk_jwt_craft("{\"typ\":\"JWT\"}", c, "x", 1); /* cjose refuses a header without alg */
  assert_invalid(t, "");
  free(t), free(c), free(kid);
}

/* The RS256 -> HS256 confusion: an HMAC whose key is the public key a
 * careless verifier would use as the HMAC secret. */
static void assert_hs256_confusion_refused(const char *reason) {
  char *kid = kid_of(rsa_priv), hdr[256];
  snprintf(hdr, sizeof hdr, "{\"alg\":\"HS256\",\"kid\":\"%s\"}", kid);
  char *c = claims_with("\"" AUD "\"", now() + 600, NULL);
  char *pem = tk_jwks_rsa_pem(rsa_jwks), *jwk = tk_jwks_first(rsa_jwks);
  cr_assert_not_null(pem);
  cr_assert(strstr(pem, "BEGIN PUBLIC KEY"));
  const char *keys[] = {pem, jwk, rsa_jwks};
  for (size_t i = 0; i < 3; i++) {
    char *t = tk_jwt_hs256(hdr, c, keys[i], strlen(keys[i]));
    assert_invalid(t, reason);
    free(t);
  }
  free(pem), free(jwk), free(c), free(kid);
}

Test(auth, hs256_with_the_rsa_public_key_refused) {
  assert_hs256_confusion_refused("HS256 not allowed");
}

Test(auth, hs256_only_with_the_configured_secret) {
  cqrs_auth_destroy(auth);
  char path_var[320];
  snprintf(path_var, sizeof path_var, "AUTH_JWKS_FILE=%s", jwks_path);
  char *env[] = {path_var, "AUTH_ISSUER=" ISS, "AUTH_AUDIENCE=" AUD, "AUTH_HS256_SECRET=" HS_SECRET, NULL};
  cqrs_error_t err;
  auth = make(env, &err);
  cr_assert_not_null(auth, "%s", err.message);
  /* the JWKS's keys are never HMAC keys, even with HS256 on */
  assert_hs256_confusion_refused("bad signature");
  char *c = claims_with("\"" AUD "\"", now() + 600, NULL);
  char *t = tk_jwt_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", c, HS_SECRET, strlen(HS_SECRET));
  assert_ok(t, "acme", CQRS_SCOPE_QUERIES_READ);
  free(t);
  t = tk_jwt_hs256("{\"alg\":\"HS256\"}", c, HS_SECRET "x", strlen(HS_SECRET) + 1);
  assert_invalid(t, "bad signature");
  free(t), free(c);
}

Test(auth, expired_refused) {
  char *c = claims_with("\"" AUD "\"", now() - 31, NULL);
  char *t = signed_claims(ec_priv, c);
  assert_invalid(t, "expired");
  free(c), free(t);
  t = signed_claims(ec_priv, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"tenant\":\"acme\"}");
  assert_invalid(t, "exp missing");
  free(t);
  t = signed_claims(ec_priv, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"tenant\":\"acme\",\"exp\":\"soon\"}");
  assert_invalid(t, "exp missing or not a NumericDate");
  free(t);
}

/* The sub is recorded in every event the token causes (ce_authid): one no
 * event could carry is refused. */
Test(auth, a_sub_no_event_can_record_refused) {
  char sub[CQRS_EVENT_AUTHID_MAX + 2];
  memset(sub, 'u', sizeof sub - 1);
  sub[sizeof sub - 1] = '\0';
  const char *bad[] = {"", "eve\n", "eve\x1b[2J", sub};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *c = cqrs_token_claims(ISS, AUD, bad[i], "acme", "queries:read", now(), 600);
    char *t = signed_claims(ec_priv, c);
    assert_invalid(t, "sub missing, empty, too long or with a control character");
    free(c), free(t);
  }
  sub[CQRS_EVENT_AUTHID_MAX] = '\0'; /* the longest is fine */
  char *c = cqrs_token_claims(ISS, AUD, sub, "acme", "queries:read", now(), 600), *t = signed_claims(ec_priv, c);
  assert_ok(t, "acme", CQRS_SCOPE_QUERIES_READ);
  free(c), free(t);
}

Test(auth, not_yet_valid_refused) {
  char extra[64];
  snprintf(extra, sizeof extra, ",\"nbf\":%lld", (long long)now() + 120);
  char *c = claims_with("\"" AUD "\"", now() + 600, extra);
  char *t = signed_claims(ec_priv, c);
  assert_invalid(t, "not yet valid");
  free(c), free(t);
  snprintf(extra, sizeof extra, ",\"iat\":%lld", (long long)now() + 120);
  c = claims_with("\"" AUD "\"", now() + 600, extra);
  t = signed_claims(ec_priv, c);
  assert_invalid(t, "issued in the future");
  free(c), free(t);
}

Test(auth, wrong_issuer_or_audience_refused) {
  char *c = cqrs_token_claims("https://evil.test/", AUD, "u", "acme", "queries:read", now(), 600);
  char *t = signed_claims(ec_priv, c);
  assert_invalid(t, "wrong issuer");
  free(c), free(t);
  c = cqrs_token_claims(NULL, AUD, "u", "acme", "queries:read", now(), 600);
  t = signed_claims(ec_priv, c);
  assert_invalid(t, "wrong issuer");
  free(c), free(t);
  c = cqrs_token_claims(ISS, "another-api", "u", "acme", "queries:read", now(), 600);
  t = signed_claims(ec_priv, c);
  assert_invalid(t, "wrong audience");
  free(c), free(t);
  c = claims_with("[\"a\",\"b\"]", now() + 600, NULL);
  t = signed_claims(ec_priv, c);
  assert_invalid(t, "wrong audience");
  free(c), free(t);
}

Test(auth, unknown_kid_refused) {
  char *t = token(other_priv, "acme", "queries:read"); /* a key the JWKS does not hold */
  assert_invalid(t, "unknown kid");
  free(t);
}

Test(auth, bad_signature_refused) {
  char *t = token(rsa_priv, "acme", "queries:read");
  size_t n = strlen(t);
  t[n - 20] = t[n - 20] == 'A' ? 'B' : 'A'; /* one character of the signature */
  assert_invalid(t, "bad signature");
  free(t);
  t = token(ec_priv, "acme", "queries:read");
  char *dot = strchr(t, '.') + 1;
  dot[3] = dot[3] == 'A' ? 'B' : 'A'; /* the payload, under an intact signature */
  cqrs_principal_t who;
  cr_assert_not(verify(auth, t, &who, NULL));
  free(t);
}

Test(auth, truncated_and_garbage_refused) {
  char *t = token(rsa_priv, "acme", "queries:read");
  char *sig = strrchr(t, '.');
  sig[10] = '\0';
  assert_invalid(t, "");
  sig[1] = '\0'; /* "h.p." */
  assert_invalid(t, "");
  sig[0] = '\0'; /* "h.p" */
  assert_invalid(t, "not a compact JWS");
  free(t);
  const char *garbage[] = {"abc", "a.b.c", "....", "eyJ.eyJ.", "\xff\xfe.\x01.x", "a b c"};
  for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) assert_invalid(garbage[i], "");
  char big[9000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_invalid(big, "too long");
}

/* Found by tests/fuzz/fuzz_auth: cjose 0.6.2 assert()s in its base64url
 * decoder on a part padded after 4k + 1 characters, so one such
 * Authorization header aborted the service. Refused before cjose sees it. */
Test(auth, padded_or_impossible_base64_refused_without_aborting) {
  const char *bad[] = {"abcde===.e30.c2ln", "e30.abcde===.c2ln", "e30.e30.abcde===", "eaXQiOlsi=ZXhwIl19.e30.c2ln",
                       "e30=.e30.c2ln", "abcde.e30.c2ln", "e30.e30.e30.e30"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_invalid(bad[i], "not a compact JWS");
  /* HS256 stays usable: a well-formed token still reaches the checks after the shape */
  assert_invalid("eyJhbGciOiJIUzI1NiJ9.e30.c2ln", "alg HS256 not allowed");
}

Test(auth, es256_token_with_an_rsa_kid_refused) {
  char *rsa_kid = kid_of(rsa_priv);
  char *forged_key = tk_jwk_with(ec_priv, "kid", rsa_kid);
  char *t = token(forged_key, "acme", "queries:read");
  assert_invalid(t, "key type does not match");
  free(t), free(forged_key), free(rsa_kid);
  char *ec_kid = kid_of(ec_priv);
  forged_key = tk_jwk_with(rsa_priv, "kid", ec_kid);
  t = token(forged_key, "acme", "queries:read");
  assert_invalid(t, "key type does not match");
  free(t), free(forged_key), free(ec_kid);
}

Test(auth, crit_header_refused) {
  char *kid = kid_of(ec_priv), hdr[256];
  snprintf(hdr, sizeof hdr, "{\"alg\":\"ES256\",\"kid\":\"%s\",\"crit\":[\"exp\"]}", kid);
  char *c = claims_with("\"" AUD "\"", now() + 600, NULL);
  char *t = tk_jwt_craft(hdr, c, "0123456789012345678901234567890123456789012345678901234567890123", 64);
  assert_invalid(t, "crit");
  free(t), free(c), free(kid);
}

Test(auth, tenants_unknown_deleted_or_malformed_refused) {
  char *t = token(ec_priv, "initech", "queries:read"); /* never created */
  assert_invalid(t, "tenant not active");
  free(t);
  t = token(ec_priv, "gone", "queries:read");
  assert_invalid(t, "tenant not active");
  free(t);
  t = token(ec_priv, "Acme/../x", "queries:read");
  assert_invalid(t, "not a valid tenant id");
  free(t);
  t = token(ec_priv, "acme", "queries:read");
  assert_ok(t, "acme", CQRS_SCOPE_QUERIES_READ);
  free(t);
}

Test(auth, duplicate_claims_refused) {
  char payload[256];
  snprintf(payload, sizeof payload,
           "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"tenant\":\"gone\",\"tenant\":\"acme\","
           "\"exp\":%lld}",
           (long long)now() + 600);
  char *t = signed_claims(ec_priv, payload);
  assert_invalid(t, "not a JSON object");
  free(t);
}

Test(auth, missing_credentials) {
  cqrs_principal_t who;
  cqrs_error_t err;
  cr_assert_not(cqrs_auth_verify(auth, NULL, &who, &err));
  cr_assert_str_eq(err.message, "missing");
  cr_assert_not(cqrs_auth_verify(auth, "", &who, &err));
  cr_assert_str_eq(err.message, "missing");
  cr_assert_not(cqrs_auth_verify(auth, "Bearer   ", &who, &err));
  cr_assert_str_eq(err.message, "missing");
  cr_assert_not(cqrs_auth_verify(auth, "Basic dXNlcjpwYXNz", &who, &err));
  cr_assert_str_eq(err.message, "not a Bearer credential");
  cr_assert_not(cqrs_auth_verify(auth, "Bearerx.y.z", &who, &err));
  cr_assert_eq(err.code, CQRS_ERR_UNAUTHENTICATED);
}

/* The cache -------------------------------------------------------------- */

Test(auth, cached_token_same_principal_and_tenant_checked_every_time) {
  char *t = token(rsa_priv, "globex", "commands:write");
  cqrs_principal_t first, again;
  cqrs_error_t err;
  cr_assert(verify(auth, t, &first, &err), "%s", err.message);
  for (int i = 0; i < 100; i++) {
    cr_assert(verify(auth, t, &again, &err), "%s", err.message);
    cr_assert_eq(memcmp(&first, &again, sizeof first), 0);
  }
  tenant("globex", "deleted");
  cr_assert_not(verify(auth, t, &again, &err), "a deleted tenant's cached token is refused");
  cr_assert_str_eq(err.message, "tenant not active");
  free(t);
}

Test(auth, cache_is_not_fooled_by_a_similar_token) {
  char *t = token(ec_priv, "acme", "queries:read");
  assert_ok(t, "acme", CQRS_SCOPE_QUERIES_READ);
  t[strlen(t) - 5] ^= 1; /* same token but one signature bit: a different hash */
  cqrs_principal_t who;
  cr_assert_not(verify(auth, t, &who, NULL));
  free(t);
}

/* JWKS file ---------------------------------------------------------------- */

Test(auth, rotated_jwks_file_accepted_without_restart) {
  char *t = token(other_priv, "acme", "queries:read");
  assert_invalid(t, "unknown kid");
  const char *three[] = {rsa_jwks, ec_jwks, other_jwks};
  char *set = tk_jwks_merge(three, 3);
  write_text(jwks_path, set);
  free(set);
  /* a kid miss re-reads a changed file at most once a second: await it */
  cqrs_principal_t who;
  cqrs_error_t err;
  bool ok = false;
  for (int i = 0; i < 60 && !ok; i++) {
    ok = verify(auth, t, &who, &err);
    if (!ok) nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
  }
  cr_assert(ok, "the new kid was never accepted: %s", err.message);
  free(t);
}

Test(auth, jwks_keys_that_are_never_used) {
  /* only an oct key and an encryption key: no usable key, so start is refused */
  write_text(jwks_path, "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\"}]}");
  char path_var[320];
  snprintf(path_var, sizeof path_var, "AUTH_JWKS_FILE=%s", jwks_path);
  char *env[] = {path_var, "AUTH_ISSUER=" ISS, "AUTH_AUDIENCE=" AUD, NULL};
  cqrs_error_t err;
  cqrs_auth_t *a = make(env, &err);
  cr_assert_null(a);
  cr_assert(strstr(err.message, "no usable key"), "%s", err.message);
  char *pub = tk_jwks_first(ec_jwks), *enc = tk_jwk_with(pub, "use", "enc");
  free(pub);
  char set[4096];
  snprintf(set, sizeof set, "{\"keys\":[%s]}", enc);
  write_text(jwks_path, set);
  cr_assert_null(make(env, &err), "an encryption key is not a verification key");
  free(enc);
  /* RSA shorter than 2048 bits */
  static const uint8_t e[] = {1, 0, 1};
  cjose_jwk_t *weak = cjose_jwk_create_RSA_random(1024, e, sizeof e, NULL);
  char *weak_json = cjose_jwk_to_json(weak, false, NULL);
  snprintf(set, sizeof set, "{\"keys\":[%s]}", weak_json);
  write_text(jwks_path, set);
  cr_assert_null(make(env, &err), "a 1024-bit RSA key is not used");
  cr_assert(strstr(err.message, "no usable key"), "%s", err.message);
  free(weak_json);
  cjose_jwk_release(weak);
}

/* cjose 0.6.2 assert()s (aborts the process) on a base64url member with '='
 * after 4k + 1 characters; a JWKS from the identity provider holding one
 * must cost that key only (found by tests/fuzz/fuzz_jwks; its seed
 * crash-cjose-rsa-n-padded). */
Test(auth, jwks_key_with_impossible_base64_skipped_without_aborting) {
  char *rsa = tk_jwks_first(rsa_jwks), *ec = tk_jwks_first(ec_jwks);
  char *bad = tk_jwk_with(rsa, "n", "abcde===");
  char set[8192];
  snprintf(set, sizeof set, "{\"keys\":[%s,%s]}", bad, ec);
  write_text(jwks_path, set);
  char path_var[320];
  snprintf(path_var, sizeof path_var, "AUTH_JWKS_FILE=%s", jwks_path);
  char *env[] = {path_var, "AUTH_ISSUER=" ISS, "AUTH_AUDIENCE=" AUD, NULL};
  cqrs_error_t err;
  cqrs_auth_t *a = make(env, &err);
  cr_assert_not_null(a, "the EC key is usable: %s", err.message);
  char *t = token(ec_priv, "acme", "queries:read");
  cqrs_principal_t who;
  cr_expect(verify(a, t, &who, &err), "the EC key verifies: %s", err.message);
  free(t);
  t = token(rsa_priv, "acme", "queries:read");
  cr_expect_not(verify(a, t, &who, &err), "the RSA key with a broken n is not used");
  free(t);
  cqrs_auth_destroy(a);
  free(bad), free(rsa), free(ec);
}

/* Settings ----------------------------------------------------------------- */

Test(auth, refused_settings) {
  char path_var[320];
  snprintf(path_var, sizeof path_var, "AUTH_JWKS_FILE=%s", jwks_path);
  cqrs_error_t err;
  char *no_iss[] = {path_var, "AUTH_AUDIENCE=" AUD, NULL};
  cr_assert_null(make(no_iss, &err));
  cr_assert_str_eq(err.field, "AUTH_ISSUER");
  char *no_aud[] = {path_var, "AUTH_ISSUER=" ISS, NULL};
  cr_assert_null(make(no_aud, &err));
  cr_assert_str_eq(err.field, "AUTH_AUDIENCE");
  char *hs_only[] = {"AUTH_HS256_SECRET=" HS_SECRET, NULL};
  cr_assert_null(make(hs_only, &err), "HS256 without iss/aud is refused too");
  char *missing[] = {"AUTH_JWKS_FILE=/nonexistent/jwks.json", "AUTH_ISSUER=" ISS, "AUTH_AUDIENCE=" AUD, NULL};
  cr_assert_null(make(missing, &err));
  cr_assert_str_eq(err.field, "AUTH_JWKS_FILE");
  write_text(jwks_path, "not json");
  char *garbage[] = {path_var, "AUTH_ISSUER=" ISS, "AUTH_AUDIENCE=" AUD, NULL};
  cr_assert_null(make(garbage, &err));
  cr_assert(strstr(err.message, "JWKS"), "%s", err.message);
  char *env[] = {NULL};
  cqrs_config_cleanup(&cfg);
  cr_assert(cqrs_config_load(&cfg, env, 8080, &err));
  cr_assert_null(cqrs_auth_new(&cfg, &quiet, NULL, &err), "AUTH=on without a registry");
}

Test(auth, api_keys_only_refuses_jwts) {
  cqrs_auth_destroy(auth);
  char *env[] = {NULL};
  cqrs_error_t err;
  auth = make(env, &err);
  cr_assert_not_null(auth, "%s", err.message);
  char *t = token(ec_priv, "acme", "queries:read");
  assert_invalid(t, "JWTs are not accepted");
  free(t);
}

Test(auth, auth_off_is_default_tenant_and_warns) {
  cqrs_auth_destroy(auth);
  char *env[] = {"AUTH=off", NULL};
  cqrs_error_t err;
  cqrs_config_cleanup(&cfg);
  cr_assert(cqrs_config_load(&cfg, env, 8080, &err));
  const cqrs_log_t log = {.service = "test", .level = CQRS_LOG_INFO};
  u_capture_start();
  auth = cqrs_auth_new(&cfg, &log, NULL, &err);
  char *out = u_capture_end();
  cr_assert_not_null(auth);
  cr_assert(strstr(out, "authentication is off (AUTH=off)"), "%s", out);
  cr_assert(strstr(out, "\"warn\""), "%s", out);
  free(out);
  cr_assert_not(cqrs_auth_enabled(auth));
  cqrs_principal_t who;
  const char *creds[] = {NULL, "", "Bearer garbage"};
  for (size_t i = 0; i < 3; i++) {
    cr_assert(cqrs_auth_verify(auth, creds[i], &who, &err));
    cr_assert_str_eq(who.tenant, CQRS_TENANT_DEFAULT);
    cr_assert_str_eq(who.subject, "anonymous");
    cr_assert_str_eq(who.kind, CQRS_AUTHTYPE_UNAUTHENTICATED);
    cr_assert_eq(who.scopes, CQRS_SCOPE_COMMANDS_WRITE | CQRS_SCOPE_QUERIES_READ | CQRS_SCOPE_ADMIN);
  }
  cr_assert_not(cqrs_auth_require(&who, CQRS_SCOPE_PLATFORM, &err), "AUTH=off never makes a platform admin");
}

/* API keys ------------------------------------------------------------------ */

static void put_key(const cqrs_apikey_rec_t *rec) {
  size_t len;
  char *k = cqrs_control_apikey_key(rec->key_id), *v = cqrs_control_apikey_json(rec, &len);
  cr_assert_not_null(v);
  apply(k, v);
  free(k), free(v);
}

static void new_key(const char *t, unsigned scopes, cqrs_apikey_rec_t *rec, char key[CQRS_API_KEY_LEN + 1]) {
  cqrs_error_t err;
  cr_assert(cqrs_apikey_new(t, scopes, "2026-01-01T00:00:00Z", rec, key, &err), "%s", err.message);
}

Test(auth, apikey_new_shape) {
  cqrs_apikey_rec_t a, b;
  char ka[CQRS_API_KEY_LEN + 1], kb[CQRS_API_KEY_LEN + 1];
  new_key("acme", CQRS_SCOPE_QUERIES_READ, &a, ka);
  new_key("acme", CQRS_SCOPE_QUERIES_READ, &b, kb);
  cr_assert_eq(strlen(ka), CQRS_API_KEY_LEN);
  cr_assert_eq(strncmp(ka, "cqrs_", 5), 0);
  cr_assert_eq(strncmp(ka + 5, a.key_id, CQRS_KEY_ID_LEN), 0);
  cr_assert_eq(ka[5 + CQRS_KEY_ID_LEN], '_');
  cr_assert_str_neq(ka, kb);
  cr_assert_str_neq(a.key_id, b.key_id);
  unsigned char digest[32];
  unsigned int n;
  const char *secret = ka + 5 + CQRS_KEY_ID_LEN + 1;
  cr_assert(EVP_Digest(secret, strlen(secret), digest, &n, EVP_sha256(), NULL));
  cr_assert_eq(memcmp(digest, a.sha256, 32), 0, "the record holds the SHA-256 of the secret");
  cr_assert_str_eq(a.tenant, "acme");
  cr_assert_str_eq(a.created_at, "2026-01-01T00:00:00Z");
  cr_assert_not(a.revoked);
  cqrs_error_t err;
  cr_assert_not(cqrs_apikey_new("Bad/Tenant", 0, "2026-01-01T00:00:00Z", &a, ka, &err));
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
}

Test(auth, apikey_verification) {
  cqrs_apikey_rec_t rec;
  char key[CQRS_API_KEY_LEN + 1];
  new_key("acme", CQRS_SCOPE_QUERIES_READ | CQRS_SCOPE_COMMANDS_WRITE, &rec, key);
  assert_invalid(key, "unknown API key");
  put_key(&rec);
  assert_ok(key, "acme", CQRS_SCOPE_QUERIES_READ | CQRS_SCOPE_COMMANDS_WRITE);
  cqrs_principal_t who;
  cr_assert(verify(auth, key, &who, NULL));
  char subject[64];
  snprintf(subject, sizeof subject, "apikey:%s", rec.key_id);
  cr_assert_str_eq(who.subject, subject);
  cr_assert_str_eq(who.kind, CQRS_AUTHTYPE_API_KEY);

  char wrong[CQRS_API_KEY_LEN + 1];
  memcpy(wrong, key, sizeof wrong);
  wrong[CQRS_API_KEY_LEN - 1] = wrong[CQRS_API_KEY_LEN - 1] == '0' ? '1' : '0';
  assert_invalid(wrong, "secret does not match");

  rec.revoked = true;
  snprintf(rec.revoked_at, sizeof rec.revoked_at, "2026-01-02T00:00:00Z");
  put_key(&rec);
  assert_invalid(key, "revoked");
}

Test(auth, apikey_of_a_deleted_tenant_refused) {
  cqrs_apikey_rec_t rec;
  char key[CQRS_API_KEY_LEN + 1];
  new_key("globex", CQRS_SCOPE_QUERIES_READ, &rec, key);
  put_key(&rec);
  assert_ok(key, "globex", CQRS_SCOPE_QUERIES_READ);
  tenant("globex", "deleted");
  assert_invalid(key, "tenant of the API key is not active");
}

Test(auth, apikey_never_platform) {
  cqrs_apikey_rec_t rec;
  char key[CQRS_API_KEY_LEN + 1];
  new_key("acme", CQRS_SCOPE_PLATFORM | CQRS_SCOPE_ADMIN, &rec, key);
  put_key(&rec);
  assert_ok(key, "acme", CQRS_SCOPE_ADMIN);
}

Test(auth, malformed_apikeys_refused) {
  cqrs_apikey_rec_t rec;
  char key[CQRS_API_KEY_LEN + 1], bad[CQRS_API_KEY_LEN + 8];
  new_key("acme", CQRS_SCOPE_QUERIES_READ, &rec, key);
  put_key(&rec);
  assert_invalid("cqrs_", "malformed API key");
  snprintf(bad, sizeof bad, "%sa", key); /* one character too many */
  assert_invalid(bad, "malformed API key");
  snprintf(bad, sizeof bad, "%.*s", CQRS_API_KEY_LEN - 1, key); /* one too few */
  assert_invalid(bad, "malformed API key");
  memcpy(bad, key, sizeof key);
  bad[5 + CQRS_KEY_ID_LEN] = '-'; /* no separator */
  assert_invalid(bad, "malformed API key");
  memcpy(bad, key, sizeof key);
  bad[CQRS_API_KEY_LEN - 3] = 'G'; /* not hex */
  assert_invalid(bad, "malformed API key");
  memcpy(bad, key, sizeof key);
  for (char *c = bad + 5; *c; c++)
    if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 'a' + 'A'); /* upper case is not what we issue */
  if (strcmp(bad, key) != 0) assert_invalid(bad, "malformed API key");
}

/* Threads ------------------------------------------------------------------ */

typedef struct {
  char *good[8];
  char *unknown;
  int64_t until_ms;
  int refused, accepted;
} race_t;

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *verifier(void *arg) {
  race_t *r = arg;
  cqrs_principal_t who;
  cqrs_error_t err;
  for (unsigned i = 0; mono_ms() < r->until_ms; i++) {
    if (verify(auth, r->good[i % 8], &who, &err) && strcmp(who.tenant, "acme") == 0)
      __atomic_add_fetch(&r->accepted, 1, __ATOMIC_RELAXED);
    else
      __atomic_add_fetch(&r->refused, 1, __ATOMIC_RELAXED);
    if (i % 64 == 0) verify(auth, r->unknown, &who, &err); /* asks for a re-read */
  }
  return NULL;
}

Test(auth, concurrent_verification_across_key_set_changes, .timeout = 60) {
  cqrs_auth_destroy(auth);
  char path_var[320];
  snprintf(path_var, sizeof path_var, "AUTH_JWKS_FILE=%s", jwks_path);
  char *env[] = {path_var, "AUTH_ISSUER=" ISS, "AUTH_AUDIENCE=" AUD, "AUTH_JWKS_REFRESH_S=1", NULL};
  cqrs_error_t err;
  auth = make(env, &err);
  cr_assert_not_null(auth, "%s", err.message);
  race_t r = {.unknown = token(other_priv, "acme", "queries:read"), .until_ms = mono_ms() + 2500};
  for (int i = 0; i < 8; i++) r.good[i] = token(i % 2 ? rsa_priv : ec_priv, "acme", "queries:read");
  pthread_t th[4];
  for (int i = 0; i < 4; i++) cr_assert_eq(pthread_create(&th[i], NULL, verifier, &r), 0);
  /* the set keeps the two keys the tokens use and changes around them */
  char *a = tk_jwks_merge((const char *[]){rsa_jwks, ec_jwks}, 2);
  char *b = tk_jwks_merge((const char *[]){ec_jwks, rsa_jwks}, 2);
  for (int i = 0; mono_ms() < r.until_ms; i++) {
    write_text(jwks_path, i % 2 ? a : b);
    nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
  }
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  cr_assert_eq(r.refused, 0, "a valid token was refused while the key set changed");
  cr_assert_gt(r.accepted, 100);
  free(a), free(b), free(r.unknown);
  for (int i = 0; i < 8; i++) free(r.good[i]);
}
