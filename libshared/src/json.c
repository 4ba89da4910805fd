/* JSON parsing and writing through libbson, and typed field readers. */
#include "cqrs/json.h"
#include "json_fast.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int key_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Why: libbson keeps every member of {"a":1,"a":2} and our readers take the
 * first, while another parser (a gateway's) may take the last; such a body is
 * refused rather than read one way here and another way there. Checks every
 * object in doc (path: where doc sits, dotted, for the error); sorting the
 * keys keeps a body of many members O(n log n). */
static bool unique_keys(const bson_t *doc, char *path, size_t size, cqrs_error_t *err) {
  bson_iter_t it;
  size_t n = 0, cap = 0;
  const char **keys = NULL;
  bool ok = true;
  size_t plen = strlen(path);
  if (!bson_iter_init(&it, doc)) return true;
  while (ok && bson_iter_next(&it)) {
    if (n == cap) keys = bson_realloc(keys, (cap = cap ? cap * 2 : 16) * sizeof *keys);
    keys[n++] = bson_iter_key(&it);
    if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
      bson_t child;
      const uint8_t *data;
      uint32_t len;
      if (BSON_ITER_HOLDS_ARRAY(&it))
        bson_iter_array(&it, &len, &data);
      else
        bson_iter_document(&it, &len, &data);
      snprintf(path + plen, size - plen, "%s%s", plen ? "." : "", bson_iter_key(&it));
      ok = !bson_init_static(&child, data, len) || unique_keys(&child, path, size, err);
      if (ok) path[plen] = '\0';
    }
  }
  if (ok && n > 1) {
    qsort(keys, n, sizeof *keys, key_cmp);
    for (size_t i = 1; i < n && ok; i++) {
      if (strcmp(keys[i - 1], keys[i]) != 0) continue;
      snprintf(path + plen, size - plen, "%s%s", plen ? "." : "", keys[i]);
      cqrs_error_set(err, CQRS_ERR_INVALID, path, "duplicate key \"%.64s\" in the JSON body", path);
      ok = false;
    }
  }
  bson_free(keys);
  return ok;
}

/* Why: libbson refuses an integer literal outside int64 ("Number ... is out
 * of range") where JSON has no such limit, so a body with one in a member no
 * reader looks at would be refused as "not valid JSON". A copy of buf (n in
 * *out_len; bson_free) with ".0" after each such literal, which libbson then
 * reads as a double, like any other parser without 64-bit integers. Digits
 * outside strings occur in numbers only. */
static char *widen_big_integers(const char *buf, size_t len, size_t *out_len) {
  /* each literal grows by 2 and takes at least 1 character: 3 * len bounds it */
  char *out = bson_malloc(3 * len + 1);
  size_t o = 0;
  bool in_string = false;
  for (size_t i = 0; i < len;) {
    char c = buf[i];
    if (in_string || c == '"' || (c != '-' && (c < '0' || c > '9'))) {
      size_t n = in_string && c == '\\' && i + 1 < len ? 2 : 1;
      if (c == '"') in_string = !in_string;
      memcpy(out + o, buf + i, n);
      o += n;
      i += n;
      continue;
    }
    size_t j = i + 1;
    bool integer = true;
    while (j < len && buf[j] && strchr("0123456789.eE+-", buf[j])) {
      if (buf[j] == '.' || buf[j] == 'e' || buf[j] == 'E') integer = false;
      j++;
    }
    bool big = integer;
    char lit[32];
    if (integer && j - i < sizeof lit) {
      memcpy(lit, buf + i, j - i);
      lit[j - i] = '\0';
      errno = 0;
      (void)strtoll(lit, NULL, 10);
      big = errno == ERANGE;
    }
    memcpy(out + o, buf + i, j - i);
    o += j - i;
    if (big) {
      memcpy(out + o, ".0", 2);
      o += 2;
    }
    i = j;
  }
  out[o] = '\0';
  *out_len = o;
  return out;
}

