/* JSON parsing and writing through libbson, and typed field readers. */
#include "cqrs/json.h"

#include <math.h>
#include <string.h>

bson_t *cqrs_json_parse(const char *buf, size_t len, cqrs_error_t *err) {
  size_t i = 0;
  while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n')) i++;
  /* libbson also accepts a top-level array; the contract wants an object. */
  if (i == len || buf[i] != '{') {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "body is not a JSON object");
    return NULL;
  }
  bson_error_t berr;
  bson_t *doc = bson_new_from_json((const uint8_t *)buf, (ssize_t)len, &berr);
  if (!doc) cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "body is not valid JSON: %s", berr.message);
  return doc;
}

char *cqrs_json_write(const bson_t *doc, size_t *len) {
  return bson_as_relaxed_extended_json(doc, len);
}

void cqrs_json_append_string(bson_string_t *out, const char *s) {
  char *esc = bson_utf8_escape_for_json(s, -1);
  bson_string_append_c(out, '"');
  bson_string_append(out, esc ? esc : "");
  bson_string_append_c(out, '"');
  bson_free(esc);
}

/* Finds key; false when it is absent or JSON null. */
static bool find(const bson_t *doc, const char *key, bson_iter_t *it) {
  return bson_iter_init_find(it, doc, key) && BSON_ITER_HOLDS_NULL(it) == false;
}

static bool missing(const char *field, bool required, cqrs_error_t *err) {
  if (required) cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s is required", field);
  return !required;
}

bool cqrs_json_get_string(const bson_t *doc, const char *key, const char *field, bool required,
                          size_t max_len, const char **out, cqrs_error_t *err) {
  bson_iter_t it;
  field = field ? field : key;
  *out = NULL;
  if (!find(doc, key, &it)) return missing(field, required, err);
  if (!BSON_ITER_HOLDS_UTF8(&it)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s must be a string", field);
    return false;
  }
  uint32_t n;
  const char *s = bson_iter_utf8(&it, &n);
  if (required && n == 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s must not be empty", field);
    return false;
  }
  if (strlen(s) != n) {
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s must not contain NUL characters", field);
    return false;
  }
  size_t chars = 0;
  for (const char *c = s; *c; c = bson_utf8_next_char(c)) chars++;
  if (max_len && chars > max_len) {
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s is longer than %zu characters", field, max_len);
    return false;
  }
  *out = s;
  return true;
}

bool cqrs_json_get_int64(const bson_t *doc, const char *key, const char *field, bool required,
                         int64_t *out, bool *present, cqrs_error_t *err) {
  bson_iter_t it;
  field = field ? field : key;
  *present = false;
  if (!find(doc, key, &it)) return missing(field, required, err);
  if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
    *out = bson_iter_as_int64(&it);
  } else if (BSON_ITER_HOLDS_DOUBLE(&it) && bson_iter_double(&it) == floor(bson_iter_double(&it)) &&
             fabs(bson_iter_double(&it)) < 9e15) {
    *out = (int64_t)bson_iter_double(&it);
  } else {
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s must be an integer", field);
    return false;
  }
  *present = true;
  return true;
}

bool cqrs_json_get_number(const bson_t *doc, const char *key, const char *field, bool required,
                          double *out, bool *present, cqrs_error_t *err) {
  bson_iter_t it;
  field = field ? field : key;
  *present = false;
  if (!find(doc, key, &it)) return missing(field, required, err);
  /* libbson also reads {"$numberDouble":"NaN"}: a number, but not one a client means. */
  if (!BSON_ITER_HOLDS_NUMBER(&it) || !isfinite(bson_iter_as_double(&it))) {
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s must be a finite number", field);
    return false;
  }
  *out = bson_iter_as_double(&it);
  *present = true;
  return true;
}

static bool get_container(const bson_t *doc, const char *key, const char *field, bool required,
                          bson_t *out, bool *present, bool array, cqrs_error_t *err) {
  bson_iter_t it;
  field = field ? field : key;
  *present = false;
  if (!find(doc, key, &it)) return missing(field, required, err);
  if (array ? !BSON_ITER_HOLDS_ARRAY(&it) : !BSON_ITER_HOLDS_DOCUMENT(&it)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s must be %s", field,
                   array ? "an array" : "an object");
    return false;
  }
  const uint8_t *data;
  uint32_t len;
  if (array)
    bson_iter_array(&it, &len, &data);
  else
    bson_iter_document(&it, &len, &data);
  if (!bson_init_static(out, data, len)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s is malformed", field);
    return false;
  }
  *present = true;
  return true;
}

bool cqrs_json_get_object(const bson_t *doc, const char *key, const char *field, bool required,
                          bson_t *out, bool *present, cqrs_error_t *err) {
  return get_container(doc, key, field, required, out, present, false, err);
}

bool cqrs_json_get_array(const bson_t *doc, const char *key, const char *field, bool required,
                         bson_t *out, bool *present, cqrs_error_t *err) {
  return get_container(doc, key, field, required, out, present, true, err);
}
