/* JWT verification: a compact JWS checked with cjose, then its claims.
 *
 * Order matters: the protected header's alg is checked against the allowlist
 * before any key is looked at (so "none", and HS256 without AUTH_HS256_SECRET,
 * never reach a verifier), the key must be of the alg's type (RSA for RS256,
 * EC P-256 for ES256; HS256 only with the "oct" key of the configured secret,
 * never a key from the JWKS, which is what defeats the RS256->HS256 key
 * confusion), and the claims are read only from a payload whose signature
 * verified. Header members that point at keys (jku, x5u, jwk) are ignored, and
 * a "crit" header is refused since we implement no extension. */
#include "internal.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool fail(cqrs_error_t *err, const char *reason) {
  cqrs_error_set(err, CQRS_ERR_UNAUTHENTICATED, NULL, "%s", reason);
  return false;
}

/* A NumericDate claim: absent is fine unless required; anything but a number is not. */
static bool numeric_date(json_t *claims, const char *name, bool required, bool *present, int64_t *out) {
  json_t *v = json_object_get(claims, name);
  *present = v != NULL;
  if (!v) return !required;
  if (!json_is_number(v)) return false;
  double d = json_number_value(v);
  if (!isfinite(d) || d < 0 || d > 1e15) return false;
  *out = (int64_t)d;
  return true;
}

static bool audience_ok(json_t *aud, const char *want) {
  if (json_is_string(aud)) return strcmp(json_string_value(aud), want) == 0;
  if (!json_is_array(aud)) return false;
  size_t i;
  json_t *v;
  json_array_foreach(aud, i, v) if (json_is_string(v) && strcmp(json_string_value(v), want) == 0) return true;
  return false;
}

bool auth_jwt_claims(const auth_jwt_params_t *p, const char *payload, size_t len, int64_t now,
                     cqrs_principal_t *who, int64_t *valid_until, cqrs_error_t *err) {
  json_error_t jerr;
  json_t *c = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
  bool ok = false;
  int64_t exp = 0, nbf = 0, iat = 0;
  bool has_exp, has_nbf, has_iat;
  if (!json_is_object(c)) {
    fail(err, "claims are not a JSON object");
    goto done;
  }
  if (!numeric_date(c, "exp", true, &has_exp, &exp)) {
    fail(err, "exp missing or not a NumericDate");
    goto done;
  }
  if (!numeric_date(c, "nbf", false, &has_nbf, &nbf) || !numeric_date(c, "iat", false, &has_iat, &iat)) {
    fail(err, "nbf or iat is not a NumericDate");
    goto done;
  }
  if (now >= exp + p->leeway_s) {
    fail(err, "token expired");
    goto done;
  }
  if (has_nbf && now + p->leeway_s < nbf) {
    fail(err, "token not yet valid (nbf)");
    goto done;
  }
  if (has_iat && now + p->leeway_s < iat) {
    fail(err, "token issued in the future (iat)");
    goto done;
  }
  const char *iss = json_string_value(json_object_get(c, "iss"));
  if (p->issuer && (!iss || strcmp(iss, p->issuer) != 0)) {
    fail(err, "wrong issuer");
    goto done;
  }
  if (p->audience && !audience_ok(json_object_get(c, "aud"), p->audience)) {
    fail(err, "wrong audience");
    goto done;
  }
  const char *sub = json_string_value(json_object_get(c, "sub"));
  if (!sub || !cqrs_event_authid_valid(sub, strlen(sub))) { /* recorded in every event it causes */
    fail(err, "sub missing, empty, too long or with a control character");
    goto done;
  }
  json_t *scope = json_object_get(c, "scope");
  if (scope && !json_is_string(scope)) {
    fail(err, "scope is not a string");
    goto done;
  }
  memset(who, 0, sizeof *who);
  who->scopes = cqrs_scopes_parse(json_string_value(scope));
  json_t *tenant = json_object_get(c, p->tenant_claim);
  if (tenant) {
    if (!json_is_string(tenant) || !cqrs_tenant_valid(json_string_value(tenant), NULL)) {
      fail(err, "tenant claim is not a valid tenant id");
      goto done;
    }
    snprintf(who->tenant, sizeof who->tenant, "%s", json_string_value(tenant));
  } else if (!(who->scopes & CQRS_SCOPE_PLATFORM)) {
    fail(err, "tenant claim missing");
    goto done;
  }
  snprintf(who->subject, sizeof who->subject, "%s", sub);
  who->kind = CQRS_AUTHTYPE_APP_USER;
  *valid_until = exp + p->leeway_s;
  ok = true;
done:
  json_decref(c);
  return ok;
}

