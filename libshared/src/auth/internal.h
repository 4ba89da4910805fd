/* What the files of src/auth share; not part of libshared's interface. */
#ifndef CQRS_AUTH_INTERNAL_H
#define CQRS_AUTH_INTERNAL_H

#include "cqrs/auth.h"

#include <cjose/cjose.h>
#include <stdbool.h>
#include <stdint.h>

/* Longest credential looked at; a longer one is refused unread. */
#define AUTH_CREDENTIAL_MAX 8192

/* SHA-256 of data (OpenSSL EVP). False only when OpenSSL fails. */
bool auth_sha256(const void *data, size_t len, unsigned char out[32]);

/* True when s[0..len) is base64url without padding of a length base64 can
 * have (not 4k + 1): what cjose 0.6.2's decoder takes without assert()ing
 * (an abort of the whole process) on some inputs. (jwt.c) */
bool auth_b64url_ok(const char *s, size_t len);

/* Key sets (jwks.c) ------------------------------------------------------ */

/* One verification key: its kid (may be NULL) and the only alg it verifies
 * ("RS256" for an RSA key, "ES256" for an EC P-256 key). */
typedef struct {
  char *kid;
  const char *alg;
  cjose_jwk_t *jwk;
} auth_key_t;

/* An immutable key set, shared by reference between threads. */
typedef struct auth_keyset auth_keyset_t;

/* The key named kid; with kid NULL, the set's only key (NULL when it has
 * more than one). NULL when there is none. Borrowed from ks. */
const auth_key_t *auth_keyset_find(const auth_keyset_t *ks, const char *kid);
void auth_keyset_release(auth_keyset_t *ks);
/* Parses a JWKS (text[0..len), any bytes) into a new set with one reference
 * (auth_keyset_release). Keys that are no JWK, not for signatures, of a type
 * or size not allowed (RSA >= 2048 bits: RS256; EC P-256: ES256), whose alg
 * disagrees, whose base64url members cjose could not decode safely, or whose
 * kid repeats are skipped with a warning on log. NULL with err when text is
 * not a JWKS; a set may be empty. */
auth_keyset_t *auth_keyset_parse(const char *text, size_t len, const cqrs_log_t *log, cqrs_error_t *err);

/* A JWKS source (AUTH_JWKS_FILE or AUTH_JWKS_URL) and its refresh thread. */
typedef struct auth_jwks auth_jwks_t;

/* Loads the set once (a file that cannot be read or holds no usable key is an
 * error; a URL that does not answer is logged and retried) and starts the
 * refresh thread. NULL with err. */
auth_jwks_t *auth_jwks_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_error_t *err);
/* Stops the thread and frees everything. NULL is fine. */
void auth_jwks_destroy(auth_jwks_t *j);
/* The current set with a reference for the caller (auth_keyset_release), and
 * its generation (which grows with every new set) in *gen. Never NULL. Any thread. */
auth_keyset_t *auth_jwks_acquire(auth_jwks_t *j, uint64_t *gen);
/* The generation of the current set. */
uint64_t auth_jwks_generation(auth_jwks_t *j);
/* A token named a kid the current set lacks: re-read the file when it changed
 * (checked at most once a second), or fetch the URL now (at most once per 10 s;
 * waits for that fetch, a few seconds at most). True when a new set is in place. */
bool auth_jwks_refresh_on_miss(auth_jwks_t *j);

/* JWTs (jwt.c) --------------------------------------------------------- */

typedef struct {
  const char *issuer, *audience, *tenant_claim; /* borrowed from the config */
  int64_t leeway_s;
  cjose_jwk_t *hs256; /* the "oct" key of AUTH_HS256_SECRET; NULL: HS256 refused */
  auth_jwks_t *jwks;  /* NULL: no RS256/ES256 */
} auth_jwt_params_t;

/* Verifies the compact JWS token at time now (seconds since the epoch): alg
 * allowlist, key, signature, then claims. Fills *who and *valid_until
 * (exp + leeway) and *gen (the key set's generation it was verified with). The
 * tenant's state is not checked here. False with an UNAUTHENTICATED err whose
 * message is a fixed reason (never a part of the token). */
bool auth_jwt_verify(const auth_jwt_params_t *p, const char *token, size_t len, int64_t now,
                     cqrs_principal_t *who, int64_t *valid_until, uint64_t *gen, cqrs_error_t *err);

/* The claims part of auth_jwt_verify, on the verified payload. Pure. */
bool auth_jwt_claims(const auth_jwt_params_t *p, const char *payload, size_t len, int64_t now,
                     cqrs_principal_t *who, int64_t *valid_until, cqrs_error_t *err);

/* The cache of verified JWTs (cache.c) --------------------------------- */

typedef struct auth_cache auth_cache_t;

/* A cache of up to capacity entries (rounded to a multiple of its ways).
 * Can't fail (out of memory aborts: cqrs/alloc.h). */
auth_cache_t *auth_cache_new(size_t capacity);
void auth_cache_destroy(auth_cache_t *c);
/* The principal cached for the token whose SHA-256 is digest, when its entry
 * is still valid at now and was verified with key set generation gen. Thread-safe. */
bool auth_cache_get(auth_cache_t *c, const unsigned char digest[32], int64_t now, uint64_t gen,
                    cqrs_principal_t *who);
/* Remembers who until valid_until; evicts an expired entry, else the oldest of
 * its set. Thread-safe; can't fail. */
void auth_cache_put(auth_cache_t *c, const unsigned char digest[32], int64_t valid_until, uint64_t gen,
                    const cqrs_principal_t *who);

/* API keys (apikey.c) ---------------------------------------------------- */

/* Verifies an API key "cqrs_<keyId>_<secret>" against the registry: known
 * keyId, SHA-256 of the secret equal (constant time), not revoked, tenant
 * active. A malformed key is refused without a lookup. */
bool auth_apikey_verify(cqrs_registry_t *reg, const char *key, size_t len, cqrs_principal_t *who,
                        cqrs_error_t *err);

/* True when s (len bytes) looks like an API key rather than a JWT. */
bool auth_apikey_like(const char *s, size_t len);

#endif
