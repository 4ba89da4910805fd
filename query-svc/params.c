/* Query parameters as a small list of copied name/value pairs (a query takes
 * at most a handful, so lookups scan). */
#include "params.h"

#include "cqrs/json.h"

#include "cursor.h"

#include <bson/bson.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  char *name;
  char *value;
} pair_t;

struct cqrs_params {
  pair_t *pairs;
  size_t n, cap;
};

cqrs_params_t *cqrs_params_new(void) { return bson_malloc0(sizeof(cqrs_params_t)); }

void cqrs_params_destroy(cqrs_params_t *p) {
  if (!p) return;
  for (size_t i = 0; i < p->n; i++) {
    bson_free(p->pairs[i].name);
    bson_free(p->pairs[i].value);
  }
  bson_free(p->pairs);
  bson_free(p);
}

bool cqrs_params_add(cqrs_params_t *p, const char *name, const char *value, cqrs_error_t *err) {
  if (cqrs_params_get(p, name)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s is given more than once", name);
    return false;
  }
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 8;
    p->pairs = bson_realloc(p->pairs, p->cap * sizeof *p->pairs);
  }
  p->pairs[p->n].name = bson_strdup(name);
  p->pairs[p->n].value = bson_strdup(value);
  p->n++;
  return true;
}

const char *cqrs_params_get(const cqrs_params_t *p, const char *name) {
  for (size_t i = 0; i < p->n; i++)
    if (strcmp(p->pairs[i].name, name) == 0) return p->pairs[i].value;
  return NULL;
}

bool cqrs_params_string(const cqrs_params_t *p, const char *name, bool required, size_t max_len,
                        const char **out, cqrs_error_t *err) {
  const char *s = cqrs_params_get(p, name);
  *out = NULL;
  if (!s || !*s) {
    if (!required) return true;
    cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s is required", name);
    return false;
  }
  /* The store refuses (or worse, mangles) strings that are not UTF-8. */
  if (!bson_utf8_validate(s, strlen(s), false)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s is not valid UTF-8", name);
    return false;
  }
  if (!cqrs_json_check_length(s, max_len, name, err)) return false;
  *out = s;
  return true;
}

bool cqrs_params_limit(const cqrs_params_t *p, int *out, cqrs_error_t *err) {
  const char *s = cqrs_params_get(p, "limit");
  *out = CQRS_PARAMS_LIMIT_DEFAULT;
  if (!s) return true;
  /* Digits only: strtol would take "+5", " 5" and "5abc". */
  long v = 0;
  size_t n = strlen(s);
  bool ok = n > 0 && n <= 3;
  for (size_t i = 0; ok && i < n; i++) {
    ok = s[i] >= '0' && s[i] <= '9';
    v = v * 10 + (s[i] - '0');
  }
  if (!ok || v < 1 || v > CQRS_PARAMS_LIMIT_MAX) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "limit", "limit must be an integer from 1 to %d",
                   CQRS_PARAMS_LIMIT_MAX);
    return false;
  }
  *out = (int)v;
  return true;
}

bool cqrs_params_cursor(const cqrs_params_t *p, const char **out, cqrs_error_t *err) {
  const char *s = cqrs_params_get(p, "cursor");
  *out = NULL;
  if (!s) return true;
  if (!*s || strlen(s) > CQRS_CURSOR_MAX_LEN) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "cursor", "cursor is not valid for this list");
    return false;
  }
  *out = s;
  return true;
}

bool cqrs_params_one_of(const cqrs_params_t *p, const char *a, const char *b, const char **out,
                        cqrs_error_t *err) {
  bool has_a = cqrs_params_get(p, a) != NULL, has_b = cqrs_params_get(p, b) != NULL;
  if (has_a == has_b) {
    const char *field = has_a ? b : a;
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "exactly one of %s and %s is required", a, b);
    return false;
  }
  *out = has_a ? a : b;
  return true;
}

bool cqrs_params_enum(const cqrs_params_t *p, const char *name, const char *const *allowed,
                      const char **out, cqrs_error_t *err) {
  if (!cqrs_params_string(p, name, true, 0, out, err)) return false;
  char list[192] = "";
  size_t used = 0;
  for (const char *const *a = allowed; *a; a++) {
    if (strcmp(*a, *out) == 0) return true;
    int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *a);
    if (w > 0 && (size_t)w < sizeof list - used) used += (size_t)w;
  }
  cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s must be one of %s", name, list);
  *out = NULL;
  return false;
}
