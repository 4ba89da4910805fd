/* The contract's JSON Schemas (cqrs/event_schema.h): one per (type, version)
 * row, each compiling, and each validating a document built from its own
 * descriptor while refusing one without a required field, by name. Walks the
 * descriptor table: a new row or field is covered without an edit here. */
#include "cqrs/event_schema.h"
#include "cqrs/jsonschema.h"
#include "unit.h"

static void fill(bson_t *doc, const cqrs_event_record_t *rec, const char *skip);

/* A value of f's type into doc under f's name. */
static void fill_field(bson_t *doc, const cqrs_event_field_t *f) {
  bson_t sub, item;
  switch (f->type) {
  case CQRS_FIELD_STRING: BSON_APPEND_UTF8(doc, f->name, "x"); break;
  case CQRS_FIELD_NUMBER: BSON_APPEND_DOUBLE(doc, f->name, 1.5); break;
  case CQRS_FIELD_INTEGER: BSON_APPEND_INT64(doc, f->name, 2); break;
  case CQRS_FIELD_OBJECT:
    BSON_APPEND_DOCUMENT_BEGIN(doc, f->name, &sub);
    fill(&sub, f->record, NULL);
    bson_append_document_end(doc, &sub);
    break;
  case CQRS_FIELD_ARRAY:
    BSON_APPEND_ARRAY_BEGIN(doc, f->name, &sub);
    BSON_APPEND_DOCUMENT_BEGIN(&sub, "0", &item);
    fill(&item, f->record, NULL);
    bson_append_document_end(&sub, &item);
    bson_append_array_end(doc, &sub);
    break;
  }
}

static void fill(bson_t *doc, const cqrs_event_record_t *rec, const char *skip) {
  for (size_t i = 0; i < rec->n_fields; i++)
    if (!skip || strcmp(rec->fields[i].name, skip) != 0) fill_field(doc, &rec->fields[i]);
}

Test(event_schema, every_row_compiles_and_validates_its_own_shape) {
  const cqrs_event_type_t *rows[64];
  size_t n = cqrs_event_types_by_version(rows, 64), total = 0;
  cr_assert_leq(n, 64);
  for (size_t i = 0; cqrs_event_types[i]; i++) total++;
  cr_assert_eq(n, total, "every row once: %zu of %zu", n, total);
  for (size_t i = 0; i < n; i++) {
    size_t len;
    char *json = cqrs_event_json_schema(rows[i], &len);
    cqrs_error_t err = {0};
    cqrs_jsonschema_t *s = cqrs_jsonschema_compile(json, len, &err);
    cr_assert_not_null(s, "%s v%d: %s (%s)", rows[i]->name, rows[i]->version, err.message, json);
    bson_t *schema = u_parse(json);
    cr_assert_str_eq(u_str(schema, "title"), rows[i]->name);
    cr_assert_not_null(strstr(json, "\"additionalProperties\":false"));
    bson_destroy(schema);

    bson_t doc = BSON_INITIALIZER;
    fill(&doc, rows[i]->data, NULL);
    cr_assert(cqrs_jsonschema_validate(s, &doc, &err), "%s: %s", rows[i]->name, err.message);
    /* and decode agrees it is an event of this type */
    cqrs_event_data_t out;
    cr_assert(rows[i]->decode(&doc, &out, &err), "%s decode: %s", rows[i]->name, err.message);
    bson_destroy(&doc);

    for (size_t f = 0; f < rows[i]->data->n_fields; f++) {
      const cqrs_event_field_t *field = &rows[i]->data->fields[f];
      bson_t less = BSON_INITIALIZER;
      fill(&less, rows[i]->data, field->name);
      bool ok = cqrs_jsonschema_validate(s, &less, &err);
      cr_assert_eq(ok, !field->required, "%s without %s", rows[i]->name, field->name);
      if (!ok) cr_assert_str_eq(err.field, field->name);
      bson_destroy(&less);
    }
    bson_t extra = BSON_INITIALIZER;
    fill(&extra, rows[i]->data, NULL);
    BSON_APPEND_UTF8(&extra, "notInTheContract", "x");
    cr_assert_not(cqrs_jsonschema_validate(s, &extra, &err));
    cr_assert_str_eq(err.field, "notInTheContract");
    bson_destroy(&extra);
    cqrs_jsonschema_destroy(s);
    bson_free(json);
  }
}

Test(event_schema, versions_ascend_per_type_and_are_found) {
  const cqrs_event_type_t *rows[64];
  size_t n = cqrs_event_types_by_version(rows, 64);
  for (size_t i = 1; i < n; i++)
    if (strcmp(rows[i]->name, rows[i - 1]->name) == 0)
      cr_assert_gt(rows[i]->version, rows[i - 1]->version, "%s", rows[i]->name);
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(cqrs_event_type_find_version(rows[i]->name, rows[i]->version), rows[i]);
  cr_assert_null(cqrs_event_type_find_version(rows[0]->name, 999));
  /* bounded output, full count */
  cr_assert_eq(cqrs_event_types_by_version(rows, 1), n);
}

