/* A small JSON Schema checker over libbson for the e2e tests (schema_check.h). */
#include "schema_check.h"

#include "cqrs/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool check(const bson_t *root, const bson_t *schema, const bson_iter_t *v, const char *where, char *why,
                  size_t n);

static bool fail(char *why, size_t n, const char *where, const char *what, const char *detail) {
  snprintf(why, n, "%s: %s%s%s", where, what, detail ? " " : "", detail ? detail : "");
  return false;
}

static bool sub(const bson_iter_t *it, bson_t *out) {
  const uint8_t *data;
  uint32_t len;
  if (BSON_ITER_HOLDS_DOCUMENT(it))
    bson_iter_document(it, &len, &data);
  else if (BSON_ITER_HOLDS_ARRAY(it))
    bson_iter_array(it, &len, &data);
  else
    return false;
  return bson_init_static(out, data, len);
}

/* The sub-document at a JSON pointer ("#/components/schemas/X"). */
static bool pointer(const bson_t *root, const char *ref, bson_t *out) {
  if (strncmp(ref, "#/", 2) != 0) return false;
  bson_t cur;
  if (!bson_init_static(&cur, bson_get_data(root), root->len)) return false;
  const char *p = ref + 2;
  while (*p) {
    char key[256];
    size_t k = strcspn(p, "/");
    if (k >= sizeof key) return false;
    memcpy(key, p, k);
    key[k] = '\0';
    p += k + (p[k] == '/');
    bson_iter_t it;
    if (!bson_iter_init_find(&it, &cur, key) || !sub(&it, &cur)) return false;
  }
  *out = cur;
  return true;
}

static const char *type_of(const bson_iter_t *v, bool *integral) {
  *integral = false;
  switch (bson_iter_type(v)) {
  case BSON_TYPE_UTF8: return "string";
  case BSON_TYPE_BOOL: return "boolean";
  case BSON_TYPE_NULL: return "null";
  case BSON_TYPE_DOCUMENT: return "object";
  case BSON_TYPE_ARRAY: return "array";
  case BSON_TYPE_INT32:
  case BSON_TYPE_INT64: *integral = true; return "integer";
  case BSON_TYPE_DOUBLE: {
    double d = bson_iter_double(v);
    *integral = isfinite(d) && floor(d) == d;
    return "number";
  }
  default: return "?";
  }
}

static bool type_matches(const char *want, const bson_iter_t *v) {
  bool integral;
  const char *have = type_of(v, &integral);
  if (strcmp(want, have) == 0) return true;
  if (strcmp(want, "number") == 0) return strcmp(have, "integer") == 0;
  return strcmp(want, "integer") == 0 && integral;
}

/* value equality for const/enum: strings, booleans, null and integers. */
static bool same(const bson_iter_t *a, const bson_iter_t *b) {
  if (BSON_ITER_HOLDS_UTF8(a) && BSON_ITER_HOLDS_UTF8(b)) return strcmp(bson_iter_utf8(a, NULL), bson_iter_utf8(b, NULL)) == 0;
  if (BSON_ITER_HOLDS_BOOL(a) && BSON_ITER_HOLDS_BOOL(b)) return bson_iter_bool(a) == bson_iter_bool(b);
  if (BSON_ITER_HOLDS_NULL(a) && BSON_ITER_HOLDS_NULL(b)) return true;
  if (BSON_ITER_HOLDS_NUMBER(a) && BSON_ITER_HOLDS_NUMBER(b)) return bson_iter_as_double(a) == bson_iter_as_double(b);
  return false;
}

static bool check_object(const bson_t *root, const bson_t *schema, const bson_iter_t *v, const char *where, char *why,
                         size_t n) {
  bson_t obj, props = BSON_INITIALIZER;
  bool has_props = false, closed = false, has_extra_schema = false;
  bson_t extra;
  bson_iter_t it;
  sub(v, &obj);
  if (bson_iter_init_find(&it, schema, "properties")) has_props = sub(&it, &props);
  if (bson_iter_init_find(&it, schema, "additionalProperties")) {
    if (BSON_ITER_HOLDS_BOOL(&it))
      closed = !bson_iter_bool(&it);
    else
      has_extra_schema = sub(&it, &extra);
  }
  if (bson_iter_init_find(&it, schema, "patternProperties")) closed = has_extra_schema = false; /* not checked */
  if (bson_iter_init_find(&it, schema, "required") && BSON_ITER_HOLDS_ARRAY(&it)) {
    bson_t req;
    bson_iter_t r;
    sub(&it, &req);
    bson_iter_init(&r, &req);
    while (bson_iter_next(&r))
      if (BSON_ITER_HOLDS_UTF8(&r) && !bson_has_field(&obj, bson_iter_utf8(&r, NULL))) {
        char q[160];
        snprintf(q, sizeof q, "\"%s\"", bson_iter_utf8(&r, NULL));
        return fail(why, n, where, "missing required", q);
      }
  }
  bson_iter_t m;
  bson_iter_init(&m, &obj);
  while (bson_iter_next(&m)) {
    const char *key = bson_iter_key(&m);
    char at[512];
    snprintf(at, sizeof at, "%s.%s", where, key);
    bson_iter_t p;
    bson_t ps;
    if (has_props && bson_iter_init_find(&p, &props, key) && sub(&p, &ps)) {
      if (!check(root, &ps, &m, at, why, n)) return false;
    } else if (closed) {
      return fail(why, n, at, "is not in the schema (additionalProperties: false)", NULL);
    } else if (has_extra_schema && !check(root, &extra, &m, at, why, n)) {
      return false;
    }
  }
  return true;
}

