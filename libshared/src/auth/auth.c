/* Authentication (cqrs/auth.h): the credential gate of every service.
 *
 * JOSE through cjose (libcjose, the library of mod_auth_openidc): it imports
 * JWKs as they come from an identity provider's JWKS, so no PEM conversion is
 * needed (libjwt 1.10, Debian's version, takes keys as PEM only), and it
 * verifies RS256/ES256/HS256 with OpenSSL. Everything else here is ours to
 * keep small: the alg allowlist and key choice (jwt.c), the key set and its
 * refresh (jwks.c), the cache of verified tokens (cache.c), API keys
 * (apikey.c).
 *
 * Settings: with AUTH on, JWTs are accepted only when a JWKS (file or URL) or
 * AUTH_HS256_SECRET is configured, and then AUTH_ISSUER and AUTH_AUDIENCE are
 * both required (a JWT validator that checks neither accepts any token its
 * identity provider ever signed for anyone); API keys need the registry. */
#include "internal.h"

#include "cqrs/alloc.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CACHE_ENTRIES 4096

struct cqrs_auth {
  bool enabled;
  const cqrs_log_t *log;
  cqrs_registry_t *registry;
  char *issuer, *audience, *tenant_claim;
  auth_jwt_params_t jwt;
  bool jwt_on; /* a JWKS or an HS256 secret */
  auth_cache_t *cache;
};

cqrs_auth_t *cqrs_auth_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_registry_t *registry,
                           cqrs_error_t *err) {
  cqrs_auth_t *a = cqrs_xcalloc(1, sizeof *a);
  a->log = log;
  a->enabled = cfg->auth_enabled;
  if (!a->enabled) {
    cqrs_log_warn(log, "authentication is off (AUTH=off): every request is tenant default with every tenant scope",
                  NULL);
    return a;
  }
  bool jwks = cfg->auth_jwks_file || cfg->auth_jwks_url;
  a->jwt_on = jwks || cfg->auth_hs256_secret;
  if (!registry) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "AUTH", "AUTH=on needs the control registry");
    goto fail;
  }
  if (a->jwt_on && (!cfg->auth_issuer || !cfg->auth_audience)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, cfg->auth_issuer ? "AUTH_AUDIENCE" : "AUTH_ISSUER",
                   "JWTs are accepted (AUTH_JWKS_FILE, AUTH_JWKS_URL or AUTH_HS256_SECRET), so AUTH_ISSUER and "
                   "AUTH_AUDIENCE must be set");
    goto fail;
  }
  a->registry = registry;
  a->issuer = cfg->auth_issuer ? cqrs_xstrdup(cfg->auth_issuer) : NULL;
  a->audience = cfg->auth_audience ? cqrs_xstrdup(cfg->auth_audience) : NULL;
  a->tenant_claim = cqrs_xstrdup(cfg->auth_tenant_claim ? cfg->auth_tenant_claim : "tenant");
  a->cache = auth_cache_new(CACHE_ENTRIES);
  a->jwt.issuer = a->issuer;
  a->jwt.audience = a->audience;
  a->jwt.tenant_claim = a->tenant_claim;
  a->jwt.leeway_s = cfg->auth_leeway_s;
  if (cfg->auth_hs256_secret) {
    cjose_err cerr;
    a->jwt.hs256 = cjose_jwk_create_oct_spec((const uint8_t *)cfg->auth_hs256_secret, strlen(cfg->auth_hs256_secret),
                                             &cerr);
    if (!a->jwt.hs256) {
      cqrs_error_set(err, CQRS_ERR_INTERNAL, "AUTH_HS256_SECRET", "cannot make the HS256 key");
      goto fail;
    }
  }
  if (jwks && !(a->jwt.jwks = auth_jwks_new(cfg, log, err))) goto fail;
  cqrs_log_info(log, "authentication on", "jwt", a->jwt_on ? (jwks ? "jwks" : "hs256") : "off", NULL);
  return a;
fail:
  cqrs_auth_destroy(a);
  return NULL;
}

void cqrs_auth_destroy(cqrs_auth_t *a) {
  if (!a) return;
  auth_jwks_destroy(a->jwt.jwks);
  cjose_jwk_release(a->jwt.hs256);
  auth_cache_destroy(a->cache);
  free(a->issuer);
  free(a->audience);
  free(a->tenant_claim);
  free(a);
}

bool cqrs_auth_enabled(const cqrs_auth_t *a) { return a->enabled; }

static bool refuse(cqrs_error_t *err, const char *reason) {
  cqrs_error_set(err, CQRS_ERR_UNAUTHENTICATED, NULL, "%s", reason);
  return false;
}

/* A tenant credential counts only while its tenant is active; checked on
 * every request, also for a cached token, so deleting a tenant stops it at once. */
static bool tenant_active(cqrs_auth_t *a, const cqrs_principal_t *who, cqrs_error_t *err) {
  if (!who->tenant[0]) return true; /* a platform administrator (jwt.c requires the scope) */
  if (cqrs_registry_tenant_state(a->registry, who->tenant) == CQRS_TENANT_ACTIVE) return true;
  return refuse(err, "tenant not active");
}

bool cqrs_auth_tenant_active(cqrs_auth_t *a, const char *tenant) {
  return !cqrs_auth_enabled(a) || cqrs_registry_tenant_state(a->registry, tenant) == CQRS_TENANT_ACTIVE;
}

