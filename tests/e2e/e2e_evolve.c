/* End to end, event schema evolution (issue 12) on the real stack: events
 * written the old way (no ce_dataschema, v1 field names) read in the current
 * shape live, in the audit trail and the events by type, in time travel and
 * after a rebuild; an event of a type or
 * version the contract does not know goes to the dead letters with the type
 * and version in dlq_error while the projection goes on; a new order says its
 * currency and its event says its schema; a bad currency is a 400 naming it,
 * over HTTP and over Kafka. AUTH=off: tenant "default". */
#include "testkit.h"

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AWAIT_MS 60000

static tk_env_t env;
static pid_t pids[3];

static void setup(void) {
  tk_env_init(&env);
  tk_start_all(&env, pids);
}

static void teardown(void) { tk_stop_all(pids); }

TestSuite(evolve, .init = setup, .fini = teardown, .timeout = 600);

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An event written the old way (tk_produce_raw_event): ce_schemaversion =
 * schema when not NULL. */
static void produce_event(const char *type, const char *aggregate_type, const char *id, int version,
                          const char *schema, const char *data) {
  tk_produce_raw_event(&env, "events", type, aggregate_type, id, version, schema, data, NULL);
}

static bool has_text(const char *body, void *needle) { return strstr(body, needle) != NULL; }

/* GETs path until its body holds needle; fails the test after AWAIT_MS. */
static void await_text(const char *path, const char *needle) {
  tk_response_t r;
  bool ok = tk_await_get(env.query_port, path, 200, has_text, (void *)needle, AWAIT_MS, &r);
  cr_assert(ok, "%s never showed %s (last %d: %s)", path, needle, r.status, r.body ? r.body : "");
  tk_response_cleanup(&r);
}

/* GETs path once and asserts it answers 200 with needle in it. */
static void expect_text(const char *path, const char *needle) {
  tk_response_t r;
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_expect_eq(r.status, 200, "%s: %d %s", path, r.status, r.body);
  cr_expect(r.body && strstr(r.body, needle), "%s: want %s in %s", path, needle, r.body);
  tk_response_cleanup(&r);
}

/* GETs path once and asserts it answers 200 without needle. */
static void expect_no_text(const char *path, const char *needle) {
  tk_response_t r;
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_expect_eq(r.status, 200, "%s: %d %s", path, r.status, r.body);
  cr_expect(r.body && !strstr(r.body, needle), "%s: %s should not be in %s", path, needle, r.body);
  tk_response_cleanup(&r);
}

