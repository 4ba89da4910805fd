/* Authentication and scopes: who sent a request or a command record, and for
 * which tenant. The tenant comes only from a verified credential.
 *
 * Credentials arrive as "Bearer <credential>" (HTTP header Authorization, or
 * the Kafka header "authorization" of a command record). Two kinds:
 *   - a JWT (RS256 or ES256, verified against a JWKS file or URL; HS256 only
 *     when AUTH_HS256_SECRET is set; "none" never). iss, aud, exp and nbf are
 *     checked with AUTH_LEEWAY_S of leeway. Tenant from the AUTH_TENANT_CLAIM
 *     claim (default "tenant"), scopes from "scope" (space-separated).
 *   - an API key "cqrs_<keyId>_<secret>" issued by admin-svc: looked up by keyId
 *     in the control registry and accepted when the SHA-256 of its secret matches
 *     (constant-time compare), it is not revoked and its tenant is active.
 * A tenant credential is refused (as invalid) unless its tenant is active in
 * the registry, so deleting a tenant stops its JWTs too.
 * A platform administrator is a JWT with the scope "platform:admin"; it needs
 * no tenant.
 *
 * Failures never log or echo the credential; the reason goes to the service's
 * log at info level, the client sees only 401 (or 403 for a missing scope). */
#ifndef CQRS_AUTH_H
#define CQRS_AUTH_H

#include "cqrs/config.h"
#include "cqrs/control.h"
#include "cqrs/error.h"
#include "cqrs/event.h"
#include "cqrs/http.h"
#include "cqrs/log.h"
#include "cqrs/tenant.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Scopes, as bits. */
enum {
  CQRS_SCOPE_COMMANDS_WRITE = 1u << 0, /* "commands:write" */
  CQRS_SCOPE_QUERIES_READ = 1u << 1,   /* "queries:read" */
  CQRS_SCOPE_ADMIN = 1u << 2,          /* "admin": the tenant's own replays, DLQ, sagas */
  CQRS_SCOPE_PLATFORM = 1u << 3,       /* "platform:admin": tenants and their keys */
};

/* The scope bits named in s (space-separated). Unknown names are ignored, as
 * OAuth 2.0 asks (a token may carry scopes of other audiences). */
unsigned cqrs_scopes_parse(const char *s);
/* The name of one scope bit ("commands:write", ...), NULL for none. */
const char *cqrs_scope_name(unsigned bit);

/* Who is asking. kind and subject are what the events a command causes
 * record as their actor (cqrs/event.h, ce_authtype and ce_authid), so a
 * subject is always cqrs_event_authid_valid: a JWT whose sub is not is
 * refused. */
typedef struct {
  char tenant[CQRS_TENANT_MAX + 1];         /* "" for a platform administrator */
  char subject[CQRS_EVENT_AUTHID_MAX + 1];  /* JWT "sub", or "apikey:<keyId>", or "anonymous" (AUTH=off) */
  const char *kind;                         /* what the subject is, a CQRS_AUTHTYPE_* (static) */
  unsigned scopes;                          /* CQRS_SCOPE_* bits */
} cqrs_principal_t;

typedef struct cqrs_auth cqrs_auth_t;

/* Reads the AUTH_* settings of cfg. With AUTH=off every credential check
 * passes as tenant CQRS_TENANT_DEFAULT with every tenant scope (and a warning
 * is logged here, once). registry is borrowed (may be NULL only with
 * AUTH=off). NULL with err on a bad setting, or when AUTH is on and the JWKS
 * file cannot be read.
 * With AUTH on, JWTs are accepted only when a JWKS (AUTH_JWKS_FILE or
 * AUTH_JWKS_URL) or AUTH_HS256_SECRET is configured, and then AUTH_ISSUER and
 * AUTH_AUDIENCE are both required: NULL with err naming the one unset (a JWT
 * validator without iss/aud checks accepts every token its identity provider
 * signed for any other application). Without any of the three only API keys
 * are accepted. A JWKS file with no usable key (RS256 or ES256) is an error;
 * a JWKS URL that does not answer at start is logged and retried (JWTs are
 * refused until it answers), so a service may start before its provider.
 * Starts a thread that refreshes the JWKS; cqrs_auth_destroy stops it. */
cqrs_auth_t *cqrs_auth_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_registry_t *registry,
                           cqrs_error_t *err);
void cqrs_auth_destroy(cqrs_auth_t *a);

/* False when AUTH=off. */
bool cqrs_auth_enabled(const cqrs_auth_t *a);

/* Verifies an Authorization value ("Bearer <credential>"; NULL when absent)
 * into *who. On failure: false with err CQRS_ERR_UNAUTHENTICATED, whose message
 * is the reason for the log (it never contains the credential; "missing" when
 * authorization is NULL or empty). Thread-safe; verified JWTs are cached until
 * they expire, so a repeated token costs a hash lookup. */
bool cqrs_auth_verify(cqrs_auth_t *a, const char *authorization, cqrs_principal_t *who, cqrs_error_t *err);

/* True when tenant is active in the registry (always with AUTH=off): what a
 * credential of tenant needs, for callers that authenticate by other means
 * (saga-svc's signed commands, cqrs/saga_sign.h). Thread-safe. */
bool cqrs_auth_tenant_active(cqrs_auth_t *a, const char *tenant);

/* Checks that who has every scope in need (CQRS_ERR_FORBIDDEN naming the
 * first missing one otherwise). */
bool cqrs_auth_require(const cqrs_principal_t *who, unsigned need, cqrs_error_t *err);

/* The HTTP gate every API route calls first: verifies the Authorization header,
 * checks the scopes in need and an optional X-Tenant-Id header (it never
 * selects a tenant; one that differs from the credential's is 403). On failure
 * it replies itself and returns false:
 *   401 + WWW-Authenticate: Bearer                          (no credential)
 *   401 + WWW-Authenticate: Bearer error="invalid_token"    (one that does not verify)
 *   403 + WWW-Authenticate: Bearer error="insufficient_scope" (scope missing)
 *   403                                                     (X-Tenant-Id mismatch)
 * with a JSON error body that never contains the credential. */
bool cqrs_auth_http(cqrs_auth_t *a, cqrs_http_req_t *req, unsigned need, cqrs_principal_t *who);

/* API keys ------------------------------------------------------------- */

/* "cqrs_<keyId>_<secret>" */
#define CQRS_API_KEY_LEN (5 + CQRS_KEY_ID_LEN + 1 + CQRS_KEY_SECRET_LEN)

/* Makes a new API key for tenant with scopes, created at now (RFC 3339): fills
 * rec (keyId, tenant, scopes, the SHA-256 of the secret, createdAt) and writes
 * the key itself, NUL-terminated, into key. The key is shown to its owner once
 * and never stored; only rec is. Random bytes come from OpenSSL's RAND_bytes.
 * False with err when the random source fails. */
bool cqrs_apikey_new(const char *tenant, unsigned scopes, const char *now, cqrs_apikey_rec_t *rec,
                     char key[CQRS_API_KEY_LEN + 1], cqrs_error_t *err);

#endif