bool auth_b64url_ok(const char *s, size_t len) {
  if (len % 4 == 1) return false;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  }
  return true;
}

/* True when token has the shape of a compact JWS: three parts separated by
 * '.', each unpadded base64url of a possible length (auth_b64url_ok). Why
 * here and not left to cjose: cjose 0.6.2's base64url decoder assert()s
 * (aborts the process) on a part with '=' after 4k + 1 characters, e.g.
 * "abcde===.e30.c2ln", and any client can send that (found by
 * tests/fuzz/fuzz_auth). RFC 7515 compact serialization never pads. */
static bool compact_shape_ok(const char *token, size_t len) {
  const char *dot1 = memchr(token, '.', len);
  const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
  if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token))) return false;
  return auth_b64url_ok(token, (size_t)(dot1 - token)) && auth_b64url_ok(dot1 + 1, (size_t)(dot2 - dot1 - 1)) &&
         auth_b64url_ok(dot2 + 1, len - (size_t)(dot2 + 1 - token));
}

bool auth_jwt_verify(const auth_jwt_params_t *p, const char *token, size_t len, int64_t now,
                     cqrs_principal_t *who, int64_t *valid_until, uint64_t *gen, cqrs_error_t *err) {
  cjose_err cerr;
  auth_keyset_t *ks = NULL;
  uint8_t *payload = NULL;
  size_t payload_len = 0;
  bool ok = false;
  *gen = 0;
  if (!compact_shape_ok(token, len)) return fail(err, "not a compact JWS");
  cjose_jws_t *jws = cjose_jws_import(token, len, &cerr);
  if (!jws) return fail(err, "not a compact JWS");
  cjose_header_t *hdr = cjose_jws_get_protected(jws);
  const char *alg = hdr ? cjose_header_get(hdr, CJOSE_HDR_ALG, &cerr) : NULL;
  const char *kid = hdr ? cjose_header_get(hdr, CJOSE_HDR_KID, &cerr) : NULL;
  const cjose_jwk_t *key = NULL;
  if (hdr && json_object_get((json_t *)hdr, "crit")) {
    fail(err, "crit header not supported");
    goto done;
  }
  if (!alg) {
    fail(err, "alg missing");
    goto done;
  }
  if (strcmp(alg, "HS256") == 0) {
    if (!p->hs256) {
      fail(err, "alg HS256 not allowed (no AUTH_HS256_SECRET)");
      goto done;
    }
    key = p->hs256;
    *gen = p->jwks ? auth_jwks_generation(p->jwks) : 0;
  } else if (strcmp(alg, "RS256") == 0 || strcmp(alg, "ES256") == 0) {
    if (!p->jwks) {
      fail(err, "no JWKS configured");
      goto done;
    }
    if (json_object_get((json_t *)hdr, "kid") && !kid) {
      fail(err, "kid is not a string");
      goto done;
    }
    ks = auth_jwks_acquire(p->jwks, gen);
    const auth_key_t *k = auth_keyset_find(ks, kid);
    if (!k && kid && auth_jwks_refresh_on_miss(p->jwks)) {
      auth_keyset_release(ks);
      ks = auth_jwks_acquire(p->jwks, gen);
      k = auth_keyset_find(ks, kid);
    }
    if (!k) {
      fail(err, kid ? "unknown kid" : "no kid, and the JWKS has more than one key");
      goto done;
    }
    if (strcmp(k->alg, alg) != 0) {
      fail(err, "key type does not match alg");
      goto done;
    }
    key = k->jwk;
  } else {
    fail(err, "alg not allowed");
    goto done;
  }
  if (!cjose_jws_verify(jws, key, &cerr)) {
    fail(err, "bad signature");
    goto done;
  }
  if (!cjose_jws_get_plaintext(jws, &payload, &payload_len, &cerr)) {
    fail(err, "no payload");
    goto done;
  }
  ok = auth_jwt_claims(p, (const char *)payload, payload_len, now, who, valid_until, err);
done:
  auth_keyset_release(ks);
  cjose_jws_release(jws);
  return ok;
}
