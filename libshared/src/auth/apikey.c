/* API keys "cqrs_<keyId>_<secret>" (cqrs/auth.h): issuing and verifying.
 * keyId is 16 and the secret 64 lowercase hex characters from RAND_bytes; what
 * is stored (by admin-svc, in the control record) is the SHA-256 of the
 * secret's 64 characters as they appear in the key, never the secret. */
#include "internal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#define PREFIX "cqrs_"
#define PREFIX_LEN 5

bool auth_sha256(const void *data, size_t len, unsigned char out[32]) {
  unsigned int n = 0;
  return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32;
}

static void hex(const unsigned char *b, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[b[i] >> 4];
    out[2 * i + 1] = digits[b[i] & 15];
  }
  out[2 * n] = '\0';
}

static bool all_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  return true;
}

bool cqrs_apikey_new(const char *tenant, unsigned scopes, const char *now, cqrs_apikey_rec_t *rec,
                     char key[CQRS_API_KEY_LEN + 1], cqrs_error_t *err) {
  if (!cqrs_tenant_valid(tenant, err)) return false;
  unsigned char id[CQRS_KEY_ID_LEN / 2], secret[CQRS_KEY_SECRET_LEN / 2];
  char secret_hex[CQRS_KEY_SECRET_LEN + 1];
  if (RAND_bytes(id, sizeof id) != 1 || RAND_bytes(secret, sizeof secret) != 1) {
    cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "the random source failed");
    return false;
  }
  memset(rec, 0, sizeof *rec);
  hex(id, sizeof id, rec->key_id);
  hex(secret, sizeof secret, secret_hex);
  bool ok = auth_sha256(secret_hex, CQRS_KEY_SECRET_LEN, rec->sha256);
  if (ok) {
    snprintf(rec->tenant, sizeof rec->tenant, "%s", tenant);
    snprintf(rec->created_at, sizeof rec->created_at, "%s", now ? now : "");
    rec->scopes = scopes;
    snprintf(key, CQRS_API_KEY_LEN + 1, PREFIX "%s_%s", rec->key_id, secret_hex);
  } else {
    cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "SHA-256 failed");
  }
  OPENSSL_cleanse(secret, sizeof secret);
  OPENSSL_cleanse(secret_hex, sizeof secret_hex);
  return ok;
}

bool auth_apikey_like(const char *s, size_t len) { return len >= PREFIX_LEN && memcmp(s, PREFIX, PREFIX_LEN) == 0; }

bool auth_apikey_verify(cqrs_registry_t *reg, const char *key, size_t len, cqrs_principal_t *who,
                        cqrs_error_t *err) {
  const char *id = key + PREFIX_LEN, *secret = id + CQRS_KEY_ID_LEN + 1;
  if (len != CQRS_API_KEY_LEN || !auth_apikey_like(key, len) || id[CQRS_KEY_ID_LEN] != '_' ||
      !all_hex(id, CQRS_KEY_ID_LEN) || !all_hex(secret, CQRS_KEY_SECRET_LEN)) {
    cqrs_error_set(err, CQRS_ERR_UNAUTHENTICATED, NULL, "malformed API key");
    return false;
  }
  char key_id[CQRS_KEY_ID_LEN + 1];
  memcpy(key_id, id, CQRS_KEY_ID_LEN);
  key_id[CQRS_KEY_ID_LEN] = '\0';
  cqrs_apikey_rec_t rec;
  unsigned char digest[32];
  if (!reg || !cqrs_registry_apikey(reg, key_id, &rec)) {
    cqrs_error_set(err, CQRS_ERR_UNAUTHENTICATED, NULL, "unknown API key");
    return false;
  }
  if (!auth_sha256(secret, CQRS_KEY_SECRET_LEN, digest) || CRYPTO_memcmp(digest, rec.sha256, 32) != 0) {
    cqrs_error_set(err, CQRS_ERR_UNAUTHENTICATED, NULL, "API key secret does not match");
    return false;
  }
  if (rec.revoked) {
    cqrs_error_set(err, CQRS_ERR_UNAUTHENTICATED, NULL, "API key revoked");
    return false;
  }
  if (cqrs_registry_tenant_state(reg, rec.tenant) != CQRS_TENANT_ACTIVE) {
    cqrs_error_set(err, CQRS_ERR_UNAUTHENTICATED, NULL, "tenant of the API key is not active");
    return false;
  }
  memset(who, 0, sizeof *who);
  snprintf(who->tenant, sizeof who->tenant, "%s", rec.tenant);
  snprintf(who->subject, sizeof who->subject, "apikey:%s", key_id);
  who->kind = CQRS_AUTHTYPE_API_KEY;
  who->scopes = rec.scopes & ~(unsigned)CQRS_SCOPE_PLATFORM; /* a tenant's key never administers the platform */
  return true;
}
