/* Hand-made JWTs for the token-attack tests: base64url of a header and a
 * payload chosen byte for byte, with any signature, or an HMAC under any key
 * (the RS256 -> HS256 confusion signs with the public key's bytes). */
#ifndef CQRS_JWT_CRAFT_H
#define CQRS_JWT_CRAFT_H

#include <stddef.h>

/* base64url without padding (malloc'd). */
char *tk_b64url(const void *data, size_t len);

/* "<b64url(header)>.<b64url(payload)>.<b64url(sig)>" (malloc'd); sig may be
 * NULL (an empty signature part). */
char *tk_jwt_craft(const char *header_json, const char *payload_json, const void *sig, size_t sig_len);

/* As tk_jwt_craft, signed with HMAC-SHA256 under key (OpenSSL's HMAC). */
char *tk_jwt_hs256(const char *header_json, const char *payload_json, const void *key, size_t key_len);

/* The first RSA key of a JWKS as a PEM "PUBLIC KEY" (malloc'd), or NULL. */
char *tk_jwks_rsa_pem(const char *jwks_json);

/* The first key of a JWKS as compact JWK JSON (malloc'd), or NULL. */
char *tk_jwks_first(const char *jwks_json);

/* A member of a JWK (JSON) as a string (malloc'd), e.g. "kid"; NULL when absent. */
char *tk_jwk_member(const char *jwk_json, const char *name);

/* jwk_json with member name set to the string value (malloc'd). */
char *tk_jwk_with(const char *jwk_json, const char *name, const char *value);

/* {"keys":[...]} holding every key of the given JWKS texts (n of them). */
char *tk_jwks_merge(const char *const *jwks, size_t n);

#endif