Test(evolve, v1_events_written_the_old_way_read_in_the_v2_shape_live_in_time_travel_and_after_a_rebuild) {
  char order[96], customer[96], path[256];
  snprintf(order, sizeof order, "o-v1-%s", env.prefix);
  snprintf(customer, sizeof customer, "k-v1-%s", env.prefix);
  produce_event("OrderCreated", "order", order, 1, NULL,
                "{\"orderId\":\"x\",\"userId\":\"u-1\",\"items\":[{\"product\":\"Pen\",\"quantity\":2,\"price\":1.5}],"
                "\"totalAmount\":3.0,\"createdAt\":\"2026-01-15T10:00:00.000Z\"}");
  produce_event("CustomerRegistered", "customer", customer, 1, NULL,
                "{\"customerId\":\"x\",\"email\":\"old@example.com\",\"name\":\"Ann\","
                "\"registeredAt\":\"2026-01-15T10:00:00.000Z\"}");
  produce_event("CustomerEmailUpdated", "customer", customer, 2, NULL,
                "{\"customerId\":\"x\",\"oldEmail\":\"old@example.com\",\"newEmail\":\"new@example.com\","
                "\"updatedAt\":\"2026-01-15T11:00:00.000Z\"}");

  /* live */
  snprintf(path, sizeof path, "/v1/orders/%s", order);
  await_text(path, "\"currency\":\"USD\"");
  snprintf(path, sizeof path, "/v1/customers/%s", customer);
  await_text(path, "\"email\":\"new@example.com\"");
  expect_text(path, "\"version\":2");

  /* the audit trail: the history keeps the events as written and shows them
   * upcast (its projection runs apart from the live one: awaited, not
   * assumed); then time travel from it */
  snprintf(path, sizeof path, "/v1/orders/%s/history", order);
  await_text(path, "\"OrderCreated\"");
  expect_text(path, "\"currency\":\"USD\"");
  expect_text(path, "\"schemaVersion\":2,\"writtenSchemaVersion\":1");
  snprintf(path, sizeof path, "/v1/customers/%s/history", customer);
  await_text(path, "\"email\":\"new@example.com\"");
  expect_text(path, "\"schemaVersion\":2,\"writtenSchemaVersion\":1");
  expect_no_text(path, "newEmail");
  snprintf(path, sizeof path, "/v1/events?type=CustomerEmailUpdated&from=2026-01-15T00:00:00Z&to=2026-01-16T00:00:00Z");
  expect_text(path, "\"email\":\"new@example.com\"");
  snprintf(path, sizeof path, "/v1/orders/%s?atVersion=1", order);
  expect_text(path, "\"currency\":\"USD\"");
  snprintf(path, sizeof path, "/v1/customers/%s?atVersion=2", customer);
  expect_text(path, "\"email\":\"new@example.com\"");

  /* rebuild: every document again from the log, into fresh collections */
  cr_assert_eq(tk_rebuild(&env, "order_summaries"), 0, "rebuild order_summaries");
  cr_assert_eq(tk_rebuild(&env, "customers"), 0, "rebuild customers");
  snprintf(path, sizeof path, "/v1/orders/%s", order);
  await_text(path, "\"currency\":\"USD\"");
  expect_text(path, "\"totalAmount\":3");
  snprintf(path, sizeof path, "/v1/customers/%s", customer);
  await_text(path, "\"email\":\"new@example.com\"");
}

/* The dead letters of projection for aggregate id (read from the DLQ topic
 * until one shows up, bounded): the first one's dlq_error (free it). */
static char *await_dead_letter(const char *projection, const char *id) {
  char topic[128];
  int64_t deadline = now_ms() + AWAIT_MS;
  while (now_ms() < deadline) {
    size_t n;
    char *error = NULL;
    tk_record_t *r = tk_kafka_read_all(&env, tk_topic(&env, "events.dlq", topic), &n);
    for (size_t i = 0; i < n && !error; i++)
      if (r[i].ce_subject && strcmp(r[i].ce_subject, id) == 0 && r[i].dlq_projection &&
          strcmp(r[i].dlq_projection, projection) == 0)
        error = strdup(r[i].dlq_error ? r[i].dlq_error : "");
    tk_records_free(r, n);
    if (error) return error;
    usleep(200 * 1000);
  }
  cr_assert_fail("no dead letter of %s for %s within %d ms", projection, id, AWAIT_MS);
  return NULL;
}

Test(evolve, unknown_type_and_unknown_version_are_dead_lettered_with_a_reason_and_the_projection_goes_on) {
  char refunded[96], future[96], path[256];
  snprintf(refunded, sizeof refunded, "o-refund-%s", env.prefix);
  snprintf(future, sizeof future, "o-future-%s", env.prefix);
  produce_event("OrderRefunded", "order", refunded, 1, NULL, "{\"amount\":3.0}");
  produce_event("OrderCreated", "order", future, 1, "9",
                "{\"userId\":\"u-1\",\"items\":[],\"totalAmount\":1.0,\"currency\":\"EUR\",\"createdAt\":\"t\"}");

  char *b = tk_command(&env, 201, "{\"commandType\":\"CreateOrder\",\"userId\":\"u-2\",\"totalAmount\":2,"
                                  "\"items\":[{\"product\":\"Ink\",\"quantity\":1,\"price\":2}]}");
  char *after = tk_json_string(b, "aggregateId");
  free(b);
  snprintf(path, sizeof path, "/v1/orders/%s", after);
  await_text(path, "\"currency\":\"USD\"");
  free(after);

  char *why = await_dead_letter("order_summaries", refunded);
  cr_expect(strstr(why, "OrderRefunded") && strstr(why, "version 1"), "dlq_error names type and version: %s", why);
  free(why);
  why = await_dead_letter("order_summaries", future);
  cr_expect(strstr(why, "OrderCreated") && strstr(why, "version 9"), "dlq_error names type and version: %s", why);
  free(why);
  /* neither became a document */
  tk_response_t r;
  snprintf(path, sizeof path, "/v1/orders/%s", future);
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_expect_eq(r.status, 404, "%s", r.body);
  tk_response_cleanup(&r);
}

