/* A document against a compiled JSON Schema: the first failing value's path
 * and why (cqrs/jsonschema.h). Allocates nothing. */
#include "node.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define PATH_MAX_LEN 256
#define MAX_FRAMES 80 /* compile bounds schema nesting at 64; deeper values are not walked */

/* The path as a stack of borrowed names (member names and array keys, which
 * libbson hands out as "0", "1", ...), written out only when a check fails:
 * the walk of a valid document formats nothing. */
typedef struct {
  const char *name[MAX_FRAMES];
  bool index[MAX_FRAMES];
  size_t depth;
  cqrs_error_t *err;
} walk_t;

static void path_write(const walk_t *w, char *out, size_t size) {
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < w->depth && len < size - 1; i++) {
    int n = w->index[i] ? snprintf(out + len, size - len, "[%s]", w->name[i])
                        : snprintf(out + len, size - len, "%s%s", i ? "." : "", w->name[i]);
    if (n < 0) break;
    len = len + (size_t)n >= size ? size - 1 : len + (size_t)n; /* a path too long is cut */
  }
}

static bool fail(walk_t *w, const char *fmt, const char *a, const char *b) {
  char what[200], path[PATH_MAX_LEN];
  snprintf(what, sizeof what, fmt, a ? a : "", b ? b : "");
  path_write(w, path, sizeof path);
  cqrs_error_set(w->err, CQRS_ERR_INVALID, path, "%s%s%s", path[0] ? path : "the document", path[0] ? ": " : " ",
                 what);
  return false;
}

/* Descends into a member (index false) or an item; false when the path is
 * deeper than any compiled schema reaches (nothing to check there). */
static bool push(walk_t *w, const char *name, bool index) {
  if (w->depth == MAX_FRAMES) return false;
  w->name[w->depth] = name;
  w->index[w->depth++] = index;
  return true;
}

static void pop(walk_t *w) { w->depth--; }

/* The JS_* bits a value satisfies (0 for BSON types JSON has not). */
static unsigned kind_of(const bson_iter_t *it) {
  switch (bson_iter_type(it)) {
  case BSON_TYPE_NULL: return JS_NULL;
  case BSON_TYPE_BOOL: return JS_BOOLEAN;
  case BSON_TYPE_DOCUMENT: return JS_OBJECT;
  case BSON_TYPE_ARRAY: return JS_ARRAY;
  case BSON_TYPE_UTF8: return JS_STRING;
  case BSON_TYPE_INT32:
  case BSON_TYPE_INT64: return JS_NUMBER | JS_INTEGER;
  case BSON_TYPE_DOUBLE: {
    double d = bson_iter_double(it);
    return d == (double)(int64_t)d && d > -9.2e18 && d < 9.2e18 ? JS_NUMBER | JS_INTEGER : JS_NUMBER;
  }
  default: return 0;
  }
}

static const char *kind_name(const bson_iter_t *it) {
  switch (bson_iter_type(it)) {
  case BSON_TYPE_NULL: return "null";
  case BSON_TYPE_BOOL: return "boolean";
  case BSON_TYPE_DOCUMENT: return "object";
  case BSON_TYPE_ARRAY: return "array";
  case BSON_TYPE_UTF8: return "string";
  case BSON_TYPE_INT32:
  case BSON_TYPE_INT64: return "integer";
  case BSON_TYPE_DOUBLE: return "number";
  default: return "a value JSON has not";
  }
}

/* Code points of UTF-8 text (libbson has checked it is UTF-8). */
static int64_t utf8_length(const char *s, uint32_t len) {
  int64_t n = 0;
  for (uint32_t i = 0; i < len; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
  return n;
}

static bool digits(const char *s, int n) {
  for (int i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i])) return false;
  return true;
}