bson_t *cqrs_json_parse(const char *buf, size_t len, cqrs_error_t *err) {
  size_t i = 0;
  while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n')) i++;
  /* libbson also accepts a top-level array; the contract wants an object. */
  if (i == len || buf[i] != '{') {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "body is not a JSON object");
    return NULL;
  }
  /* Plain JSON without a duplicate key, the usual case, in one pass;
   * anything else through libbson and the checks below. */
  bson_t *doc = cqrs_json_fast_parse(buf, len);
  if (doc) return doc;
  bson_error_t berr;
  doc = bson_new_from_json((const uint8_t *)buf, (ssize_t)len, &berr);
  if (!doc && strstr(berr.message, "out of range")) {
    size_t wlen;
    char *wide = widen_big_integers(buf, len, &wlen);
    doc = bson_new_from_json((const uint8_t *)wide, (ssize_t)wlen, &berr);
    bson_free(wide);
  }
  if (!doc) {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "body is not valid JSON: %s", berr.message);
    return NULL;
  }
  char path[256] = "";
  if (!unique_keys(doc, path, sizeof path, err)) {
    bson_destroy(doc);
    return NULL;
  }
  return doc;
}

/* Why our own writer: libbson 1.23's JSON output spends most of its time in
 * bson_utf8_escape_for_json (46% of all instructions of the command pipeline
 * under callgrind, 65% with the rest of bson_as_relaxed_extended_json). This
 * one writes compact JSON for the types our documents hold and hands any
 * other (dates, ids, binary, non-finite numbers) back to libbson. */

