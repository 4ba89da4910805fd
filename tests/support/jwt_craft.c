/* Hand-made JWTs for the token-attack tests (jwt_craft.h). */
#define OPENSSL_SUPPRESS_DEPRECATED /* RSA* from cjose's key data, only to write a PEM */
#include "jwt_craft.h"

#include <cjose/cjose.h>
#include <jansson.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tk_b64url(const void *data, size_t len) {
  char *out = NULL;
  size_t n;
  if (!cjose_base64url_encode(data, len, &out, &n, NULL)) return NULL;
  return out;
}

char *tk_jwt_craft(const char *header_json, const char *payload_json, const void *sig, size_t sig_len) {
  char *h = tk_b64url(header_json, strlen(header_json)), *p = tk_b64url(payload_json, strlen(payload_json));
  char *s = sig && sig_len ? tk_b64url(sig, sig_len) : strdup("");
  size_t n = strlen(h) + strlen(p) + strlen(s) + 3;
  char *jwt = malloc(n);
  snprintf(jwt, n, "%s.%s.%s", h, p, s);
  free(h);
  free(p);
  free(s);
  return jwt;
}

char *tk_jwt_hs256(const char *header_json, const char *payload_json, const void *key, size_t key_len) {
  char *unsigned_jwt = tk_jwt_craft(header_json, payload_json, NULL, 0); /* "h.p." */
  size_t signing_len = strlen(unsigned_jwt) - 1;
  unsigned char mac[32];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)unsigned_jwt, signing_len, mac, &mac_len);
  char *s = tk_b64url(mac, mac_len);
  size_t n = strlen(unsigned_jwt) + strlen(s) + 1;
  char *jwt = malloc(n);
  snprintf(jwt, n, "%s%s", unsigned_jwt, s);
  free(unsigned_jwt);
  free(s);
  return jwt;
}

char *tk_jwks_first(const char *jwks_json) {
  json_t *doc = json_loads(jwks_json, 0, NULL);
  json_t *k = json_array_get(json_object_get(doc, "keys"), 0);
  char *out = k ? json_dumps(k, JSON_COMPACT) : NULL;
  json_decref(doc);
  return out;
}

char *tk_jwks_rsa_pem(const char *jwks_json) {
  char *jwk_json = tk_jwks_first(jwks_json);
  cjose_jwk_t *jwk = jwk_json ? cjose_jwk_import(jwk_json, strlen(jwk_json), NULL) : NULL;
  char *pem = NULL;
  if (jwk && cjose_jwk_get_kty(jwk, NULL) == CJOSE_JWK_KTY_RSA) {
    RSA *rsa = cjose_jwk_get_keydata(jwk, NULL);
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio && PEM_write_bio_RSA_PUBKEY(bio, rsa)) {
      char *data;
      long n = BIO_get_mem_data(bio, &data);
      pem = strndup(data, (size_t)n);
    }
    BIO_free(bio);
  }
  cjose_jwk_release(jwk);
  free(jwk_json);
  return pem;
}

char *tk_jwk_member(const char *jwk_json, const char *name) {
  json_t *doc = json_loads(jwk_json, 0, NULL);
  const char *v = json_string_value(json_object_get(doc, name));
  char *out = v ? strdup(v) : NULL;
  json_decref(doc);
  return out;
}

char *tk_jwk_with(const char *jwk_json, const char *name, const char *value) {
  json_t *doc = json_loads(jwk_json, 0, NULL);
  json_object_set_new(doc, name, json_string(value));
  char *out = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  return out;
}

char *tk_jwks_merge(const char *const *jwks, size_t n) {
  json_t *keys = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *doc = json_loads(jwks[i], 0, NULL);
    json_array_extend(keys, json_object_get(doc, "keys"));
    json_decref(doc);
  }
  json_t *set = json_pack("{s:o}", "keys", keys);
  char *out = json_dumps(set, JSON_COMPACT);
  json_decref(set);
  return out;
}
