/* JSON Schema text -> the compiled tree of node.h, refusing what the subset
 * does not implement (cqrs/jsonschema.h). */
#include "node.h"

#include "cqrs/alloc.h"
#include "cqrs/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64 /* nesting of schemas inside schemas; deeper is refused, not recursed */

static const struct {
  const char *name;
  unsigned bit;
} type_names[] = {
    {"null", JS_NULL},       {"boolean", JS_BOOLEAN}, {"object", JS_OBJECT}, {"array", JS_ARRAY},
    {"number", JS_NUMBER},   {"integer", JS_INTEGER}, {"string", JS_STRING},
};

/* Keywords that constrain what validates but are not implemented: a schema
 * using one is refused, so nothing validates more than its schema allows. */
static const char *const unsupported[] = {
    "$ref",          "$defs",          "definitions",     "allOf",         "anyOf",         "oneOf",
    "not",           "if",             "then",            "else",          "patternProperties",
    "propertyNames", "dependencies",   "dependentRequired", "dependentSchemas", "prefixItems",
    "contains",      "minItems",       "maxItems",        "uniqueItems",   "minProperties", "maxProperties",
    "const",         "pattern",        "minimum",         "maximum",       "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "unevaluatedProperties", "unevaluatedItems", "additionalItems",
    NULL};

static const struct {
  const char *name;
  js_format_t format;
} formats[] = {{"date-time", JS_FORMAT_DATE_TIME}, {"email", JS_FORMAT_EMAIL}};

const js_prop_t *js_prop_find(const js_node_t *node, const char *name) {
  for (size_t i = 0; i < node->n_props; i++)
    if (strcmp(node->props[i].name, name) == 0) return &node->props[i];
  return NULL;
}

void js_types_describe(unsigned types, char *out, size_t size) {
  size_t used = 0;
  out[0] = '\0';
  if (types == JS_ANY) {
    snprintf(out, size, "any type");
    return;
  }
  for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
    if (!(types & type_names[i].bit)) continue;
    int n = snprintf(out + used, size - used, "%s%s", used ? " or " : "", type_names[i].name);
    if (n < 0 || (size_t)n >= size - used) return;
    used += (size_t)n;
  }
}

static double number_of(const bson_value_t *v) {
  switch (v->value_type) {
  case BSON_TYPE_INT32: return v->value.v_int32;
  case BSON_TYPE_INT64: return (double)v->value.v_int64;
  default: return v->value.v_double;
  }
}

static bool is_number(bson_type_t t) { return t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64 || t == BSON_TYPE_DOUBLE; }

bool js_value_equal(const bson_value_t *a, const bson_value_t *b) {
  if (is_number(a->value_type) && is_number(b->value_type)) return number_of(a) == number_of(b);
  if (a->value_type != b->value_type) return false;
  switch (a->value_type) {
  case BSON_TYPE_UTF8:
    return a->value.v_utf8.len == b->value.v_utf8.len &&
           memcmp(a->value.v_utf8.str, b->value.v_utf8.str, a->value.v_utf8.len) == 0;
  case BSON_TYPE_BOOL: return a->value.v_bool == b->value.v_bool;
  case BSON_TYPE_NULL: return true;
  case BSON_TYPE_DOCUMENT:
  case BSON_TYPE_ARRAY:
    return a->value.v_doc.data_len == b->value.v_doc.data_len &&
           memcmp(a->value.v_doc.data, b->value.v_doc.data, a->value.v_doc.data_len) == 0;
  default: return false;
  }
}

static void node_free(js_node_t *n) {
  if (!n) return;
  for (size_t i = 0; i < n->n_props; i++) {
    free(n->props[i].name);
    node_free(n->props[i].schema);
  }
  free(n->props);
  node_free(n->additional);
  node_free(n->items);
  if (n->enum_values) bson_destroy(n->enum_values);
  free(n->format_name);
  free(n);
}

void cqrs_jsonschema_destroy(cqrs_jsonschema_t *s) {
  if (!s) return;
  node_free(s->root);
  free(s);
}

static js_node_t *node_new(void) {
  js_node_t *n = cqrs_xcalloc(1, sizeof *n);
  n->types = JS_ANY;
  n->max_length = -1;
  return n;
}

