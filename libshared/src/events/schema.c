/* JSON Schemas generated from the event contract (cqrs/event_schema.h). */
#include "cqrs/alloc.h"
#include "cqrs/event_schema.h"

#include "cqrs/json.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void append_record(bson_t *schema, const cqrs_event_record_t *rec);

static void append_field(bson_t *props, const cqrs_event_field_t *f) {
  bson_t prop, types;
  BSON_APPEND_DOCUMENT_BEGIN(props, f->name, &prop);
  switch (f->type) {
  case CQRS_FIELD_OBJECT: append_record(&prop, f->record); break;
  case CQRS_FIELD_ARRAY: {
    bson_t items;
    BSON_APPEND_UTF8(&prop, "type", "array");
    BSON_APPEND_DOCUMENT_BEGIN(&prop, "items", &items);
    append_record(&items, f->record);
    bson_append_document_end(&prop, &items);
    break;
  }
  case CQRS_FIELD_STRING:
    if (f->required) {
      BSON_APPEND_UTF8(&prop, "type", "string");
      BSON_APPEND_INT32(&prop, "minLength", 1);
    } else {
      /* decode takes null for an absent optional string */
      BSON_APPEND_ARRAY_BEGIN(&prop, "type", &types);
      BSON_APPEND_UTF8(&types, "0", "string");
      BSON_APPEND_UTF8(&types, "1", "null");
      bson_append_array_end(&prop, &types);
    }
    break;
  case CQRS_FIELD_NUMBER:
  case CQRS_FIELD_INTEGER: BSON_APPEND_UTF8(&prop, "type", cqrs_field_type_json(f->type)); break;
  }
  bson_append_document_end(props, &prop);
}

/* An object schema of rec's fields into schema (being built). */
static void append_record(bson_t *schema, const cqrs_event_record_t *rec) {
  bson_t props, required;
  BSON_APPEND_UTF8(schema, "type", "object");
  BSON_APPEND_DOCUMENT_BEGIN(schema, "properties", &props);
  for (size_t i = 0; i < rec->n_fields; i++) append_field(&props, &rec->fields[i]);
  bson_append_document_end(schema, &props);
  BSON_APPEND_ARRAY_BEGIN(schema, "required", &required);
  uint32_t n = 0;
  for (size_t i = 0; i < rec->n_fields; i++) {
    if (!rec->fields[i].required) continue;
    const char *key;
    char buf[16];
    bson_uint32_to_string(n++, &key, buf, sizeof buf);
    BSON_APPEND_UTF8(&required, key, rec->fields[i].name);
  }
  bson_append_array_end(schema, &required);
  BSON_APPEND_BOOL(schema, "additionalProperties", false);
}

char *cqrs_event_json_schema(const cqrs_event_type_t *type, size_t *len) {
  bson_t schema = BSON_INITIALIZER;
  char description[160];
  snprintf(description, sizeof description, "%s version %d (aggregate %s)", type->name, type->version,
           type->aggregate_type);
  BSON_APPEND_UTF8(&schema, "$schema", "http://json-schema.org/draft-07/schema#");
  BSON_APPEND_UTF8(&schema, "title", type->name);
  BSON_APPEND_UTF8(&schema, "description", description);
  append_record(&schema, type->data);
  char *json = cqrs_json_write(&schema, len);
  bson_destroy(&schema);
  return json;
}

size_t cqrs_event_types_by_version(const cqrs_event_type_t **out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; cqrs_event_versions[i]; i++) {
    const cqrs_event_type_t *t = cqrs_event_versions[i];
    bool seen = false;
    for (size_t j = 0; j < i && !seen; j++) seen = strcmp(cqrs_event_versions[j]->name, t->name) == 0;
    if (seen) continue;
    /* t's type for the first time: each of its versions, ascending */
    for (int v = 0, last = 0;; last = v) {
      const cqrs_event_type_t *next = NULL;
      for (size_t j = i; cqrs_event_versions[j]; j++) {
        const cqrs_event_type_t *c = cqrs_event_versions[j];
        if (strcmp(c->name, t->name) == 0 && c->version > last && (!next || c->version < next->version)) next = c;
      }
      if (!next) break;
      v = next->version;
      if (n < max) out[n] = next;
      n++;
    }
  }
  return n;
}

struct cqrs_event_schemas {
  size_t n;
  const cqrs_event_type_t **types; /* rows, in cqrs_event_versions order */
  cqrs_jsonschema_t **compiled;
};

void cqrs_event_schemas_destroy(cqrs_event_schemas_t *v) {
  if (!v) return;
  for (size_t i = 0; v->compiled && i < v->n; i++) cqrs_jsonschema_destroy(v->compiled[i]);
  free(v->compiled);
  free(v->types);
  free(v);
}

cqrs_event_schemas_t *cqrs_event_schemas_new(cqrs_error_t *err) {
  cqrs_event_schemas_t *v = cqrs_xcalloc(1, sizeof *v);
  size_t n = 0;
  while (cqrs_event_versions[n]) n++;
  v->types = cqrs_xcalloc(n ? n : 1, sizeof *v->types);
  v->compiled = cqrs_xcalloc(n ? n : 1, sizeof *v->compiled);
  for (; v->n < n; v->n++) {
    const cqrs_event_type_t *t = cqrs_event_versions[v->n];
    size_t len;
    char *json = cqrs_event_json_schema(t, &len);
    v->types[v->n] = t;
    v->compiled[v->n] = cqrs_jsonschema_compile(json, len, err);
    bson_free(json);
    if (!v->compiled[v->n]) {
      v->n++;
      cqrs_event_schemas_destroy(v);
      return NULL;
    }
  }
  return v;
}

const cqrs_jsonschema_t *cqrs_event_schemas_get(const cqrs_event_schemas_t *v, const cqrs_event_type_t *type) {
  for (size_t i = 0; i < v->n; i++)
    if (v->types[i] == type) return v->compiled[i];
  return NULL;
}

bool cqrs_event_schemas_validate(const cqrs_event_schemas_t *v, const cqrs_event_type_t *type, const bson_t *data,
                                 cqrs_error_t *err) {
  const cqrs_jsonschema_t *s = cqrs_event_schemas_get(v, type);
  if (!s) {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "event type %s version %d has no schema in the contract",
                   type ? type->name : "(none)", type ? type->version : 0);
    return false;
  }
  return cqrs_jsonschema_validate(s, data, err);
}

/* The process's one compiled table: the contract is constant, so it is made
 * once, on first use, and never freed (like the contract it mirrors). */
static cqrs_event_schemas_t *shared_table;
static cqrs_error_t shared_err;
static pthread_once_t shared_once = PTHREAD_ONCE_INIT;

static void shared_make(void) { shared_table = cqrs_event_schemas_new(&shared_err); }

const cqrs_event_schemas_t *cqrs_event_schemas_shared(cqrs_error_t *err) {
  pthread_once(&shared_once, shared_make);
  if (!shared_table) *err = shared_err;
  return shared_table;
}