/* The result on command-results keyed "default/<commandId>" (bounded). */
static char *await_result(const char *command_id) {
  char topic[128], key[128];
  snprintf(key, sizeof key, "default/%s", command_id);
  int64_t deadline = now_ms() + AWAIT_MS;
  while (now_ms() < deadline) {
    size_t n;
    char *value = NULL;
    tk_record_t *r = tk_kafka_read_all(&env, tk_topic(&env, "command-results", topic), &n);
    for (size_t i = 0; i < n && !value; i++)
      if (r[i].key && strcmp(r[i].key, key) == 0) value = strdup(r[i].value);
    tk_records_free(r, n);
    if (value) return value;
    usleep(200 * 1000);
  }
  cr_assert_fail("no result keyed %s within %d ms", key, AWAIT_MS);
  return NULL;
}

Test(evolve, a_new_order_shows_its_currency_and_its_event_says_its_schema) {
  char *b = tk_command(&env, 201, "{\"commandType\":\"CreateOrder\",\"userId\":\"u-3\",\"totalAmount\":9.5,"
                                  "\"currency\":\"EUR\",\"items\":[{\"product\":\"Tea\",\"quantity\":1,\"price\":9.5}]}");
  char *id = tk_json_string(b, "aggregateId"), *event_id = tk_json_string(b, "eventId");
  free(b);
  char path[256], topic[128];
  snprintf(path, sizeof path, "/v1/orders/%s", id);
  await_text(path, "\"currency\":\"EUR\"");

  size_t n;
  tk_record_t *r = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n);
  const tk_record_t *ev = NULL;
  for (size_t i = 0; i < n && !ev; i++)
    if (r[i].ce_id && strcmp(r[i].ce_id, event_id) == 0) ev = &r[i];
  cr_assert_not_null(ev, "event %s not on the log", event_id);
  cr_expect_str_eq(ev->ce_dataschema, "http://127.0.0.1:8083/v1/schemas/subjects/OrderCreated/versions/2");
  cr_expect_str_eq(ev->ce_schemaversion, "2");
  cr_expect(strstr(ev->value, "\"currency\":\"EUR\""), "%s", ev->value);
  tk_records_free(r, n);
  free(id), free(event_id);

  /* a bad currency: 400 naming it, over HTTP ... */
  b = tk_command(&env, 400, "{\"commandType\":\"CreateOrder\",\"userId\":\"u-3\",\"totalAmount\":1,"
                            "\"currency\":\"eur\",\"items\":[{\"product\":\"Tea\",\"quantity\":1,\"price\":1}]}");
  char *field = tk_json_string(b, "field");
  cr_expect(field && strcmp(field, "currency") == 0, "%s", b);
  free(field), free(b);
  /* ... and over Kafka, on command-results */
  char cid[96];
  snprintf(cid, sizeof cid, "cmd-cur-%s", env.prefix);
  char json[512];
  snprintf(json, sizeof json,
           "{\"commandType\":\"CreateOrder\",\"commandId\":\"%s\",\"userId\":\"u-3\",\"totalAmount\":1,"
           "\"currency\":\"DOLLARS\",\"items\":[{\"product\":\"Tea\",\"quantity\":1,\"price\":1}]}",
           cid);
  tk_kafka_produce(&env, tk_topic(&env, "commands", topic), -1, NULL, json, NULL);
  char *res = await_result(cid);
  cr_expect_eq(tk_json_int(res, "status"), 400, "%s", res);
  cr_expect(strstr(res, "\"field\":\"currency\""), "the result names the field: %s", res);
  free(res);
}