/* The property named name of n, added (undeclared, optional) when absent. */
static js_prop_t *prop_get(js_node_t *n, const char *name) {
  for (size_t i = 0; i < n->n_props; i++)
    if (strcmp(n->props[i].name, name) == 0) return &n->props[i];
  n->props = cqrs_xrealloc(n->props, (n->n_props + 1) * sizeof *n->props);
  js_prop_t *p = &n->props[n->n_props];
  memset(p, 0, sizeof *p);
  p->name = cqrs_xstrdup(name);
  n->n_props++;
  return p;
}

/* A compile error at path (a keyword's JSON path). Returns false. */
static bool fail(cqrs_error_t *err, const char *path, const char *fmt, const char *arg) {
  char what[200];
  snprintf(what, sizeof what, fmt, arg ? arg : "");
  /* A long path is cut to its start, so the reason still fits in the message. */
  cqrs_error_set(err, CQRS_ERR_INVALID, path, "%.120s%s%s", path, path[0] ? ": " : "", what);
  return false;
}

static void path_join(char *out, size_t size, const char *path, const char *key) {
  /* A path longer than out is cut: it only names the place in a message. */
  if (snprintf(out, size, "%s%s%s", path, path[0] ? "." : "", key) >= (int)size) out[size - 1] = '\0';
}

static bool compile_node(bson_iter_t *it, const char *path, int depth, js_node_t **out, cqrs_error_t *err);

static bool compile_type(bson_iter_t *it, const char *path, js_node_t *n, cqrs_error_t *err) {
  bson_iter_t arr;
  bool one = BSON_ITER_HOLDS_UTF8(it);
  if (!one && !(BSON_ITER_HOLDS_ARRAY(it) && bson_iter_recurse(it, &arr)))
    return fail(err, path, "type must be a string or an array of strings", NULL);
  n->types = 0;
  bool more = one ? true : bson_iter_next(&arr);
  if (!more) return fail(err, path, "type must name at least one type", NULL);
  for (; more; more = one ? false : bson_iter_next(&arr)) {
    bson_iter_t *cur = one ? it : &arr;
    if (!BSON_ITER_HOLDS_UTF8(cur)) return fail(err, path, "type must be a string or an array of strings", NULL);
    const char *name = bson_iter_utf8(cur, NULL);
    unsigned bit = 0;
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
      if (strcmp(type_names[i].name, name) == 0) bit = type_names[i].bit;
    if (!bit) return fail(err, path, "unknown type '%s'", name);
    n->types |= bit;
  }
  return true;
}

static bool compile_properties(bson_iter_t *it, const char *path, int depth, js_node_t *n, cqrs_error_t *err) {
  bson_iter_t props;
  if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &props))
    return fail(err, path, "properties must be an object", NULL);
  while (bson_iter_next(&props)) {
    char sub[512];
    path_join(sub, sizeof sub, path, bson_iter_key(&props));
    js_prop_t *p = prop_get(n, bson_iter_key(&props));
    if (p->schema) return fail(err, sub, "property declared twice", NULL);
    if (!compile_node(&props, sub, depth + 1, &p->schema, err)) return false;
  }
  return true;
}

static bool compile_required(bson_iter_t *it, const char *path, js_node_t *n, cqrs_error_t *err) {
  bson_iter_t names;
  if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &names))
    return fail(err, path, "required must be an array of strings", NULL);
  while (bson_iter_next(&names)) {
    if (!BSON_ITER_HOLDS_UTF8(&names)) return fail(err, path, "required must be an array of strings", NULL);
    prop_get(n, bson_iter_utf8(&names, NULL))->required = true;
  }
  return true;
}

static bool compile_length(bson_iter_t *it, const char *path, int64_t *out, cqrs_error_t *err) {
  if (!BSON_ITER_HOLDS_NUMBER(it)) return fail(err, path, "must be a non-negative integer", NULL);
  double d = bson_iter_as_double(it);
  if (d < 0 || d > 1e15 || d != (double)(int64_t)d) return fail(err, path, "must be a non-negative integer", NULL);
  *out = (int64_t)d;
  return true;
}

