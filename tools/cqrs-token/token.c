/* cqrs-token's core: key generation and signing with cjose (token.h). */
#include "token.h"

#include <cjose/cjose.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* RFC 7638: SHA-256 over the required members in lexicographic order, no
 * whitespace (jansson's sorted compact dump is exactly that form), base64url. */
static char *thumbprint(json_t *pub) {
  static const char *const rsa[] = {"e", "kty", "n", NULL}, *const ec[] = {"crv", "kty", "x", "y", NULL};
  const char *kty = json_string_value(json_object_get(pub, "kty"));
  const char *const *names = kty && strcmp(kty, "RSA") == 0 ? rsa : ec;
  json_t *req = json_object();
  for (size_t i = 0; names[i]; i++) json_object_set(req, names[i], json_object_get(pub, names[i]));
  char *canon = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(req);
  if (!canon) return NULL;
  unsigned char md[32];
  unsigned int mdlen = 0;
  char *out = NULL;
  size_t outlen;
  if (EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL) == 1 &&
      !cjose_base64url_encode(md, mdlen, &out, &outlen, NULL))
    out = NULL;
  free(canon);
  return out;
}

bool cqrs_token_keygen(const char *alg, char **priv, char **jwks, cqrs_error_t *err) {
  static const uint8_t e65537[] = {0x01, 0x00, 0x01};
  *priv = *jwks = NULL;
  cjose_err cerr;
  cjose_jwk_t *jwk = NULL;
  json_t *pub = NULL, *full = NULL;
  char *kid = NULL, *pub_json = NULL, *priv_json = NULL;
  bool ok = false;
  if (alg && strcmp(alg, "ES256") == 0)
    jwk = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr);
  else if (alg && strcmp(alg, "RS256") == 0)
    jwk = cjose_jwk_create_RSA_random(2048, e65537, sizeof e65537, &cerr);
  else {
    cqrs_error_set(err, CQRS_ERR_INVALID, "alg", "alg must be ES256 or RS256");
    return false;
  }
  if (!jwk) {
    cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "key generation failed: %s", cerr.message);
    return false;
  }
  pub_json = cjose_jwk_to_json(jwk, false, &cerr);
  priv_json = cjose_jwk_to_json(jwk, true, &cerr);
  pub = pub_json ? json_loads(pub_json, 0, NULL) : NULL;
  full = priv_json ? json_loads(priv_json, 0, NULL) : NULL;
  kid = pub ? thumbprint(pub) : NULL;
  if (!pub || !full || !kid) {
    cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "cannot write the key as JSON");
    goto done;
  }
  json_t *objs[] = {pub, full};
  for (size_t i = 0; i < 2; i++) {
    json_object_set_new(objs[i], "kid", json_string(kid));
    json_object_set_new(objs[i], "alg", json_string(alg));
    json_object_set_new(objs[i], "use", json_string("sig"));
  }
  json_t *set = json_pack("{s:[O]}", "keys", pub);
  *jwks = set ? json_dumps(set, JSON_INDENT(2)) : NULL;
  json_decref(set);
  *priv = json_dumps(full, JSON_COMPACT);
  ok = *jwks && *priv;
  if (!ok) {
    free(*jwks);
    free(*priv);
    *jwks = *priv = NULL;
    cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "out of memory");
  }
done:
  json_decref(pub);
  json_decref(full);
  free(kid);
  free(pub_json);
  if (priv_json) OPENSSL_cleanse(priv_json, strlen(priv_json));
  free(priv_json);
  cjose_jwk_release(jwk);
  return ok;
}

char *cqrs_token_claims(const char *iss, const char *aud, const char *sub, const char *tenant,
                        const char *scope, int64_t now, int64_t ttl_s) {
  json_t *c = json_pack("{s:s?, s:s?, s:s?, s:s?, s:I, s:I}", "iss", iss, "aud", aud, "sub", sub, "scope", scope,
                        "iat", (json_int_t)now, "exp", (json_int_t)(now + ttl_s));
  if (!c) return NULL;
  if (tenant) json_object_set_new(c, "tenant", json_string(tenant));
  char *s = json_dumps(c, JSON_COMPACT);
  json_decref(c);
  return s;
}

char *cqrs_token_sign(const char *key_json, const char *claims_json, cqrs_error_t *err) {
  cjose_err cerr;
  char *out = NULL;
  cjose_header_t *hdr = NULL;
  cjose_jws_t *jws = NULL;
  json_t *key = json_loads(key_json, 0, NULL);
  cjose_jwk_t *jwk = cjose_jwk_import(key_json, strlen(key_json), &cerr);
  if (!key || !jwk) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "key", "the key is not a JWK");
    goto done;
  }
  const char *alg = json_string_value(json_object_get(key, "alg"));
  if (!alg) alg = cjose_jwk_get_kty(jwk, &cerr) == CJOSE_JWK_KTY_RSA ? "RS256" : "ES256";
  const char *kid = json_string_value(json_object_get(key, "kid"));
  hdr = cjose_header_new(&cerr);
  if (!hdr || !cjose_header_set(hdr, CJOSE_HDR_ALG, alg, &cerr) ||
      (kid && !cjose_header_set(hdr, CJOSE_HDR_KID, kid, &cerr)) || !cjose_header_set(hdr, "typ", "JWT", &cerr)) {
    cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "cannot build the header: %s", cerr.message);
    goto done;
  }
  jws = cjose_jws_sign(jwk, hdr, (const uint8_t *)claims_json, strlen(claims_json), &cerr);
  const char *compact = NULL;
  if (!jws || !cjose_jws_export(jws, &compact, &cerr)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "key", "cannot sign with this key: %s", cerr.message);
    goto done;
  }
  out = strdup(compact);
done:
  cjose_jws_release(jws);
  cjose_header_release(hdr);
  cjose_jwk_release(jwk);
  json_decref(key);
  return out;
}
