/* The compiled form of a JSON Schema (cqrs/jsonschema.h), shared by the
 * compiler and validator (compile.c) and the compatibility checker
 * (compat.c). Not a public header. */
#ifndef CQRS_JSONSCHEMA_NODE_H
#define CQRS_JSONSCHEMA_NODE_H

#include "cqrs/jsonschema.h"

#include <stdint.h>

/* JSON types as bits. T_NUMBER admits integers too; T_INTEGER admits numbers
 * without a fraction (10.0), as JSON Schema says. */
enum {
  JS_NULL = 1u << 0,
  JS_BOOLEAN = 1u << 1,
  JS_OBJECT = 1u << 2,
  JS_ARRAY = 1u << 3,
  JS_NUMBER = 1u << 4,
  JS_INTEGER = 1u << 5,
  JS_STRING = 1u << 6,
  JS_ANY = (1u << 7) - 1
};

typedef enum { JS_FORMAT_NONE = 0, JS_FORMAT_DATE_TIME, JS_FORMAT_EMAIL, JS_FORMAT_OTHER } js_format_t;

typedef struct js_node js_node_t;

typedef struct {
  char *name;
  js_node_t *schema; /* NULL when the name is only in required, not in properties */
  bool required;
} js_prop_t;

struct js_node {
  bool never;            /* the schema false: nothing validates */
  unsigned types;        /* JS_* bits; JS_ANY without a type keyword */
  js_prop_t *props;      /* properties and required names, in schema order */
  size_t n_props;
  bool closed;           /* additionalProperties: false */
  js_node_t *additional; /* additionalProperties as a schema; NULL: any (unless closed) */
  js_node_t *items;      /* NULL: any */
  bson_t *enum_values;   /* the enum array, or NULL */
  int64_t min_length;    /* 0: none */
  int64_t max_length;    /* -1: none */
  js_format_t format;
  char *format_name;     /* the format keyword's value, or NULL */
};

struct cqrs_jsonschema {
  js_node_t *root;
};

/* The property name of node, or NULL. */
const js_prop_t *js_prop_find(const js_node_t *node, const char *name);

/* "string", "string or null", ... for types, into out. */
void js_types_describe(unsigned types, char *out, size_t size);

/* True when the enum value at it equals v (numbers by value, strings by bytes,
 * objects and arrays by their BSON bytes). */
bool js_value_equal(const bson_value_t *a, const bson_value_t *b);

#endif
