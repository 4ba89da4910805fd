/* Test support for services with authentication on: a signing key and the
 * JWKS file the services read, the settings a service needs for AUTH=on,
 * signed tokens for a tenant and scopes, control records that activate or
 * delete a tenant or issue an API key (as admin-svc writes them, for tests
 * that run without admin-svc), and a check that no credential reached a log.
 *
 * Every function fails the test (criterion) when it cannot do its work; none
 * returns an error. Strings returned are malloc'd (free()) unless said. */
#ifndef CQRS_TK_AUTH_H
#define CQRS_TK_AUTH_H

#include "testkit.h"

#include "cqrs/auth.h"
#include "cqrs/control.h"

#include <stdbool.h>

/* The iss and aud of every token tk_auth_token signs, and what tk_auth_env
 * tells the services to require. */
#define TK_AUTH_ISSUER "https://issuer.e2e.test"
#define TK_AUTH_AUDIENCE "cqrs-e2e"
/* The sub of every token tk_auth_token signs: what the events its commands
 * cause record as their actor. */
#define TK_AUTH_SUBJECT "e2e-user"

/* Room for tk_auth_env's answer: its own settings, a caller's, and the NULL. */
#define TK_AUTH_ENV_MAX 24

typedef struct tk_auth tk_auth_t;

/* Makes a fresh ES256 signing key and writes its JWKS to
 * CQRS_TEST_LOG_DIR/<env->prefix>jwks.json. env is borrowed and must outlive
 * the result. */
tk_auth_t *tk_auth_new(const tk_env_t *env);

/* Removes the JWKS file and frees everything (the strings tk_auth_env
 * pointed at too). NULL is fine. */
void tk_auth_destroy(tk_auth_t *a);

/* The "NAME=value" strings a service needs for AUTH=on (AUTH, AUTH_JWKS_FILE,
 * AUTH_ISSUER, AUTH_AUDIENCE), then those of more (NULL-terminated, may be
 * NULL), then NULL, written into out and returned: the extra argument of
 * tk_start. The strings are borrowed from a and more. */
const char *const *tk_auth_env(const tk_auth_t *a, const char *const *more, const char *out[TK_AUTH_ENV_MAX]);

/* The path of the JWKS file the services read (borrowed from a). */
const char *tk_auth_jwks_path(const tk_auth_t *a);

/* The private JWK that signs a's tokens (borrowed from a): for tests that
 * craft their own claims. */
const char *tk_auth_signing_key(const tk_auth_t *a);

/* A JWT signed with a's key: iss, aud and sub as above, tenant (NULL: no tenant
 * claim, as a platform administrator's), scope (space-separated), valid for
 * ttl_s seconds from now. The token is remembered for tk_auth_assert_log_clean. */
char *tk_auth_token(tk_auth_t *a, const char *tenant, const char *scope, int ttl_s);

/* "Authorization: Bearer <credential>\r\n": a header line for tk_http_headers. */
char *tk_auth_header(const char *credential);

/* tk_http_headers with "Authorization: Bearer <credential>" (credential NULL:
 * none) before the extra header lines (may be NULL). body may be NULL. */
bool tk_auth_http(const char *method, int port, const char *path, const char *credential, const char *headers,
                  const char *body, tk_response_t *out);

/* Produces the control record that sets tenant's state (active, or deleted
 * with a deletedAt) to env's control topic, creating the topic first (as
 * every service does) when it is missing. Waits until Kafka has it. Needs no
 * tk_auth_t: services with AUTH=off follow tenant deletions too. */
void tk_auth_put_tenant(const tk_env_t *env, const char *tenant, cqrs_tenant_state_t state);

/* Produces the control record of an API key (issued, or revoked), likewise. */
void tk_auth_put_apikey(const tk_env_t *env, const cqrs_apikey_rec_t *rec);

/* Issues an API key for tenant with scopes (CQRS_SCOPE_* bits) as admin-svc
 * would: rec gets its record, key the key itself (remembered for
 * tk_auth_assert_log_clean), and the record is produced to the control topic
 * of a's env. */
void tk_auth_issue_apikey(tk_auth_t *a, const char *tenant, unsigned scopes, cqrs_apikey_rec_t *rec,
                          char key[CQRS_API_KEY_LEN + 1]);

/* Adds credential (copied) to those tk_auth_assert_log_clean looks for:
 * keys admin-svc issued, tokens signed with another key. */
void tk_auth_remember(tk_auth_t *a, const char *credential);

/* Fails the test when a line of the log at path holds a remembered credential,
 * or the secret part of one on its own (a JWT's signature, an API key's
 * secret), or when must_have (may be NULL) is on no line: a refusal the test
 * caused, which shows the file is the right one and its level shows them. */
void tk_auth_assert_log_clean(const tk_auth_t *a, const char *path, const char *must_have);

#endif
