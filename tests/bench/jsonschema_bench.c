/* The cost of validating an event against its contract schema
 * (cqrs/jsonschema.h), what command-svc pays per event before append:
 * ns/event for each (type, version) of the contract, with a document built
 * from its own descriptor, next to the cost of decoding the same event
 * through the contract (cqrs_<ev>_decode), which every reader pays anyway.
 *
 *   build/bin/jsonschema_bench [iterations]      (default 200000) */
#include "cqrs/event_schema.h"
#include "cqrs/jsonschema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void fill(bson_t *doc, const cqrs_event_record_t *rec);

static void fill_field(bson_t *doc, const cqrs_event_field_t *f) {
  bson_t sub, item;
  switch (f->type) {
  case CQRS_FIELD_STRING: BSON_APPEND_UTF8(doc, f->name, "2026-12-02T03:00:00.000Z"); break;
  case CQRS_FIELD_NUMBER: BSON_APPEND_DOUBLE(doc, f->name, 12.5); break;
  case CQRS_FIELD_INTEGER: BSON_APPEND_INT64(doc, f->name, 3); break;
  case CQRS_FIELD_OBJECT:
    BSON_APPEND_DOCUMENT_BEGIN(doc, f->name, &sub);
    fill(&sub, f->record);
    bson_append_document_end(doc, &sub);
    break;
  case CQRS_FIELD_ARRAY:
    BSON_APPEND_ARRAY_BEGIN(doc, f->name, &sub);
    for (int i = 0; i < 3; i++) {
      char key[4];
      snprintf(key, sizeof key, "%d", i);
      BSON_APPEND_DOCUMENT_BEGIN(&sub, key, &item);
      fill(&item, f->record);
      bson_append_document_end(&sub, &item);
    }
    bson_append_array_end(doc, &sub);
    break;
  }
}

static void fill(bson_t *doc, const cqrs_event_record_t *rec) {
  for (size_t i = 0; i < rec->n_fields; i++) fill_field(doc, &rec->fields[i]);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  long iterations = argc > 1 ? atol(argv[1]) : 200000;
  const cqrs_event_type_t *rows[64];
  size_t n = cqrs_event_types_by_version(rows, 64);
  printf("%-22s %3s %8s %12s %12s\n", "event type", "v", "bytes", "validate ns", "decode ns");
  for (size_t i = 0; i < n && i < 64; i++) {
    size_t len;
    char *json = cqrs_event_json_schema(rows[i], &len);
    cqrs_error_t err = {0};
    cqrs_jsonschema_t *s = cqrs_jsonschema_compile(json, len, &err);
    if (!s) {
      fprintf(stderr, "%s: %s\n", rows[i]->name, err.message);
      return 1;
    }
    bson_t doc = BSON_INITIALIZER;
    fill(&doc, rows[i]->data);
    volatile bool sink = true;
    double t0 = now_ns();
    for (long k = 0; k < iterations; k++) sink = cqrs_jsonschema_validate(s, &doc, &err) && sink;
    double t1 = now_ns();
    cqrs_event_data_t out;
    for (long k = 0; k < iterations; k++) sink = rows[i]->decode(&doc, &out, &err) && sink;
    double t2 = now_ns();
    if (!sink) {
      fprintf(stderr, "%s: does not validate or decode: %s\n", rows[i]->name, err.message);
      return 1;
    }
    printf("%-22s %3d %8u %12.0f %12.0f\n", rows[i]->name, rows[i]->version, doc.len, (t1 - t0) / (double)iterations,
           (t2 - t1) / (double)iterations);
    bson_destroy(&doc);
    cqrs_jsonschema_destroy(s);
    bson_free(json);
  }
  return 0;
}