/* A growable buffer from bson_malloc, so callers free the result with bson_free. */
typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void put(buf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    while (b->len + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 256;
    b->p = bson_realloc(b->p, b->cap);
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void put_c(buf_t *b, char c) { put(b, &c, 1); }
static void put_s(buf_t *b, const char *s) { put(b, s, strlen(s)); }

/* The length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no
 * overlong forms, no surrogates, at most U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n, size_t i) {
  unsigned char c = s[i];
  size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (len == 0 || c > 0xf4 || i + len > n) return 0;
  for (size_t k = 1; k < len; k++)
    if ((s[i + k] & 0xc0) != 0x80) return 0;
  unsigned char d = s[i + 1];
  if ((c == 0xe0 && d < 0xa0) || (c == 0xed && d > 0x9f) || (c == 0xf0 && d < 0x90) || (c == 0xf4 && d > 0x8f))
    return 0;
  return len;
}

/* s[0..n) as the inside of a JSON string. Bytes that are not well-formed
 * UTF-8 (say, a Kafka key logged as it came) become U+FFFD, so the output is
 * always valid JSON. */
static void put_escaped(buf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t run = 0; /* bytes copied as they are, in one go */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x80) {
      size_t len = utf8_len((const unsigned char *)s, n, i);
      if (len) {
        i += len - 1;
        continue;
      }
      put(b, s + run, i - run);
      run = i + 1;
      put_s(b, "\\ufffd");
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    put(b, s + run, i - run);
    run = i + 1;
    switch (c) {
    case '"': put_s(b, "\\\""); break;
    case '\\': put_s(b, "\\\\"); break;
    case '\n': put_s(b, "\\n"); break;
    case '\r': put_s(b, "\\r"); break;
    case '\t': put_s(b, "\\t"); break;
    default: {
      char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      put(b, u, 6);
    }
    }
  }
  put(b, s + run, n - run);
}

static void put_key(buf_t *b, const char *k) {
  put_c(b, '"');
  put_escaped(b, k, strlen(k));
  put(b, "\":", 2);
}

static bool put_value(buf_t *b, bson_iter_t *it);

/* The members of the container it points into (or of a top-level document
 * when it is the document's own iterator). */
static bool put_members(buf_t *b, bson_iter_t *members, bool array) {
  put_c(b, array ? '[' : '{');
  bool first = true;
  while (bson_iter_next(members)) {
    if (!first) put_c(b, ',');
    first = false;
    if (!array) put_key(b, bson_iter_key(members));
    if (!put_value(b, members)) return false;
  }
  put_c(b, array ? ']' : '}');
  return true;
}

static bool put_value(buf_t *b, bson_iter_t *it) {
  char num[40];
  bson_iter_t child;
  switch (bson_iter_type(it)) {
  case BSON_TYPE_UTF8: {
    uint32_t n;
    const char *v = bson_iter_utf8(it, &n);
    put_c(b, '"');
    put_escaped(b, v, n);
    put_c(b, '"');
    return true;
  }
  case BSON_TYPE_INT32: snprintf(num, sizeof num, "%d", bson_iter_int32(it)); break;
  case BSON_TYPE_INT64: snprintf(num, sizeof num, "%lld", (long long)bson_iter_int64(it)); break;
  case BSON_TYPE_DOUBLE: {
    double d = bson_iter_double(it);
    if (!isfinite(d)) return false;
    snprintf(num, sizeof num, "%.15g", d);
    if (strtod(num, NULL) != d) snprintf(num, sizeof num, "%.17g", d);
    /* Keep it a double when read back: 21 would come back as an integer. */
    if (!strpbrk(num, ".eEn")) strcat(num, ".0");
    break;
  }
  case BSON_TYPE_BOOL: snprintf(num, sizeof num, "%s", bson_iter_bool(it) ? "true" : "false"); break;
  case BSON_TYPE_NULL: snprintf(num, sizeof num, "null"); break;
  case BSON_TYPE_DOCUMENT:
  case BSON_TYPE_ARRAY:
    return bson_iter_recurse(it, &child) && put_members(b, &child, BSON_ITER_HOLDS_ARRAY(it));
  default: return false; /* dates, ids, binary, ...: libbson writes those */
  }
  put_s(b, num);
  return true;
}

/* Why our own writer: libbson 1.23's JSON output spends most of its time in
 * bson_utf8_escape_for_json (46% of all instructions of the command pipeline
 * under callgrind, 65% with the rest of bson_as_relaxed_extended_json). This
 * one writes compact JSON for the types our documents hold and hands any other
 * (dates, ids, binary, non-finite numbers) back to libbson. */
char *cqrs_json_write(const bson_t *doc, size_t *len) {
  buf_t b = {0};
  bson_iter_t it;
  if (!bson_iter_init(&it, doc) || !put_members(&b, &it, false)) {
    bson_free(b.p);
    return bson_as_relaxed_extended_json(doc, len);
  }
  if (len) *len = b.len;
  return b.p;
}

void cqrs_json_append_string(bson_string_t *out, const char *s) {
  buf_t b = {0};
  put_c(&b, '"');
  put_escaped(&b, s, strlen(s));
  put_c(&b, '"');
  bson_string_append(out, b.p);
  bson_free(b.p);
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
  if (!cqrs_json_check_length(s, max_len, field, err)) return false;
  *out = s;
  return true;
}

bool cqrs_json_check_length(const char *s, size_t max_len, const char *field, cqrs_error_t *err) {
  if (!max_len) return true;
  size_t chars = 0;
  for (const char *c = s; *c && chars <= max_len; c = bson_utf8_next_char(c)) chars++;
  if (chars <= max_len) return true;
  cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s is longer than %zu characters", field, max_len);
  return false;
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

bool cqrs_json_members_known(const bson_t *doc, const char *const *known, cqrs_error_t *err) {
  bson_iter_t it;
  if (!bson_iter_init(&it, doc)) return true;
  while (bson_iter_next(&it)) {
    const char *key = bson_iter_key(&it);
    bool ok = false;
    for (const char *const *k = known; *k && !ok; k++) ok = strcmp(*k, key) == 0;
    if (!ok) {
      cqrs_error_set(err, CQRS_ERR_INVALID, key, "unknown member \"%.64s\"", key);
      return false;
    }
  }
  return true;
}