/* One keyword of a schema object into n. */
static bool compile_keyword(bson_iter_t *it, const char *path, int depth, js_node_t *n, cqrs_error_t *err) {
  const char *key = bson_iter_key(it);
  char sub[512];
  path_join(sub, sizeof sub, path, key);
  for (size_t i = 0; unsupported[i]; i++)
    if (strcmp(unsupported[i], key) == 0) return fail(err, sub, "keyword '%s' is not supported", key);
  if (strcmp(key, "type") == 0) return compile_type(it, sub, n, err);
  if (strcmp(key, "properties") == 0) return compile_properties(it, sub, depth, n, err);
  if (strcmp(key, "required") == 0) return compile_required(it, sub, n, err);
  if (strcmp(key, "additionalProperties") == 0) {
    if (BSON_ITER_HOLDS_BOOL(it)) {
      n->closed = !bson_iter_bool(it);
      return true;
    }
    return compile_node(it, sub, depth + 1, &n->additional, err);
  }
  if (strcmp(key, "items") == 0) {
    if (BSON_ITER_HOLDS_ARRAY(it)) return fail(err, sub, "items must be one schema (tuples are not supported)", NULL);
    return compile_node(it, sub, depth + 1, &n->items, err);
  }
  if (strcmp(key, "enum") == 0) {
    const uint8_t *data;
    uint32_t len;
    if (!BSON_ITER_HOLDS_ARRAY(it)) return fail(err, sub, "enum must be an array", NULL);
    bson_iter_array(it, &len, &data);
    if (!(n->enum_values = bson_new_from_data(data, len))) return fail(err, sub, "enum must be an array", NULL);
    return true;
  }
  if (strcmp(key, "minLength") == 0) return compile_length(it, sub, &n->min_length, err);
  if (strcmp(key, "maxLength") == 0) return compile_length(it, sub, &n->max_length, err);
  if (strcmp(key, "format") == 0) {
    if (!BSON_ITER_HOLDS_UTF8(it)) return fail(err, sub, "format must be a string", NULL);
    const char *f = bson_iter_utf8(it, NULL);
    n->format = JS_FORMAT_OTHER;
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
      if (strcmp(formats[i].name, f) == 0) n->format = formats[i].format;
    n->format_name = cqrs_xstrdup(f);
    return true;
  }
  return true; /* an annotation, or a keyword JSON Schema lets us ignore */
}

static bool compile_node(bson_iter_t *it, const char *path, int depth, js_node_t **out, cqrs_error_t *err) {
  bson_iter_t kw;
  if (depth > MAX_DEPTH) return fail(err, path, "schemas nest deeper than %s levels", "64");
  *out = node_new();
  if (BSON_ITER_HOLDS_BOOL(it)) {
    (*out)->never = !bson_iter_bool(it);
    return true;
  }
  if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &kw))
    return fail(err, path, "a schema must be an object or a boolean", NULL);
  while (bson_iter_next(&kw))
    if (!compile_keyword(&kw, path, depth, *out, err)) return false;
  return true;
}

cqrs_jsonschema_t *cqrs_jsonschema_compile_bson(const bson_t *schema, cqrs_error_t *err) {
  cqrs_jsonschema_t *s = cqrs_xcalloc(1, sizeof *s);
  bson_t wrapper = BSON_INITIALIZER;
  bson_iter_t it;
  /* Through a wrapper so the root is compiled like any nested schema. */
  BSON_APPEND_DOCUMENT(&wrapper, "s", schema);
  if (!bson_iter_init_find(&it, &wrapper, "s") || !compile_node(&it, "", 0, &s->root, err)) goto fail;
  bson_destroy(&wrapper);
  return s;
fail:
  bson_destroy(&wrapper);
  cqrs_jsonschema_destroy(s);
  return NULL;
}

cqrs_jsonschema_t *cqrs_jsonschema_compile(const char *json, size_t len, cqrs_error_t *err) {
  /* The boolean schemas are not objects, which is all cqrs_json_parse takes. */
  while (len && (json[0] == ' ' || json[0] == '\n' || json[0] == '\t' || json[0] == '\r')) json++, len--;
  while (len && (json[len - 1] == ' ' || json[len - 1] == '\n' || json[len - 1] == '\t' || json[len - 1] == '\r'))
    len--;
  if ((len == 4 && memcmp(json, "true", 4) == 0) || (len == 5 && memcmp(json, "false", 5) == 0)) {
    cqrs_jsonschema_t *s = cqrs_xcalloc(1, sizeof *s);
    s->root = node_new();
    s->root->never = len == 5;
    return s;
  }
  bson_t *doc = cqrs_json_parse(json, len, err);
  if (!doc) return NULL;
  cqrs_jsonschema_t *s = cqrs_jsonschema_compile_bson(doc, err);
  bson_destroy(doc);
  return s;
}
