/* The per-field work of the event contract's encode and decode (contract.h):
 * one writer and one reader per field type, on top of the typed JSON readers,
 * so every decode error names the field the way command errors do. */
#include "contract.h"

#include "cqrs/json.h"

#include <assert.h>
#include <stdio.h>

const char *cqrs_event_path(char buf[CQRS_EVENT_PATH_MAX], const char *path, const char *key) {
  if (!path) return key;
  snprintf(buf, CQRS_EVENT_PATH_MAX, "%s.%s", path, key);
  return buf;
}

void cqrs_event_put_string(bson_t *doc, const char *key, bool required, const char *const *v) {
  if (*v) {
    BSON_APPEND_UTF8(doc, key, *v);
    return;
  }
  assert(!required && "a required event field was left NULL");
  /* In a release build the bug shows as null, which decode refuses, rather
   * than as a crash in strlen. */
  if (required) BSON_APPEND_NULL(doc, key);
}

void cqrs_event_put_number(bson_t *doc, const char *key, bool required, const double *v) {
  (void)required; /* numbers are always written */
  BSON_APPEND_DOUBLE(doc, key, *v);
}

void cqrs_event_put_integer(bson_t *doc, const char *key, bool required, const int64_t *v) {
  (void)required;
  BSON_APPEND_INT64(doc, key, *v);
}

/* The field path ("items[1].quantity") only ever goes into an error, and
 * formatting it for every field of every item was most of what a decode of
 * an event with items cost (validation before append decodes every decided
 * event): a nested field is read first without it, and again with it only to
 * say what is wrong. */
#define READ_NAMING_THE_PATH(call_with_field)                                                                  \
  do {                                                                                                         \
    if (!path) {                                                                                               \
      const char *field = key;                                                                                 \
      cqrs_error_t *e = err;                                                                                   \
      return call_with_field;                                                                                  \
    }                                                                                                          \
    {                                                                                                          \
      const char *field = key;                                                                                 \
      cqrs_error_t *e = NULL;                                                                                  \
      if (call_with_field) return true;                                                                        \
    }                                                                                                          \
    if (!err) return false;                                                                                    \
    char at[CQRS_EVENT_PATH_MAX];                                                                              \
    const char *field = cqrs_event_path(at, path, key);                                                        \
    cqrs_error_t *e = err;                                                                                     \
    return call_with_field;                                                                                    \
  } while (0)

bool cqrs_event_get_string(const bson_t *doc, const char *key, const char *path, bool required, const char **out,
                           cqrs_error_t *err) {
  READ_NAMING_THE_PATH(cqrs_json_get_string(doc, key, field, required, 0, out, e));
}

bool cqrs_event_get_number(const bson_t *doc, const char *key, const char *path, bool required, double *out,
                           cqrs_error_t *err) {
  bool present;
  READ_NAMING_THE_PATH(cqrs_json_get_number(doc, key, field, required, out, &present, e));
}

bool cqrs_event_get_integer(const bson_t *doc, const char *key, const char *path, bool required, int64_t *out,
                            cqrs_error_t *err) {
  bool present;
  READ_NAMING_THE_PATH(cqrs_json_get_int64(doc, key, field, required, out, &present, e));
}

bool cqrs_event_get_object(const bson_t *doc, const char *key, const char *path, bool required, bson_t *out,
                           bool *found, cqrs_error_t *err) {
  char at[CQRS_EVENT_PATH_MAX];
  return cqrs_json_get_object(doc, key, cqrs_event_path(at, path, key), required, out, found, err);
}

bool cqrs_event_get_array(const bson_t *doc, const char *key, const char *path, bool required, bson_t *out,
                          bool (*item_cb)(const bson_t *item, const char *path, cqrs_error_t *err),
                          cqrs_error_t *err) {
  /* Room for field + "[<any size_t>]"; the error's field keeps what fits. */
  char at[CQRS_EVENT_PATH_MAX], item_at[CQRS_EVENT_PATH_MAX + 24];
  const char *field = cqrs_event_path(at, path, key);
  bool present;
  if (!cqrs_json_get_array(doc, key, field, required, out, &present, err)) return false;
  if (!present) return true;
  bson_iter_t it;
  if (!bson_iter_init(&it, out)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s is malformed", field);
    return false;
  }
  for (size_t i = 0; bson_iter_next(&it); i++) {
    const uint8_t *raw;
    uint32_t len;
    bson_t item;
    bool is_object = BSON_ITER_HOLDS_DOCUMENT(&it);
    if (is_object) bson_iter_document(&it, &len, &raw);
    bool readable = is_object && bson_init_static(&item, raw, len);
    if (readable && item_cb(&item, NULL, NULL)) continue; /* valid: no path to name (see above) */
    snprintf(item_at, sizeof item_at, "%s[%zu]", field, i);
    if (!is_object)
      cqrs_error_set(err, CQRS_ERR_INVALID, item_at, "%s must be an object", item_at);
    else if (!readable)
      cqrs_error_set(err, CQRS_ERR_INVALID, item_at, "%s is malformed", item_at);
    else
      item_cb(&item, item_at, err); /* fails again, naming the path */
    return false;
  }
  return true;
}
