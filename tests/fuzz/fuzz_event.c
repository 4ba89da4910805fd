/* CloudEvents records as they come off an events topic: the headers and value
 * decode (cqrs_event_from_record), then every event type's decode in the
 * contract (cqrs/events.h) on the data.
 *
 * Input: header lines "name:value" (the value runs to the end of the line; at
 * most 20), an empty line, then the record value. Each header value and the
 * record value sit in buffers of their exact size, as librdkafka hands them
 * over (not NUL-terminated), so reading past one is an ASan report.
 * Properties: a decoded record gives back the same record through
 * cqrs_event_to_headers; data that decodes as a type encodes to data that
 * decodes again and encodes to the same bytes (encode . decode is stable). */
#include "fuzz.h"

#include "cqrs/event.h"
#include "cqrs/events.h"

#define MAX_HEADERS 20

static void *exact_copy(const char *p, size_t len) {
  void *b = malloc(len ? len : 1);
  if (!b) abort();
  memcpy(b, p, len);
  return b;
}

static bool same(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

/* ev's headers decode to ev again. */
static void check_headers(const cqrs_event_t *ev, const void *value, size_t len) {
  cqrs_header_t hdrs[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = cqrs_event_to_headers(ev, hdrs, vbuf);
  cqrs_event_t back = {0};
  cqrs_error_t err = {0};
  FUZZ_CHECK(cqrs_event_from_record(&back, hdrs, n, value, len, &err), "re-decode: %s", err.message);
  FUZZ_CHECK(same(back.id, ev->id) && same(back.type, ev->type) && same(back.source, ev->source) &&
                 same(back.aggregate_type, ev->aggregate_type) && same(back.aggregate_id, ev->aggregate_id) &&
                 same(back.time, ev->time) && same(back.correlation_id, ev->correlation_id) &&
                 same(back.causation_id, ev->causation_id) && same(back.traceparent, ev->traceparent) &&
                 same(back.tenant, ev->tenant) && back.version == ev->version &&
                 same(back.dataschema, ev->dataschema) && back.schema_version == ev->schema_version &&
                 same(back.auth_type, ev->auth_type) && same(back.auth_id, ev->auth_id),
             "a record changed through its headers");
  cqrs_event_cleanup(&back);
}

/* Decodes data as t; when it decodes, encode . decode must be stable. */
static void check_type(const cqrs_event_type_t *t, const bson_t *data) {
  cqrs_event_data_t e;
  if (!t->decode(data, &e, NULL)) return;
  bson_t once = BSON_INITIALIZER, twice = BSON_INITIALIZER;
  t->encode(&e, &once);
  cqrs_event_data_t again;
  cqrs_error_t err = {0};
  FUZZ_CHECK(t->decode(&once, &again, &err), "%s: its own encoding does not decode: %s (%s)", t->name,
             err.message, err.field);
  t->encode(&again, &twice);
  FUZZ_CHECK(once.len == twice.len && memcmp(bson_get_data(&once), bson_get_data(&twice), once.len) == 0,
             "%s: encode . decode is not stable", t->name);
  bson_destroy(&once);
  bson_destroy(&twice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size), *end = text + size, *rest = text, *line;
  cqrs_header_t hdrs[MAX_HEADERS];
  size_t n = 0, len;
  while (n < MAX_HEADERS && (line = fuzz_next(&rest, end, '\n', &len)) && len > 0) {
    char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    line[name_len] = '\0';
    hdrs[n].name = line; /* names are ours to match: NUL-terminated, as the Kafka wrapper gives them */
    hdrs[n].len = colon ? len - name_len - 1 : 0;
    hdrs[n].value = exact_copy(colon ? colon + 1 : line, hdrs[n].len);
    n++;
  }
  size_t value_len = rest ? (size_t)(end - rest) : 0;
  void *value = exact_copy(rest ? rest : "", value_len);

  cqrs_event_t ev = {0};
  if (cqrs_event_from_record(&ev, hdrs, n, value, value_len, NULL)) {
    check_headers(&ev, value, value_len);
    for (const cqrs_event_type_t *const *t = cqrs_event_types; *t; t++) check_type(*t, ev.data);
  }
  cqrs_event_cleanup(&ev);
  free(value);
  for (size_t i = 0; i < n; i++) free((void *)hdrs[i].value);
  free(text);
  return 0;
}
