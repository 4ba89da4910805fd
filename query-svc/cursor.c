/* Opaque list cursors: base64url of canonical extended JSON, so a value keeps
 * its BSON type (an int64 stays an int64) across the round trip. */
#include "cursor.h"

#include <string.h>

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Only scalars: a document here would turn {field: v} into an operator query. */
static bool scalar(bson_type_t t) {
  switch (t) {
  case BSON_TYPE_UTF8:
  case BSON_TYPE_INT32:
  case BSON_TYPE_INT64:
  case BSON_TYPE_DOUBLE:
  case BSON_TYPE_BOOL:
  case BSON_TYPE_DATE_TIME:
  case BSON_TYPE_OID:
  case BSON_TYPE_NULL:
    return true;
  default:
    return false;
  }
}

/* Writes base64url of in (no padding) to out, which holds 4 * ((n + 2) / 3) + 1. */
static void b64_encode(const uint8_t *in, size_t n, char *out) {
  size_t i = 0, o = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = ALPHABET[v >> 18 & 63];
    out[o++] = ALPHABET[v >> 12 & 63];
    out[o++] = ALPHABET[v >> 6 & 63];
    out[o++] = ALPHABET[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = ALPHABET[v >> 18 & 63];
    out[o++] = ALPHABET[v >> 12 & 63];
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = ALPHABET[v >> 18 & 63];
    out[o++] = ALPHABET[v >> 12 & 63];
    out[o++] = ALPHABET[v >> 6 & 63];
  }
  out[o] = '\0';
}

static int b64_digit(char c) {
  const char *p = c ? strchr(ALPHABET, c) : NULL;
  return p ? (int)(p - ALPHABET) : -1;
}

/* Decodes n characters of base64url (no padding) into out (holds n * 3 / 4).
 * Strict: one text per byte string, so unused trailing bits must be zero. */
static bool b64_decode(const char *in, size_t n, uint8_t *out, size_t *out_len) {
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  if (n % 4 == 1) return false;
  for (size_t i = 0; i < n; i++) {
    int d = b64_digit(in[i]);
    if (d < 0) return false;
    acc = acc << 6 | (uint32_t)d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) return false;
  *out_len = o;
  return true;
}

char *cqrs_cursor_encode(const char *list, const char *sort_field, const bson_value_t *value,
                         const bson_value_t *id) {
  if (!scalar(value->value_type) || !scalar(id->value_type)) return NULL;
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "l", list);
  BSON_APPEND_UTF8(&doc, "f", sort_field);
  BSON_APPEND_VALUE(&doc, "v", value);
  BSON_APPEND_VALUE(&doc, "i", id);
  size_t len;
  char *json = bson_as_canonical_extended_json(&doc, &len);
  bson_destroy(&doc);
  char *out = NULL;
  if (json && 4 * ((len + 2) / 3) <= CQRS_CURSOR_MAX_LEN) {
    out = bson_malloc(4 * ((len + 2) / 3) + 1);
    b64_encode((const uint8_t *)json, len, out);
  }
  bson_free(json);
  return out;
}

static bool refuse(cqrs_error_t *err, const char *why) {
  cqrs_error_set(err, CQRS_ERR_INVALID, "cursor", "cursor is not valid for this list: %s", why);
  return false;
}

bool cqrs_cursor_decode(const char *text, const char *list, const char *sort_field,
                        bson_value_t *value, bson_value_t *id, cqrs_error_t *err) {
  memset(value, 0, sizeof *value);
  memset(id, 0, sizeof *id);
  size_t n = strlen(text), len = 0;
  if (n == 0 || n > CQRS_CURSOR_MAX_LEN) return refuse(err, "bad length");
  uint8_t json[CQRS_CURSOR_MAX_LEN];
  if (!b64_decode(text, n, json, &len)) return refuse(err, "not base64url");
  /* libbson would also take a top-level array or stop at a NUL. */
  if (len == 0 || json[0] != '{' || memchr(json, '\0', len)) return refuse(err, "not a cursor");
  bson_t *doc = bson_new_from_json(json, (ssize_t)len, NULL);
  if (!doc) return refuse(err, "not a cursor");
  bson_iter_t it;
  bool l_ok = false, f_ok = false, v_ok = false, i_ok = false, ok = true;
  bson_iter_init(&it, doc);
  /* bson_iter_value points into the iterator, so values are copied as met. */
  while (ok && bson_iter_next(&it)) {
    const char *key = bson_iter_key(&it);
    if (strcmp(key, "l") == 0 && !l_ok && BSON_ITER_HOLDS_UTF8(&it)) {
      ok = l_ok = strcmp(bson_iter_utf8(&it, NULL), list) == 0;
    } else if (strcmp(key, "f") == 0 && !f_ok && BSON_ITER_HOLDS_UTF8(&it)) {
      ok = f_ok = strcmp(bson_iter_utf8(&it, NULL), sort_field) == 0;
    } else if (strcmp(key, "v") == 0 && !v_ok && scalar(bson_iter_type(&it))) {
      bson_value_copy(bson_iter_value(&it), value);
      v_ok = true;
    } else if (strcmp(key, "i") == 0 && !i_ok && scalar(bson_iter_type(&it))) {
      bson_value_copy(bson_iter_value(&it), id);
      i_ok = true;
    } else {
      ok = false;
    }
  }
  ok = ok && l_ok && f_ok && v_ok && i_ok;
  if (!ok) {
    if (v_ok) bson_value_destroy(value);
    if (i_ok) bson_value_destroy(id);
    memset(value, 0, sizeof *value);
    memset(id, 0, sizeof *id);
  }
  bson_destroy(doc);
  return ok || refuse(err, "it belongs to another list or was altered");
}