/* The aggregate-state value keyed "default/<id>" (free it), or NULL. */
static char *state_of(const char *id) {
  char topic[128], key[128];
  snprintf(key, sizeof key, "default/%s", id);
  size_t n;
  char *value = NULL;
  tk_record_t *r = tk_kafka_read_all(&env, tk_topic(&env, "aggregate-state", topic), &n);
  for (size_t i = 0; i < n; i++)
    if (r[i].key && strcmp(r[i].key, key) == 0) {
      free(value);
      value = r[i].value ? strdup(r[i].value) : NULL;
    }
  tk_records_free(r, n);
  return value;
}

/* The state topic lost (here: never written) while the log has events written
 * the old way: command-svc restores the aggregates from the log, upcast, writes
 * them to aggregate-state, and decides on them; an aggregate with an event it
 * cannot read refuses its commands with a 500 that says why. */
Test(evolve, command_svc_restores_from_the_event_log_when_aggregate_state_has_nothing) {
  char order[96], customer[96], bad[96];
  snprintf(order, sizeof order, "o-restore-%s", env.prefix);
  snprintf(customer, sizeof customer, "k-restore-%s", env.prefix);
  snprintf(bad, sizeof bad, "o-unreadable-%s", env.prefix);
  produce_event("OrderCreated", "order", order, 1, NULL,
                "{\"userId\":\"u-1\",\"items\":[{\"product\":\"Pen\",\"quantity\":2,\"price\":1.5}],"
                "\"totalAmount\":3.0,\"createdAt\":\"2026-01-15T10:00:00.000Z\"}");
  produce_event("CustomerRegistered", "customer", customer, 1, NULL,
                "{\"email\":\"old@example.com\",\"name\":\"Ann\",\"registeredAt\":\"2026-01-15T10:00:00.000Z\"}");
  produce_event("CustomerEmailUpdated", "customer", customer, 2, NULL,
                "{\"oldEmail\":\"old@example.com\",\"newEmail\":\"new@example.com\",\"updatedAt\":\"t\"}");
  produce_event("OrderCreated", "order", bad, 1, "2",
                "{\"userId\":\"u-1\",\"items\":[],\"totalAmount\":1.0,\"currency\":\"EUR\",\"createdAt\":\"t\"}");
  produce_event("OrderRefunded", "order", bad, 2, NULL, "{\"amount\":1.0}");

  /* a restart restores the partitions on assignment */
  tk_stop(pids[TK_COMMAND], SIGTERM);
  pids[TK_COMMAND] = tk_start(&env, TK_COMMAND, NULL);

  char *b = tk_command(&env, 201, "{\"commandType\":\"UpdateOrderStatus\",\"aggregateId\":\"%s\","
                                  "\"status\":\"Processing\",\"expectedVersion\":1}", order);
  cr_expect_eq(tk_json_int(b, "version"), 2, "%s", b);
  free(b);
  /* the restored email is v2's email, from v1's newEmail: the same one is no change */
  b = tk_command(&env, 200, "{\"commandType\":\"UpdateEmail\",\"aggregateId\":\"%s\","
                            "\"newEmail\":\"new@example.com\"}", customer);
  cr_expect_eq(tk_json_int(b, "version"), 2, "%s", b);
  free(b);
  b = tk_command(&env, 500, "{\"commandType\":\"UpdateOrderStatus\",\"aggregateId\":\"%s\","
                            "\"status\":\"Processing\"}", bad);
  cr_expect(strstr(b, "OrderRefunded") && strstr(b, "version 1"), "the refusal says why: %s", b);
  free(b);

  /* aggregate-state is whole again: the restored aggregates are in it */
  char *st = state_of(customer);
  cr_assert_not_null(st, "customer %s not written to aggregate-state", customer);
  cr_expect(strstr(st, "\"email\":\"new@example.com\""), "%s", st);
  free(st);
  st = state_of(bad);
  cr_assert_not_null(st);
  cr_expect(strstr(st, "\"unreadable\""), "the unreadable mark survives a restart: %s", st);
  free(st);
  st = state_of(order);
  cr_assert_not_null(st);
  cr_expect(strstr(st, "\"currency\":\"USD\"") && strstr(st, "\"status\":\"Processing\""), "%s", st);
  free(st);
}
