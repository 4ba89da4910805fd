/* Query parameters as a small list of copied name/value pairs (a query takes
 * at most a handful, so lookups scan). */
#include "params.h"

#include "cqrs/json.h"

#include "cursor.h"

#include <bson/bson.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* n digits at s into *out; false when one is not a digit. */
static bool digits(const char *s, int n, int *out) {
  *out = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    *out = *out * 10 + (s[i] - '0');
  }
  return true;
}

/* Parses RFC 3339 text into milliseconds since the epoch (fractions below a
 * millisecond are cut). A space where the offset's '+' belongs is taken as
 * '+': that is what an unescaped '+' in a URL's query becomes. */
static bool parse_rfc3339(const char *s, int64_t *ms) {
  int y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0;
  size_t len = strlen(s);
  if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
      !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) || s[13] != ':' ||
      !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
    return false;
  const char *z = s + 19;
  if (*z == '.') {
    int k = 0;
    for (z++; *z >= '0' && *z <= '9'; z++, k++)
      if (k < 3) frac = frac * 10 + (*z - '0');
    if (k == 0) return false;
    for (; k < 3; k++) frac *= 10;
  }
  int sign = 0;
  if ((z[0] == 'Z' || z[0] == 'z') && z[1] == '\0') {
    sign = 0;
  } else if ((z[0] == '+' || z[0] == ' ' || z[0] == '-') && strlen(z) == 6 && digits(z + 1, 2, &oh) && z[3] == ':' &&
             digits(z + 4, 2, &om)) {
    sign = z[0] == '-' ? -1 : 1;
  } else {
    return false;
  }
  static const int days_in[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 ||
      sec > 60 || oh > 23 || om > 59)
    return false;
  struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi,
                  .tm_sec = sec > 59 ? 59 : sec}; /* a leap second counts as the second before */
  int64_t t = (int64_t)timegm(&tm) - (int64_t)sign * (oh * 3600 + om * 60);
  *ms = t * 1000 + frac;
  return true;
}

void cqrs_params_format_time(int64_t ms, char out[32]) {
  time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int frac = (int)(ms - (int64_t)t * 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", frac);
}

bool cqrs_params_time(const cqrs_params_t *p, const char *name, const char **raw, char out[32], cqrs_error_t *err) {
  const char *s = cqrs_params_get(p, name);
  int64_t ms;
  *raw = s;
  out[0] = '\0';
  if (!s) return true;
  if (!parse_rfc3339(s, &ms) || ms < 0 || ms > INT64_C(253402300799999)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, name,
                   "%s must be an RFC 3339 time (e.g. 2026-03-01T10:00:00Z), in years 1970 to 9999", name);
    return false;
  }
  cqrs_params_format_time(ms, out);
  return true;
}

bool cqrs_params_int(const cqrs_params_t *p, const char *name, int64_t min, int64_t max, const char **raw,
                     int64_t *out, cqrs_error_t *err) {
  const char *s = cqrs_params_get(p, name);
  *raw = s;
  *out = 0;
  if (!s) return true;
  char *end;
  errno = 0;
  long long n = strtoll(s, &end, 10);
  if (errno || !*s || *end || n < min || n > max) {
    cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s must be an integer in [%lld, %lld]", name, (long long)min,
                   (long long)max);
    return false;
  }
  *out = n;
  return true;
}

bool cqrs_params_wait(const cqrs_params_t *p, int64_t *min_version, int64_t *wait_ms, cqrs_error_t *err) {
  const char *raw;
  *min_version = *wait_ms = 0;
  if (!p) return true;
  return cqrs_params_int(p, "minVersion", 0, INT64_MAX, &raw, min_version, err) &&
         cqrs_params_int(p, "waitMs", 0, CQRS_PARAMS_WAIT_MS_MAX, &raw, wait_ms, err);
}

static bool allowed_in(const char *const *allowed, const char *name) {
  for (; *allowed; allowed++)
    if (strcmp(*allowed, name) == 0) return true;
  return false;
}

bool cqrs_params_body(const bson_t *body, const char *query, const char *const *allowed, cqrs_params_t *p,
                      cqrs_error_t *err) {
  bson_iter_t it;
  bool seen_type = false;
  bson_iter_init(&it, body);
  while (bson_iter_next(&it)) {
    const char *name = bson_iter_key(&it);
    char num[24];
    const char *value;
    if (strcmp(name, CQRS_PARAMS_QUERY_TYPE) == 0 && !seen_type) {
      seen_type = true;
      continue;
    }
    if (strcmp(name, CQRS_PARAMS_QUERY_TYPE) == 0) {
      cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s is given more than once", name);
      return false;
    }
    if (!allowed_in(allowed, name)) {
      cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s takes no parameter \"%.60s\"", query, name);
      return false;
    }
    if (BSON_ITER_HOLDS_NULL(&it)) continue;
    if (BSON_ITER_HOLDS_UTF8(&it)) {
      uint32_t len;
      value = bson_iter_utf8(&it, &len);
      if (strlen(value) != len) {
        cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s must not contain NUL characters", name);
        return false;
      }
    } else if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
      snprintf(num, sizeof num, "%" PRId64, bson_iter_as_int64(&it));
      value = num;
    } else {
      cqrs_error_set(err, CQRS_ERR_INVALID, name, "%s must be a string or an integer", name);
      return false;
    }
    if (!cqrs_params_add(p, name, value, err)) return false;
  }
  return true;
}
