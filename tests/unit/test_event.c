/* CloudEvents binary mode (cqrs/event.h): headers out and a record back in. */
#include "cqrs/event.h"
#include "unit.h"

#include <stdlib.h>

static const char *DATA = "{\"userId\":\"u-1\",\"email\":\"a@b.io\",\"name\":\"Ann\",\"createdAt\":\"2026-01-01T00:00:00.000Z\"}";

/* An event with every member set; data is owned by the caller. */
static cqrs_event_t full_event(void) {
  cqrs_event_t ev = {
      .id = "e-1", .type = "UserCreated", .source = "/command-svc", .aggregate_type = "user",
      .aggregate_id = "u-1", .time = "2026-01-01T00:00:00.000Z", .correlation_id = "corr-1",
      .causation_id = "cmd-1", .traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      .version = 42, .data = NULL};
  return ev;
}

static const cqrs_header_t *find_header(const cqrs_header_t *h, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(h[i].name, name) == 0) return &h[i];
  return NULL;
}

static void assert_header(const cqrs_header_t *h, size_t n, const char *name, const char *value) {
  const cqrs_header_t *x = find_header(h, n, name);
  cr_assert_not_null(x, "header %s missing", name);
  cr_assert_eq(x->len, strlen(value), "header %s length", name);
  cr_assert(memcmp(x->value, value, x->len) == 0, "header %s value", name);
}

Test(event, to_headers_names_and_values) {
  cqrs_event_t ev = full_event();
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = cqrs_event_to_headers(&ev, h, vbuf);
  cr_assert_eq(n, 12);
  assert_header(h, n, "ce_specversion", "1.0");
  assert_header(h, n, "ce_id", "e-1");
  assert_header(h, n, "ce_source", "/command-svc");
  assert_header(h, n, "ce_type", "UserCreated");
  assert_header(h, n, "ce_subject", "u-1");
  assert_header(h, n, "ce_time", "2026-01-01T00:00:00.000Z");
  assert_header(h, n, "content-type", "application/json");
  assert_header(h, n, "ce_aggregatetype", "user");
  assert_header(h, n, "ce_aggregateversion", "42");
  assert_header(h, n, "ce_correlationid", "corr-1");
  assert_header(h, n, "ce_causationid", "cmd-1");
  assert_header(h, n, "traceparent", ev.traceparent);
}

Test(event, to_headers_omits_absent_optionals) {
  cqrs_event_t ev = full_event();
  ev.correlation_id = ev.causation_id = ev.traceparent = NULL;
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = cqrs_event_to_headers(&ev, h, vbuf);
  cr_assert_eq(n, 9);
  cr_assert_null(find_header(h, n, "ce_correlationid"));
  cr_assert_null(find_header(h, n, "traceparent"));
}

Test(event, round_trip_preserves_every_field) {
  cqrs_event_t ev = full_event();
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = cqrs_event_to_headers(&ev, h, vbuf);
  cqrs_event_t back;
  cqrs_error_t err = {0};
  cr_assert(cqrs_event_from_record(&back, h, n, DATA, strlen(DATA), &err), "%s", err.message);
  cr_assert_str_eq(back.id, ev.id);
  cr_assert_str_eq(back.type, ev.type);
  cr_assert_str_eq(back.source, ev.source);
  cr_assert_str_eq(back.aggregate_type, ev.aggregate_type);
  cr_assert_str_eq(back.aggregate_id, ev.aggregate_id);
  cr_assert_str_eq(back.time, ev.time);
  cr_assert_str_eq(back.correlation_id, ev.correlation_id);
  cr_assert_str_eq(back.causation_id, ev.causation_id);
  cr_assert_str_eq(back.traceparent, ev.traceparent);
  cr_assert_eq(back.version, 42);
  cr_assert_not_null(back.data);
  bson_t *want = u_parse(DATA);
  cr_assert(bson_equal(back.data, want));
  bson_destroy(want);
  cqrs_event_cleanup(&back);
  cr_assert_null(back.id, "cleanup zeroes");
  cqrs_event_cleanup(&back);
}

Test(event, round_trip_without_optionals) {
  cqrs_event_t ev = full_event();
  ev.correlation_id = ev.causation_id = ev.traceparent = NULL;
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = cqrs_event_to_headers(&ev, h, vbuf);
  cqrs_event_t back;
  cr_assert(cqrs_event_from_record(&back, h, n, "{}", 2, NULL));
  cr_assert_null(back.correlation_id);
  cr_assert_null(back.causation_id);
  cr_assert_null(back.traceparent);
  cqrs_event_cleanup(&back);
}

