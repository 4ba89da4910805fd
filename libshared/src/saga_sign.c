/* HMAC-SHA256 signatures of saga-svc's command records (cqrs/saga_sign.h). */
#include "cqrs/saga_sign.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <string.h>

static const char *const allowed[] = {CQRS_CMD_RECORD_USER_ORDER, CQRS_CMD_RECORD_CUSTOMER_ORDER,
                                      CQRS_CMD_UPDATE_ORDER_STATUS};

bool cqrs_saga_sign(const char *key, const char *tenant, const char *value, size_t len,
                    char out[CQRS_SAGA_SIGNATURE_LEN]) {
  /* A versioned domain separator, then tenant and value split by a NUL (a
   * tenant has no NUL), so ("a","bc") and ("ab","c") differ. */
  static const char domain[] = "cqrs-saga-command-v1";
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t n = 0;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  EVP_MAC *mac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *c = mac_alg ? EVP_MAC_CTX_new(mac_alg) : NULL;
  bool ok = c && EVP_MAC_init(c, (const unsigned char *)key, strlen(key), params) == 1 &&
            EVP_MAC_update(c, (const unsigned char *)domain, sizeof domain) == 1 &&
            EVP_MAC_update(c, (const unsigned char *)tenant, strlen(tenant) + 1) == 1 &&
            EVP_MAC_update(c, (const unsigned char *)value, len) == 1 &&
            EVP_MAC_final(c, mac, &n, sizeof mac) == 1 && n == 32;
  EVP_MAC_CTX_free(c);
  EVP_MAC_free(mac_alg);
  if (!ok) return false;
  for (unsigned i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", mac[i]);
  return true;
}

bool cqrs_saga_verify(const char *key, const char *tenant, const char *value, size_t len, const char *signature) {
  char want[CQRS_SAGA_SIGNATURE_LEN];
  if (!key || !signature || strlen(signature) != CQRS_SAGA_SIGNATURE_LEN - 1) return false;
  if (!cqrs_saga_sign(key, tenant, value, len, want)) return false;
  return CRYPTO_memcmp(want, signature, CQRS_SAGA_SIGNATURE_LEN - 1) == 0;
}

bool cqrs_saga_command_allowed(const char *command_type) {
  for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
    if (command_type && strcmp(allowed[i], command_type) == 0) return true;
  return false;
}