/* The two evolutions the contract ships, built here from OrderCreated's and
 * CustomerEmailUpdated's own field lists: adding an optional field passes
 * BACKWARD_TRANSITIVE against version 1; renaming a required field does not,
 * and says which field and version. */
static cqrs_jsonschema_t *schema_of(const char *name, int version, const cqrs_event_record_t *rec) {
  cqrs_event_type_t t = {.name = name, .aggregate_type = "test", .version = version, .data = rec};
  size_t len;
  char *json = cqrs_event_json_schema(&t, &len);
  cqrs_error_t err = {0};
  cqrs_jsonschema_t *s = cqrs_jsonschema_compile(json, len, &err);
  cr_assert_not_null(s, "%s", err.message);
  bson_free(json);
  return s;
}

Test(event_schema, an_added_optional_field_is_backward_a_rename_is_not) {
  const cqrs_event_type_t *v1 = cqrs_event_type_find_version("OrderCreated", 1);
  cr_assert_not_null(v1);
  cqrs_event_field_t fields[32];
  size_t n = v1->data->n_fields;
  cr_assert_lt(n, 31);
  memcpy(fields, v1->data->fields, n * sizeof fields[0]);
  fields[n] = (cqrs_event_field_t){.name = "currency", .type = CQRS_FIELD_STRING, .required = false};
  cqrs_event_record_t added = {.fields = fields, .n_fields = n + 1};
  cqrs_jsonschema_t *old = schema_of(v1->name, 1, v1->data), *next = schema_of(v1->name, 2, &added);
  cqrs_compat_version_t prev[] = {{.schema = old, .version = 1}};
  cqrs_compat_messages_t m = {0};
  cr_assert(cqrs_compat_check(CQRS_COMPAT_BACKWARD_TRANSITIVE, next, prev, 1, &m), "%s", m.n ? m.items[0] : "");
  cqrs_jsonschema_destroy(next);
  cqrs_jsonschema_destroy(old);

  const cqrs_event_type_t *e1 = cqrs_event_type_find_version("CustomerEmailUpdated", 1);
  cr_assert_not_null(e1);
  n = e1->data->n_fields;
  memcpy(fields, e1->data->fields, n * sizeof fields[0]);
  size_t renamed = n;
  for (size_t i = 0; i < n; i++)
    if (strcmp(fields[i].name, "newEmail") == 0) renamed = i;
  cr_assert_lt(renamed, n);
  fields[renamed].name = "email";
  cqrs_event_record_t rename = {.fields = fields, .n_fields = n};
  old = schema_of(e1->name, 1, e1->data);
  next = schema_of(e1->name, 2, &rename);
  prev[0].schema = old;
  cr_assert_not(cqrs_compat_check(CQRS_COMPAT_BACKWARD_TRANSITIVE, next, prev, 1, &m));
  bool names_it = false;
  for (size_t i = 0; i < m.n; i++)
    names_it |= strstr(m.items[i], "field 'email' is required by the new schema but absent from version 1") != NULL;
  cr_assert(names_it, "%s", m.n ? m.items[0] : "no message");
  cqrs_compat_messages_cleanup(&m);
  cqrs_jsonschema_destroy(next);
  cqrs_jsonschema_destroy(old);
}

Test(event_schema, the_compiled_table_validates_by_descriptor) {
  cqrs_error_t err = {0};
  cqrs_event_schemas_t *v = cqrs_event_schemas_new(&err);
  cr_assert_not_null(v, "%s", err.message);
  for (size_t i = 0; cqrs_event_types[i]; i++) {
    const cqrs_event_type_t *t = cqrs_event_types[i];
    cr_assert_not_null(cqrs_event_schemas_get(v, t), "%s", t->name);
    bson_t doc = BSON_INITIALIZER;
    fill(&doc, t->data, NULL);
    cr_assert(cqrs_event_schemas_validate(v, t, &doc, &err), "%s: %s", t->name, err.message);
    BSON_APPEND_INT32(&doc, "notInTheContract", 1);
    cr_assert_not(cqrs_event_schemas_validate(v, t, &doc, &err));
    cr_assert_str_eq(err.field, "notInTheContract");
    bson_destroy(&doc);
  }
  cqrs_event_type_t stranger = *cqrs_event_types[0];
  bson_t empty = BSON_INITIALIZER;
  cr_assert_not(cqrs_event_schemas_validate(v, &stranger, &empty, &err));
  cr_assert_not_null(strstr(err.message, "has no schema"), "%s", err.message);
  cqrs_event_schemas_destroy(v);
  cqrs_event_schemas_destroy(NULL);
}