/* Headers of full_event with header name replaced by value (NULL: dropped). */
static size_t headers_with(cqrs_header_t h[CQRS_EVENT_MAX_HEADERS], char vbuf[24], const char *name,
                           const char *value) {
  static cqrs_event_t ev;
  ev = full_event();
  size_t n = cqrs_event_to_headers(&ev, h, vbuf), out = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(h[i].name, name) == 0) {
      if (!value) continue;
      h[i].value = value;
      h[i].len = strlen(value);
    }
    h[out++] = h[i];
  }
  return out;
}

static void assert_rejected(const char *name, const char *value, const char *field) {
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = headers_with(h, vbuf, name, value);
  cqrs_event_t ev;
  cqrs_error_t err = {0};
  cr_assert_not(cqrs_event_from_record(&ev, h, n, DATA, strlen(DATA), &err), "%s=%s accepted", name,
                value ? value : "(absent)");
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_str_eq(err.field, field, "%s=%s", name, value ? value : "(absent)");
  cqrs_event_cleanup(&ev);
}

Test(event, missing_ce_id) { assert_rejected("ce_id", NULL, "ce_id"); }
Test(event, empty_ce_id) { assert_rejected("ce_id", "", "ce_id"); }
Test(event, missing_other_required_headers) {
  assert_rejected("ce_type", NULL, "ce_type");
  assert_rejected("ce_source", NULL, "ce_source");
  assert_rejected("ce_subject", NULL, "ce_subject");
  assert_rejected("ce_aggregatetype", NULL, "ce_aggregatetype");
  assert_rejected("ce_time", NULL, "ce_time");
  assert_rejected("ce_aggregateversion", NULL, "ce_aggregateversion");
}

Test(event, bad_aggregate_version) {
  assert_rejected("ce_aggregateversion", "x", "ce_aggregateversion");
  assert_rejected("ce_aggregateversion", "0", "ce_aggregateversion");
  assert_rejected("ce_aggregateversion", "-3", "ce_aggregateversion");
  assert_rejected("ce_aggregateversion", "12abc", "ce_aggregateversion");
  assert_rejected("ce_aggregateversion", "99999999999999999999999", "ce_aggregateversion");
}

Test(event, wrong_specversion) {
  assert_rejected("ce_specversion", "0.3", "ce_specversion");
  assert_rejected("ce_specversion", NULL, "ce_specversion");
}

Test(event, value_not_json) {
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  cqrs_event_t src = full_event();
  size_t n = cqrs_event_to_headers(&src, h, vbuf);
  const char *bad[] = {"not json", "[1,2]", "{\"a\":", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cqrs_event_t ev;
    cqrs_error_t err = {0};
    cr_assert_not(cqrs_event_from_record(&ev, h, n, bad[i], strlen(bad[i]), &err), "accepted %s", bad[i]);
    cr_assert_eq(err.code, CQRS_ERR_INVALID);
    cqrs_event_cleanup(&ev);
  }
  cqrs_event_t ev;
  cqrs_error_t err = {0};
  cr_assert_not(cqrs_event_from_record(&ev, h, n, NULL, 0, &err), "a record without value");
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cqrs_event_cleanup(&ev);
}

Test(event, value_need_not_be_nul_terminated) {
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  cqrs_event_t src = full_event();
  size_t n = cqrs_event_to_headers(&src, h, vbuf);
  char buf[] = {'{', '"', 'a', '"', ':', '1', '}', 'X', 'X'}; /* no NUL */
  cqrs_event_t ev;
  cqrs_error_t err = {0};
  cr_assert(cqrs_event_from_record(&ev, h, n, buf, 7, &err), "%s", err.message);
  cr_assert_eq(u_i64(ev.data, "a"), 1);
  cqrs_event_cleanup(&ev);
}

/* Every event says its schema: ce_dataschema and ce_schemaversion travel
 * together, set by cqrs_event_set_schema. */
Test(event, schema_headers_round_trip) {
  cqrs_event_t ev = full_event();
  cqrs_event_set_schema(&ev, "https://registry.example/", 3);
  cr_assert_eq(ev.schema_version, 3);
  cr_assert_str_eq(ev.dataschema, "https://registry.example/v1/schemas/subjects/UserCreated/versions/3");
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = cqrs_event_to_headers(&ev, h, vbuf);
  cr_assert_eq(n, 14);
  assert_header(h, n, "ce_dataschema", ev.dataschema);
  assert_header(h, n, "ce_schemaversion", "3");
  cqrs_event_t back;
  cqrs_error_t err = {0};
  cr_assert(cqrs_event_from_record(&back, h, n, DATA, strlen(DATA), &err), "%s", err.message);
  cr_assert_eq(back.schema_version, 3);
  cr_assert_str_eq(back.dataschema, ev.dataschema);
  cqrs_event_cleanup(&back);
  cqrs_event_set_schema(&ev, NULL, 1);
  cr_assert_str_eq(ev.dataschema, CQRS_SCHEMA_REGISTRY_DEFAULT "/v1/schemas/subjects/UserCreated/versions/1");
  free(ev.dataschema);
}

