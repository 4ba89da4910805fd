/* The schema registry's records (cqrs/schemas.h): subject names, canonical
 * schema text, ids, and record keys and values. */
#include "cqrs/alloc.h"
#include "cqrs/schemas.h"

#include "cqrs/json.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cqrs_schema_subject_valid(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > CQRS_SUBJECT_MAX) return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '/') return false;
  return true;
}

char *cqrs_schema_canonical(const char *json, size_t len, cqrs_jsonschema_t **compiled, cqrs_error_t *err) {
  bson_t *doc = cqrs_json_parse(json, len, err);
  if (!doc) return NULL;
  cqrs_jsonschema_t *s = cqrs_jsonschema_compile_bson(doc, err);
  char *text = s ? cqrs_json_write(doc, NULL) : NULL;
  bson_destroy(doc);
  if (compiled && text)
    *compiled = s;
  else
    cqrs_jsonschema_destroy(s);
  return text;
}

int32_t cqrs_schema_id(const char *canonical) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)canonical, strlen(canonical), md);
  uint32_t id = ((uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 | (uint32_t)md[2] << 8 | md[3]) & 0x7fffffffu;
  return id ? (int32_t)id : 1;
}

char *cqrs_schemas_version_key(const char *subject, int version, int32_t id) {
  size_t len = strlen(subject) + 48;
  char *key = cqrs_xmalloc(len);
  snprintf(key, len, "schema/%s/%d/%d", subject, version, (int)id);
  return key;
}

/* A bson_free'd string as a free()'d one. */
static char *plain(char *json, size_t *len) {
  size_t n = strlen(json);
  char *out = cqrs_xmalloc(n + 1);
  memcpy(out, json, n + 1);
  if (len) *len = n;
  bson_free(json);
  return out;
}

char *cqrs_schemas_version_json(const char *subject, int version, int32_t id, const char *canonical, size_t *len) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "subject", subject);
  BSON_APPEND_INT32(&doc, "version", version);
  BSON_APPEND_INT32(&doc, "id", id);
  BSON_APPEND_UTF8(&doc, "schemaType", CQRS_SCHEMA_TYPE_JSON);
  BSON_APPEND_UTF8(&doc, "schema", canonical);
  char *json = plain(cqrs_json_write(&doc, NULL), len);
  bson_destroy(&doc);
  return json;
}

char *cqrs_schemas_config_key(const char *subject) {
  if (!subject) return cqrs_xstrdup("config");
  size_t len = strlen(subject) + 8;
  char *key = cqrs_xmalloc(len);
  snprintf(key, len, "config/%s", subject);
  return key;
}

char *cqrs_schemas_config_json(cqrs_compat_level_t level, size_t *len) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "compatibilityLevel", cqrs_compat_level_name(level));
  char *json = plain(cqrs_json_write(&doc, NULL), len);
  bson_destroy(&doc);
  return json;
}
