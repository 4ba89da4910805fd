/* Signing keys and signed JWTs for development and tests: what an identity
 * provider does, in the smallest form (cqrs-token, and the tests, which sign
 * with the same code). JOSE through cjose, random and hashes through OpenSSL.
 * Strings returned are malloc'd (free()). */
#ifndef CQRS_TOKEN_H
#define CQRS_TOKEN_H

#include "cqrs/error.h"

#include <stdbool.h>
#include <stdint.h>

/* Makes a new signing key for alg "ES256" (EC P-256) or "RS256" (RSA 2048).
 * *priv gets the private JWK (JSON with "kid", "alg" and "use":"sig"; keep it
 * secret) and *jwks the JWKS {"keys":[<the public JWK>]} to publish. The kid
 * is the key's RFC 7638 thumbprint. False with err on an unknown alg or when
 * key generation fails. */
bool cqrs_token_keygen(const char *alg, char **priv, char **jwks, cqrs_error_t *err);

/* The claims of an access token: iss, aud, sub, tenant (omitted when NULL),
 * scope (space-separated), iat = now and exp = now + ttl_s. NULL when out of
 * memory. */
char *cqrs_token_claims(const char *iss, const char *aud, const char *sub, const char *tenant,
                        const char *scope, int64_t now, int64_t ttl_s);

/* Signs claims_json (any JSON text) with the private JWK key_json: the
 * protected header gets the key's "alg" (from the key, or RS256/ES256 from its
 * type) and "kid" (when it has one). Returns the compact JWS, or NULL with err
 * when the key cannot be read or signing fails. */
char *cqrs_token_sign(const char *key_json, const char *claims_json, cqrs_error_t *err);

#endif