/* An event written before schema versions has neither header: version 1. */
Test(event, no_schema_headers_is_version_1) {
  cqrs_event_t ev = full_event();
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = cqrs_event_to_headers(&ev, h, vbuf);
  cr_assert_null(find_header(h, n, "ce_dataschema"));
  cr_assert_null(find_header(h, n, "ce_schemaversion"));
  cqrs_event_t back;
  cr_assert(cqrs_event_from_record(&back, h, n, DATA, strlen(DATA), NULL));
  cr_assert_eq(back.schema_version, 1);
  cr_assert_null(back.dataschema);
  cqrs_event_cleanup(&back);
  cr_assert_eq(cqrs_event_schema_version(&(cqrs_event_t){0}), 1, "0 in code reads as 1");
}

/* ce_dataschema alone (a producer that sets only the CloudEvents attribute)
 * gives its version; ce_schemaversion wins when both are there. */
Test(event, schema_version_from_dataschema) {
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS + 2];
  char vbuf[24];
  size_t n = headers_with(h, vbuf, "ce_schemaversion", NULL);
  h[n++] = (cqrs_header_t){"ce_dataschema", "http://r/v1/schemas/subjects/UserCreated/versions/2", 51};
  cqrs_event_t back;
  cqrs_error_t err = {0};
  cr_assert(cqrs_event_from_record(&back, h, n, DATA, strlen(DATA), &err), "%s", err.message);
  cr_assert_eq(back.schema_version, 2);
  cqrs_event_cleanup(&back);
  h[n++] = (cqrs_header_t){"ce_schemaversion", "5", 1};
  cr_assert(cqrs_event_from_record(&back, h, n, DATA, strlen(DATA), &err), "%s", err.message);
  cr_assert_eq(back.schema_version, 5);
  cqrs_event_cleanup(&back);
  h[n - 2] = (cqrs_header_t){"ce_dataschema", "urn:something-else", 18};
  h[n - 1] = (cqrs_header_t){"ce_tenant", "acme", 4};
  cr_assert(cqrs_event_from_record(&back, h, n, DATA, strlen(DATA), &err), "%s", err.message);
  cr_assert_eq(back.schema_version, 1, "a URI without a version: 1");
  cqrs_event_cleanup(&back);
}

/* A schema version the URI does not end in still travels (in version_buf),
 * and so does one without any URI. */
Test(event, schema_version_without_a_matching_uri_round_trips) {
  cqrs_event_t ev = full_event();
  ev.version = 123456789012LL; /* the longest aggregate version that leaves room */
  ev.schema_version = 7;
  ev.dataschema = "urn:example:user-created";
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = cqrs_event_to_headers(&ev, h, vbuf);
  assert_header(h, n, "ce_schemaversion", "7");
  assert_header(h, n, "ce_aggregateversion", "123456789012");
  cqrs_event_t back;
  cr_assert(cqrs_event_from_record(&back, h, n, DATA, strlen(DATA), NULL));
  cr_assert_eq(back.schema_version, 7);
  cr_assert_str_eq(back.dataschema, "urn:example:user-created");
  cqrs_event_cleanup(&back);
  ev.dataschema = NULL;
  ev.version = 3;
  n = cqrs_event_to_headers(&ev, h, vbuf);
  assert_header(h, n, "ce_schemaversion", "7");
  cr_assert_null(find_header(h, n, "ce_dataschema"));
}

Test(event, malformed_schema_version_is_refused) {
  const char *bad[] = {"", "0", "-1", "two", "2.0", "99999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cqrs_header_t h[CQRS_EVENT_MAX_HEADERS + 1];
    char vbuf[24];
    size_t n = headers_with(h, vbuf, "ce_schemaversion", NULL);
    h[n++] = (cqrs_header_t){"ce_schemaversion", bad[i], strlen(bad[i])};
    cqrs_event_t ev;
    cqrs_error_t err = {0};
    cr_assert_not(cqrs_event_from_record(&ev, h, n, DATA, strlen(DATA), &err), "accepted \"%s\"", bad[i]);
    cr_assert_str_eq(err.field, "ce_schemaversion");
    cqrs_event_cleanup(&ev);
  }
}