static bool verify_jwt(cqrs_auth_t *a, const char *token, size_t len, cqrs_principal_t *who, cqrs_error_t *err) {
  if (!a->jwt_on) return refuse(err, "JWTs are not accepted (no JWKS and no AUTH_HS256_SECRET)");
  unsigned char digest[32];
  int64_t now = (int64_t)time(NULL);
  uint64_t gen = a->jwt.jwks ? auth_jwks_generation(a->jwt.jwks) : 0;
  bool hashed = auth_sha256(token, len, digest);
  if (hashed && auth_cache_get(a->cache, digest, now, gen, who)) return tenant_active(a, who, err);
  int64_t valid_until;
  if (!auth_jwt_verify(&a->jwt, token, len, now, who, &valid_until, &gen, err)) return false;
  if (hashed) auth_cache_put(a->cache, digest, valid_until, gen, who);
  return tenant_active(a, who, err);
}

bool cqrs_auth_verify(cqrs_auth_t *a, const char *authorization, cqrs_principal_t *who, cqrs_error_t *err) {
  memset(who, 0, sizeof *who);
  if (!a->enabled) {
    snprintf(who->tenant, sizeof who->tenant, "%s", CQRS_TENANT_DEFAULT);
    snprintf(who->subject, sizeof who->subject, "anonymous");
    who->kind = CQRS_AUTHTYPE_UNAUTHENTICATED;
    who->scopes = CQRS_SCOPE_COMMANDS_WRITE | CQRS_SCOPE_QUERIES_READ | CQRS_SCOPE_ADMIN;
    return true;
  }
  if (!authorization || !*authorization) return refuse(err, "missing");
  /* RFC 7235: the scheme is case-insensitive; one or more spaces follow it */
  if (strncasecmp(authorization, "Bearer", 6) != 0 || (authorization[6] != ' ' && authorization[6] != '\0'))
    return refuse(err, "not a Bearer credential");
  const char *cred = authorization + 6;
  cred += strspn(cred, " ");
  size_t len = strlen(cred);
  while (len && (cred[len - 1] == ' ' || cred[len - 1] == '\t')) len--;
  if (!len) return refuse(err, "missing");
  if (len > AUTH_CREDENTIAL_MAX) return refuse(err, "credential too long");
  bool ok = auth_apikey_like(cred, len) ? auth_apikey_verify(a->registry, cred, len, who, err)
                                        : verify_jwt(a, cred, len, who, err);
  if (!ok) memset(who, 0, sizeof *who);
  return ok;
}

bool cqrs_auth_require(const cqrs_principal_t *who, unsigned need, cqrs_error_t *err) {
  unsigned missing = need & ~who->scopes;
  if (!missing) return true;
  unsigned first = missing & -missing;
  const char *name = cqrs_scope_name(first);
  cqrs_error_set(err, CQRS_ERR_FORBIDDEN, NULL, "the credential lacks the scope %s", name ? name : "(unknown)");
  return false;
}

/* The names of the scopes in need, space-separated, into out. */
static void scope_names(unsigned need, char *out, size_t cap) {
  size_t used = 0;
  out[0] = '\0';
  for (unsigned bit = 1; bit && bit <= need; bit <<= 1) {
    const char *name = (need & bit) ? cqrs_scope_name(bit) : NULL;
    if (name) used += (size_t)snprintf(out + used, used < cap ? cap - used : 0, "%s%s", used ? " " : "", name);
  }
}

bool cqrs_auth_http(cqrs_auth_t *a, cqrs_http_req_t *req, unsigned need, cqrs_principal_t *who) {
  cqrs_error_t err;
  const char *path = cqrs_http_req_path(req);
  const char *authorization = cqrs_http_req_header(req, "Authorization");
  if (!cqrs_auth_verify(a, authorization, who, &err)) {
    bool missing = strcmp(err.message, "missing") == 0;
    cqrs_log_info(a->log, "request refused: authentication failed", "reason", err.message, "path", path, NULL);
    cqrs_http_req_add_header(req, "WWW-Authenticate", missing ? "Bearer" : "Bearer error=\"invalid_token\"");
    cqrs_http_reply_error(req, 401, missing ? "authentication required" : "invalid credential", NULL);
    return false;
  }
  if (!cqrs_auth_require(who, need, &err)) {
    char names[128], challenge[192];
    scope_names(need, names, sizeof names);
    snprintf(challenge, sizeof challenge, "Bearer error=\"insufficient_scope\", scope=\"%s\"", names);
    cqrs_log_info(a->log, "request refused: scope missing", "reason", err.message, "path", path, "subject",
                  who->subject, NULL);
    cqrs_http_req_add_header(req, "WWW-Authenticate", challenge);
    cqrs_http_reply_error(req, 403, err.message, NULL);
    return false;
  }
  const char *tenant = cqrs_http_req_header(req, "X-Tenant-Id");
  if (tenant && strcmp(tenant, who->tenant) != 0) {
    cqrs_log_info(a->log, "request refused: X-Tenant-Id differs from the credential's tenant", "path", path,
                  "subject", who->subject, NULL);
    cqrs_http_reply_error(req, 403, "X-Tenant-Id does not match the credential's tenant", "X-Tenant-Id");
    return false;
  }
  return true;
}