/* RFC 3339 date-time: 2026-12-02T03:00:00(.fff)?(Z|+hh:mm). */
static bool is_date_time(const char *s, uint32_t len) {
  if (len < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
      (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' ||
      !digits(s + 17, 2))
    return false;
  uint32_t i = 19;
  if (s[i] == '.') {
    uint32_t start = ++i;
    while (i < len && isdigit((unsigned char)s[i])) i++;
    if (i == start) return false;
  }
  if (i < len && (s[i] == 'Z' || s[i] == 'z')) return i + 1 == len;
  return i + 6 == len && (s[i] == '+' || s[i] == '-') && digits(s + i + 1, 2) && s[i + 3] == ':' &&
         digits(s + i + 4, 2);
}

/* An address with one '@' between non-empty parts and no spaces. */
static bool is_email(const char *s, uint32_t len) {
  const char *at = memchr(s, '@', len);
  if (!at || at == s || at == s + len - 1 || memchr(at + 1, '@', len - (uint32_t)(at - s) - 1)) return false;
  for (uint32_t i = 0; i < len; i++)
    if (isspace((unsigned char)s[i])) return false;
  return true;
}

static bool check(const js_node_t *n, const bson_iter_t *it, walk_t *w);

static bool check_string(const js_node_t *n, const bson_iter_t *it, walk_t *w) {
  uint32_t len;
  const char *s = bson_iter_utf8(it, &len);
  /* A string of len bytes has between len / 4 and len characters: most
   * bounds are decided without counting. */
  bool sure = (int64_t)len / 4 >= n->min_length && (n->max_length < 0 || (int64_t)len <= n->max_length);
  if (!sure && (n->min_length || n->max_length >= 0)) {
    int64_t chars = utf8_length(s, len);
    char bound[24];
    if (chars < n->min_length) {
      snprintf(bound, sizeof bound, "%lld", (long long)n->min_length);
      return fail(w, "must be at least %s characters long", bound, NULL);
    }
    if (n->max_length >= 0 && chars > n->max_length) {
      snprintf(bound, sizeof bound, "%lld", (long long)n->max_length);
      return fail(w, "must be at most %s characters long", bound, NULL);
    }
  }
  if (n->format == JS_FORMAT_DATE_TIME && !is_date_time(s, len))
    return fail(w, "must be a date-time (RFC 3339)", NULL, NULL);
  if (n->format == JS_FORMAT_EMAIL && !is_email(s, len)) return fail(w, "must be an email address", NULL, NULL);
  return true;
}

/* start: an iterator before the object's first member. One pass over the
 * members checks each against its schema and marks the required ones seen;
 * a missing required member is reported after the members' own failures. */
static bool check_object(const js_node_t *n, const bson_iter_t *start, walk_t *w) {
  bson_iter_t members = *start;
  uint64_t seen = 0; /* bit i: props[i] is present (the first 64 props; find() for the rest) */
  while (bson_iter_next(&members)) {
    const char *key = bson_iter_key(&members);
    const js_prop_t *p = js_prop_find(n, key);
    if (p && p - n->props < 64) seen |= 1ull << (p - n->props);
    const js_node_t *sub = p && p->schema ? p->schema : n->additional;
    bool closed = !(p && p->schema) && n->closed;
    if (!closed && !sub) continue;
    if (!push(w, key, false)) continue;
    bool ok = closed ? fail(w, "is not allowed (additionalProperties is false)", NULL, NULL) : check(sub, &members, w);
    pop(w);
    if (!ok) return false;
  }
  for (size_t i = 0; i < n->n_props; i++) {
    if (!n->props[i].required) continue;
    bool present = i < 64 ? (seen >> i) & 1 : (members = *start, bson_iter_find(&members, n->props[i].name));
    if (present) continue;
    push(w, n->props[i].name, false);
    fail(w, "is required", NULL, NULL);
    pop(w);
    return false;
  }
  return true;
}

static bool check_array(const js_node_t *n, const bson_iter_t *it, walk_t *w) {
  bson_iter_t items;
  if (!n->items) return true;
  if (!bson_iter_recurse(it, &items)) return fail(w, "is not a readable array", NULL, NULL);
  while (bson_iter_next(&items)) {
    if (!push(w, bson_iter_key(&items), true)) continue; /* array keys are "0", "1", ... */
    bool ok = check(n->items, &items, w);
    pop(w);
    if (!ok) return false;
  }
  return true;
}

static bool in_enum(const js_node_t *n, const bson_iter_t *it) {
  bson_iter_t e;
  const bson_value_t *v = bson_iter_value((bson_iter_t *)it);
  if (!bson_iter_init(&e, n->enum_values)) return false;
  while (bson_iter_next(&e))
    if (js_value_equal(bson_iter_value(&e), v)) return true;
  return false;
}

static bool check(const js_node_t *n, const bson_iter_t *it, walk_t *w) {
  if (n->never) return fail(w, "is not allowed (its schema is false)", NULL, NULL);
  unsigned kind = kind_of(it);
  if (n->types != JS_ANY && !(kind & n->types)) {
    char want[96];
    js_types_describe(n->types, want, sizeof want);
    return fail(w, "must be %s, not %s", want, kind_name(it));
  }
  if (n->enum_values && !in_enum(n, it)) return fail(w, "must be one of the values of its enum", NULL, NULL);
  if (kind & JS_STRING) return check_string(n, it, w);
  if (kind & JS_OBJECT) {
    bson_iter_t start;
    if (!bson_iter_recurse(it, &start)) return fail(w, "is not a readable object", NULL, NULL);
    return check_object(n, &start, w);
  }
  if (kind & JS_ARRAY) return check_array(n, it, w);
  return true;
}

bool cqrs_jsonschema_validate(const cqrs_jsonschema_t *s, const bson_t *doc, cqrs_error_t *err) {
  walk_t w = {.depth = 0, .err = err};
  if (s->root->never) return fail(&w, "is not allowed (its schema is false)", NULL, NULL);
  if (s->root->types != JS_ANY && !(s->root->types & JS_OBJECT)) {
    char want[96];
    js_types_describe(s->root->types, want, sizeof want);
    return fail(&w, "must be %s, not object", want, NULL);
  }
  bson_iter_t start;
  if (!bson_iter_init(&start, doc)) return fail(&w, "is not a readable object", NULL, NULL);
  return check_object(s->root, &start, &w);
}