/* Who caused it: the Auth Context headers travel when set... */
Test(event, auth_context_round_trips) {
  cqrs_event_t ev = full_event();
  ev.auth_type = CQRS_AUTHTYPE_APP_USER;
  ev.auth_id = "auth0|5f7c8ec7c33c6c004bbafe82";
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = cqrs_event_to_headers(&ev, h, vbuf);
  cr_assert_eq(n, 14);
  assert_header(h, n, CQRS_EVENT_AUTHTYPE_HEADER, "app_user");
  assert_header(h, n, CQRS_EVENT_AUTHID_HEADER, ev.auth_id);
  cqrs_event_t back;
  cqrs_error_t err = {0};
  cr_assert(cqrs_event_from_record(&back, h, n, DATA, strlen(DATA), &err), "%s", err.message);
  cr_assert_str_eq(back.auth_type, "app_user");
  cr_assert_str_eq(back.auth_id, ev.auth_id);
  cqrs_event_cleanup(&back);
  /* a type alone (the extension makes authid optional) */
  ev.auth_id = NULL;
  n = cqrs_event_to_headers(&ev, h, vbuf);
  cr_assert_null(find_header(h, n, CQRS_EVENT_AUTHID_HEADER));
  cr_assert(cqrs_event_from_record(&back, h, n, DATA, strlen(DATA), &err), "%s", err.message);
  cr_assert_str_eq(back.auth_type, "app_user");
  cr_assert_null(back.auth_id);
  cqrs_event_cleanup(&back);
}

/* ...and an event written before they were has neither: no actor, no error. */
Test(event, no_auth_context_is_no_actor) {
  cqrs_event_t ev = full_event();
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = cqrs_event_to_headers(&ev, h, vbuf);
  cr_assert_null(find_header(h, n, CQRS_EVENT_AUTHTYPE_HEADER));
  cr_assert_null(find_header(h, n, CQRS_EVENT_AUTHID_HEADER));
  cqrs_event_t back;
  cqrs_error_t err = {0};
  cr_assert(cqrs_event_from_record(&back, h, n, DATA, strlen(DATA), &err), "%s", err.message);
  cr_assert_null(back.auth_type);
  cr_assert_null(back.auth_id);
  cqrs_event_cleanup(&back);
}

/* A hostile auth header is an error naming it, never a crash nor a stored
 * oddity: bad characters, a NUL inside, too long, not UTF-8, an id without a
 * type. */
Test(event, malformed_auth_context_is_refused) {
  static char long_id[CQRS_EVENT_AUTHID_MAX + 2]; /* one byte too long */
  memset(long_id, 'a', CQRS_EVENT_AUTHID_MAX + 1);
  static const struct {
    const char *type, *id;
    size_t id_len; /* 0: strlen(id) */
    const char *field;
  } bad[] = {
      {"", NULL, 0, CQRS_EVENT_AUTHTYPE_HEADER},
      {"App User", NULL, 0, CQRS_EVENT_AUTHTYPE_HEADER},
      {"user\n", NULL, 0, CQRS_EVENT_AUTHTYPE_HEADER},
      {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL, 0, CQRS_EVENT_AUTHTYPE_HEADER}, /* 33 */
      {NULL, "alice", 0, CQRS_EVENT_AUTHID_HEADER},
      {"app_user", "", 0, CQRS_EVENT_AUTHID_HEADER},
      {"app_user", "ali\tce", 0, CQRS_EVENT_AUTHID_HEADER},
      {"app_user", "ali\x1b[31mce", 0, CQRS_EVENT_AUTHID_HEADER},
      {"app_user", "ali\0ce", 6, CQRS_EVENT_AUTHID_HEADER},
      {"app_user", "\xc3\x28", 0, CQRS_EVENT_AUTHID_HEADER},
      {"app_user", long_id, 0, CQRS_EVENT_AUTHID_HEADER},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cqrs_header_t h[CQRS_EVENT_MAX_HEADERS + 2];
    char vbuf[24];
    size_t n = headers_with(h, vbuf, "ce_id", "e-1");
    if (bad[i].type) h[n++] = (cqrs_header_t){CQRS_EVENT_AUTHTYPE_HEADER, bad[i].type, strlen(bad[i].type)};
    if (bad[i].id)
      h[n++] = (cqrs_header_t){CQRS_EVENT_AUTHID_HEADER, bad[i].id, bad[i].id_len ? bad[i].id_len : strlen(bad[i].id)};
    cqrs_event_t ev;
    cqrs_error_t err = {0};
    cr_assert_not(cqrs_event_from_record(&ev, h, n, DATA, strlen(DATA), &err), "case %zu accepted", i);
    cr_assert_eq(err.code, CQRS_ERR_INVALID);
    cr_assert_str_eq(err.field, bad[i].field, "case %zu", i);
    cqrs_event_cleanup(&ev);
  }
  /* the longest id and any UTF-8 are fine */
  cr_assert(cqrs_event_authid_valid(long_id, CQRS_EVENT_AUTHID_MAX));
  cr_assert(cqrs_event_authid_valid("j\xc3\xb6rg@example.com", 16));
}
