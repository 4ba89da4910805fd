/* A JWKS as the identity provider serves it (AUTH_JWKS_URL or
 * AUTH_JWKS_FILE) through auth_keyset_parse (libshared/src/auth/jwks.c):
 * jansson, then cjose's JWK import for every member of "keys".
 * Input: the JWKS text, in a buffer of its exact size.
 * Properties: no abort (cjose asserts on some inputs: the reason the text
 * is a target); a set is made exactly when the text is an object with a
 * "keys" array; every key the set holds under a kid verifies RS256 with an
 * RSA key or ES256 with an EC key, and a repeated kid is held once. */
#include "fuzz.h"

#include "internal.h"

#include "cqrs/log.h"

#include <jansson.h>

static const cqrs_log_t quiet = {"fuzz-jwks", CQRS_LOG_ERROR};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_exact(data, size);
  cqrs_error_t err = {0};
  auth_keyset_t *ks = auth_keyset_parse(text, size, &quiet, &err);
  json_t *doc = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
  json_t *keys = json_object_get(doc, "keys");
  FUZZ_CHECK((ks != NULL) == json_is_array(keys), "a set %s for %s", ks ? "made" : "refused",
             json_is_array(keys) ? "a JWKS" : "no JWKS");
  if (ks) {
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
      const char *kid = json_string_value(json_object_get(k, "kid"));
      const auth_key_t *key = kid ? auth_keyset_find(ks, kid) : NULL;
      if (!key) continue;
      FUZZ_CHECK(key->jwk && key->alg, "key %s held without its JWK or alg", kid);
      cjose_jwk_kty_t kty = cjose_jwk_get_kty(key->jwk, NULL);
      FUZZ_CHECK((strcmp(key->alg, "RS256") == 0 && kty == CJOSE_JWK_KTY_RSA) ||
                     (strcmp(key->alg, "ES256") == 0 && kty == CJOSE_JWK_KTY_EC),
                 "key %s verifies %s with a key of type %d", kid, key->alg, (int)kty);
      FUZZ_CHECK(strcmp(key->kid, kid) == 0, "kid %s found as %s", kid, key->kid);
    }
    auth_keyset_release(ks);
  } else {
    FUZZ_CHECK(err.message[0], "refused without a reason");
  }
  json_decref(doc);
  free(text);
  return 0;
}