static bool check(const bson_t *root, const bson_t *schema, const bson_iter_t *v, const char *where, char *why,
                  size_t n) {
  bson_iter_t it;
  if (bson_iter_init_find(&it, schema, "$ref")) {
    bson_t target;
    const char *ref = bson_iter_utf8(&it, NULL);
    if (!ref || !pointer(root, ref, &target)) return fail(why, n, where, "dangling $ref", ref);
    if (!check(root, &target, v, where, why, n)) return false;
  }
  if (bson_iter_init_find(&it, schema, "type")) {
    bool ok = false;
    if (BSON_ITER_HOLDS_UTF8(&it)) {
      ok = type_matches(bson_iter_utf8(&it, NULL), v);
    } else if (BSON_ITER_HOLDS_ARRAY(&it)) {
      bson_t types;
      bson_iter_t t;
      sub(&it, &types);
      bson_iter_init(&t, &types);
      while (!ok && bson_iter_next(&t)) ok = BSON_ITER_HOLDS_UTF8(&t) && type_matches(bson_iter_utf8(&t, NULL), v);
    }
    bool integral;
    if (!ok) return fail(why, n, where, "has the wrong type:", type_of(v, &integral));
  }
  if (bson_iter_init_find(&it, schema, "const") && !same(&it, v)) return fail(why, n, where, "differs from const", NULL);
  if (bson_iter_init_find(&it, schema, "enum") && BSON_ITER_HOLDS_ARRAY(&it)) {
    bson_t vals;
    bson_iter_t e;
    bool ok = false;
    sub(&it, &vals);
    bson_iter_init(&e, &vals);
    while (!ok && bson_iter_next(&e)) ok = same(&e, v);
    if (!ok) return fail(why, n, where, "is not one of its enum", BSON_ITER_HOLDS_UTF8(v) ? bson_iter_utf8(v, NULL) : NULL);
  }
  if (BSON_ITER_HOLDS_DOCUMENT(v) && !check_object(root, schema, v, where, why, n)) return false;
  if (BSON_ITER_HOLDS_ARRAY(v) && bson_iter_init_find(&it, schema, "items")) {
    bson_t items, arr;
    bson_iter_t e;
    sub(&it, &items);
    sub(v, &arr);
    bson_iter_init(&e, &arr);
    while (bson_iter_next(&e)) {
      char at[512];
      snprintf(at, sizeof at, "%s[%s]", where, bson_iter_key(&e));
      if (!check(root, &items, &e, at, why, n)) return false;
    }
  }
  static const char *const combos[] = {"allOf", "anyOf", "oneOf", NULL};
  for (const char *const *c = combos; *c; c++) {
    if (!bson_iter_init_find(&it, schema, *c) || !BSON_ITER_HOLDS_ARRAY(&it)) continue;
    bson_t alts;
    bson_iter_t a;
    sub(&it, &alts);
    bson_iter_init(&a, &alts);
    int matched = 0, total = 0;
    char first_why[512] = "";
    while (bson_iter_next(&a)) {
      bson_t alt;
      if (!sub(&a, &alt)) continue;
      total++;
      char w[512];
      if (check(root, &alt, v, where, w, sizeof w))
        matched++;
      else if (!first_why[0])
        snprintf(first_why, sizeof first_why, "%s", w);
    }
    if (strcmp(*c, "allOf") == 0 && matched != total) return fail(why, n, where, "allOf:", first_why);
    if (strcmp(*c, "anyOf") == 0 && matched == 0) return fail(why, n, where, "matches no anyOf alternative; first:", first_why);
    if (strcmp(*c, "oneOf") == 0 && matched != 1)
      return fail(why, n, where, matched ? "matches more than one oneOf alternative" : "matches no oneOf alternative; first:",
                  matched ? NULL : first_why);
  }
  return true;
}

bool tk_schema_check(const bson_t *root, const bson_t *schema, const char *json, char *why, size_t why_size) {
  cqrs_error_t err = {0};
  bson_t *doc = cqrs_json_parse(json, strlen(json), &err);
  if (!doc) return fail(why, why_size, "$", "is not a JSON object:", err.message);
  bson_t wrap = BSON_INITIALIZER;
  BSON_APPEND_DOCUMENT(&wrap, "v", doc);
  bson_iter_t it;
  bson_iter_init_find(&it, &wrap, "v");
  bool ok = check(root, schema, &it, "$", why, why_size);
  bson_destroy(&wrap);
  bson_destroy(doc);
  return ok;
}

bool tk_schema_of_response(const bson_t *root, const char *path, const char *method, int status, bson_t *out) {
  bson_iter_t it;
  bson_t paths, item, op, responses, resp, content, media;
  char code[8];
  snprintf(code, sizeof code, "%d", status);
  return bson_iter_init_find(&it, root, "paths") && sub(&it, &paths) && bson_iter_init_find(&it, &paths, path) &&
         sub(&it, &item) && bson_iter_init_find(&it, &item, method) && sub(&it, &op) &&
         bson_iter_init_find(&it, &op, "responses") && sub(&it, &responses) &&
         bson_iter_init_find(&it, &responses, code) && sub(&it, &resp) &&
         bson_iter_init_find(&it, &resp, "content") && sub(&it, &content) &&
         bson_iter_init_find(&it, &content, "application/json") && sub(&it, &media) &&
         bson_iter_init_find(&it, &media, "schema") && sub(&it, out);
}
