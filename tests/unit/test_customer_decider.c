/* The Customer aggregate (command-svc/deciders/customer.c through decider.h):
 * validation, decide and evolve, and the customer commands through the
 * processor. Commands come from JSON as on the wire. */
#include "decider.h"
#include "cqrs/json.h"
#include "unit.h"

#include <stdio.h>

static const char NOW[] = "2026-03-01T10:00:00.000Z";
static const char LATER[] = "2026-03-02T11:00:00.000Z";

#define HARNESS_DECIDER cqrs_customer_decider
#define HARNESS_AGGREGATE_ID "k-1"
#include "decider_harness.h"

TestSuite(customer_decider, .fini = harness_teardown);

/* Decides json (which must be valid) against state. */
static bool decide(const char *json, const char *now) {
  assert_valid(json);
  cqrs_decision_cleanup(&dec);
  cqrs_error_clear(&err);
  return d->decide(state, &cmd, now, &dec, &err);
}

/* Folds the decided events into state. */
static void apply_decision(void) {
  for (size_t i = 0; i < dec.n_events; i++) {
    bson_t *next = bson_new();
    d->evolve(state, dec.events[i].type, &dec.events[i].data, next);
    if (state) bson_destroy(state);
    state = next;
  }
}

/* The state after CustomerRegistered(k-1, ann@example.com, Ann) at NOW. */
static void registered_state(void) {
  bson_t *data = BCON_NEW("customerId", BCON_UTF8("k-1"), "email", BCON_UTF8("ann@example.com"), "name",
                          BCON_UTF8("Ann"), "registeredAt", BCON_UTF8(NOW));
  state = bson_new();
  d->evolve(NULL, "CustomerRegistered", data, state);
  bson_destroy(data);
}

/* ... then CustomerSuspended at LATER. */
static void suspended_state(void) {
  registered_state();
  bson_t *data = BCON_NEW("customerId", BCON_UTF8("k-1"), "reason", BCON_UTF8("fraud"), "suspendedAt",
                          BCON_UTF8(LATER));
  bson_t *next = bson_new();
  d->evolve(state, "CustomerSuspended", data, next);
  bson_destroy(data);
  bson_destroy(state);
  state = next;
}

/* n copies of c in a static buffer (no heap: a failed assertion leaks nothing). */
static char *repeat(char c, size_t n) {
  static char buf[1024];
  cr_assert_lt(n, sizeof buf);
  memset(buf, c, n);
  buf[n] = '\0';
  return buf;
}

Test(customer_decider, registered_commands) {
  const cqrs_command_spec_t *spec = NULL;
  cr_assert_eq(cqrs_decider_for_command("RegisterCustomer", &spec), d);
  cr_assert(spec->creates);
  cr_assert_eq(cqrs_decider_for_command("UpdateEmail", &spec), d);
  cr_assert_not(spec->creates);
  cr_assert_eq(cqrs_decider_for_command("SuspendCustomer", &spec), d);
  cr_assert_not(spec->creates);
  cr_assert_null(cqrs_decider_for_command("ReactivateCustomer", &spec));
  cr_assert_eq(cqrs_decider_for_aggregate("customer"), d);
  cr_assert_str_eq(d->aggregate_type, "customer");
  cr_assert_str_eq(d->id_alias, "customerId");
}

Test(customer_decider, register_valid) {
  assert_valid("{\"commandType\":\"RegisterCustomer\",\"email\":\"ann@example.com\",\"name\":\"Ann\"}");
  assert_valid("{\"commandType\":\"RegisterCustomer\",\"customerId\":\"k-1\","
               "\"payload\":{\"email\":\"a@b.io\",\"name\":\"\xc3\x89mile\"}}");
}

Test(customer_decider, register_email) {
  assert_invalid("{\"commandType\":\"RegisterCustomer\",\"name\":\"Ann\"}", "email");
  assert_invalid("{\"commandType\":\"RegisterCustomer\",\"name\":\"Ann\",\"email\":\"\"}", "email");
  assert_invalid("{\"commandType\":\"RegisterCustomer\",\"name\":\"Ann\",\"email\":null}", "email");
  assert_invalid("{\"commandType\":\"RegisterCustomer\",\"name\":\"Ann\",\"email\":1}", "email");
  const char *bad[] = {"ann", "ann@", "@example.com", "ann@example", "ann@.com", "a nn@example.com",
                       "a@b@c.com"};
  char json[256];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(json, sizeof json, "{\"commandType\":\"RegisterCustomer\",\"name\":\"A\",\"email\":\"%s\"}", bad[i]);
    assert_invalid(json, "email");
  }
}

Test(customer_decider, register_email_length) {
  char json[512];
  snprintf(json, sizeof json, "{\"commandType\":\"RegisterCustomer\",\"name\":\"A\",\"email\":\"%s@b.io\"}",
           repeat('a', 249));
  assert_valid(json); /* 254 characters */
  snprintf(json, sizeof json, "{\"commandType\":\"RegisterCustomer\",\"name\":\"A\",\"email\":\"%s@b.io\"}",
           repeat('a', 250));
  assert_invalid(json, "email");
}

Test(customer_decider, register_name) {
  assert_invalid("{\"commandType\":\"RegisterCustomer\",\"email\":\"a@b.io\"}", "name");
  assert_invalid("{\"commandType\":\"RegisterCustomer\",\"email\":\"a@b.io\",\"name\":\"\"}", "name");
  assert_invalid("{\"commandType\":\"RegisterCustomer\",\"email\":\"a@b.io\",\"name\":\"  \\t \"}", "name");
  assert_invalid("{\"commandType\":\"RegisterCustomer\",\"email\":\"a@b.io\",\"name\":[\"A\"]}", "name");
  char json[512];
  snprintf(json, sizeof json, "{\"commandType\":\"RegisterCustomer\",\"email\":\"a@b.io\",\"name\":\"%s\"}",
           repeat('n', 200));
  assert_valid(json);
  snprintf(json, sizeof json, "{\"commandType\":\"RegisterCustomer\",\"email\":\"a@b.io\",\"name\":\"%s\"}",
           repeat('n', 201));
  assert_invalid(json, "name");
}

Test(customer_decider, alias_must_match_aggregate_id) {
  assert_valid("{\"commandType\":\"SuspendCustomer\",\"customerId\":\"k-1\",\"reason\":\"r\"}");
  assert_invalid("{\"commandType\":\"SuspendCustomer\",\"customerId\":\"k-2\",\"reason\":\"r\"}", "customerId");
  assert_invalid("{\"commandType\":\"UpdateEmail\",\"customerId\":7,\"newEmail\":\"a@b.io\"}", "customerId");
}

Test(customer_decider, update_email_fields) {
  assert_valid("{\"commandType\":\"UpdateEmail\",\"newEmail\":\"bo@example.com\"}");
  assert_invalid("{\"commandType\":\"UpdateEmail\"}", "newEmail");
  assert_invalid("{\"commandType\":\"UpdateEmail\",\"email\":\"bo@example.com\"}", "newEmail");
  assert_invalid("{\"commandType\":\"UpdateEmail\",\"newEmail\":\"\"}", "newEmail");
  assert_invalid("{\"commandType\":\"UpdateEmail\",\"newEmail\":false}", "newEmail");
  assert_invalid("{\"commandType\":\"UpdateEmail\",\"newEmail\":\"bo\"}", "newEmail");
  assert_invalid("{\"commandType\":\"UpdateEmail\",\"newEmail\":\"bo@example\"}", "newEmail");
  char json[512];
  snprintf(json, sizeof json, "{\"commandType\":\"UpdateEmail\",\"newEmail\":\"%s@b.io\"}", repeat('a', 250));
  assert_invalid(json, "newEmail");
}

Test(customer_decider, suspend_fields) {
  assert_valid("{\"commandType\":\"SuspendCustomer\",\"reason\":\"chargebacks\"}");
  assert_invalid("{\"commandType\":\"SuspendCustomer\"}", "reason");
  assert_invalid("{\"commandType\":\"SuspendCustomer\",\"reason\":\"\"}", "reason");
  assert_invalid("{\"commandType\":\"SuspendCustomer\",\"reason\":null}", "reason");
  assert_invalid("{\"commandType\":\"SuspendCustomer\",\"reason\":{\"code\":1}}", "reason");
  char json[1024];
  snprintf(json, sizeof json, "{\"commandType\":\"SuspendCustomer\",\"reason\":\"%s\"}", repeat('r', 500));
  assert_valid(json);
  snprintf(json, sizeof json, "{\"commandType\":\"SuspendCustomer\",\"reason\":\"%s\"}", repeat('r', 501));
  assert_invalid(json, "reason");
}

Test(customer_decider, decide_register) {
  cr_assert(decide("{\"commandType\":\"RegisterCustomer\",\"email\":\"ann@example.com\",\"name\":\"Ann\"}", NOW),
            "%s", err.message);
  cr_assert_eq(dec.n_events, 1);
  cr_assert_str_eq(dec.events[0].type, "CustomerRegistered");
  const bson_t *data = &dec.events[0].data;
  cr_assert_eq(u_count(data), 4, "customerId, email, name, registeredAt");
  cr_assert_str_eq(u_str(data, "customerId"), "k-1");
  cr_assert_str_eq(u_str(data, "email"), "ann@example.com");
  cr_assert_str_eq(u_str(data, "name"), "Ann");
  cr_assert_str_eq(u_str(data, "registeredAt"), NOW);
}

Test(customer_decider, decide_update_email) {
  registered_state();
  cr_assert(decide("{\"commandType\":\"UpdateEmail\",\"newEmail\":\"bo@example.com\"}", LATER), "%s", err.message);
  cr_assert_eq(dec.n_events, 1);
  cr_assert_str_eq(dec.events[0].type, "CustomerEmailUpdated");
  const bson_t *data = &dec.events[0].data;
  cr_assert_eq(u_count(data), 4, "customerId, oldEmail, email, updatedAt");
  cr_assert_str_eq(u_str(data, "customerId"), "k-1");
  cr_assert_str_eq(u_str(data, "oldEmail"), "ann@example.com");
  cr_assert_str_eq(u_str(data, "email"), "bo@example.com", "CustomerEmailUpdated v2: email");
  cr_assert_str_eq(u_str(data, "updatedAt"), LATER);
}

Test(customer_decider, decide_update_same_email_is_no_op) {
  registered_state();
  cr_assert(decide("{\"commandType\":\"UpdateEmail\",\"newEmail\":\"ann@example.com\"}", LATER), "valid");
  cr_assert_eq(dec.n_events, 0, "changes nothing: zero events");
}

/* Only an exact match is "the same": another letter case is a change. */
Test(customer_decider, decide_update_email_case_is_a_change) {
  registered_state();
  cr_assert(decide("{\"commandType\":\"UpdateEmail\",\"newEmail\":\"Ann@Example.com\"}", LATER));
  cr_assert_eq(dec.n_events, 1);
  cr_assert_str_eq(u_str(&dec.events[0].data, "email"), "Ann@Example.com");
}

Test(customer_decider, decide_update_email_of_suspended_is_refused) {
  suspended_state();
  cr_assert_not(decide("{\"commandType\":\"UpdateEmail\",\"newEmail\":\"bo@example.com\"}", LATER));
  cr_assert_eq(err.code, CQRS_ERR_REFUSED);
  cr_assert_eq(cqrs_error_http_status(err.code), 422);
  cr_assert_eq(dec.n_events, 0);
  cr_assert_not_null(strstr(err.message, "SUSPENDED"), "%s", err.message);
  /* not ACTIVE wins over "the same email" */
  cr_assert_not(decide("{\"commandType\":\"UpdateEmail\",\"newEmail\":\"ann@example.com\"}", LATER));
  cr_assert_eq(err.code, CQRS_ERR_REFUSED);
}

Test(customer_decider, decide_suspend) {
  registered_state();
  cr_assert(decide("{\"commandType\":\"SuspendCustomer\",\"reason\":\"chargebacks\"}", LATER), "%s", err.message);
  cr_assert_eq(dec.n_events, 1);
  cr_assert_str_eq(dec.events[0].type, "CustomerSuspended");
  const bson_t *data = &dec.events[0].data;
  cr_assert_eq(u_count(data), 3, "customerId, reason, suspendedAt");
  cr_assert_str_eq(u_str(data, "customerId"), "k-1");
  cr_assert_str_eq(u_str(data, "reason"), "chargebacks");
  cr_assert_str_eq(u_str(data, "suspendedAt"), LATER);
}

Test(customer_decider, decide_suspend_twice_is_refused) {
  suspended_state();
  cr_assert_not(decide("{\"commandType\":\"SuspendCustomer\",\"reason\":\"again\"}", LATER));
  cr_assert_eq(err.code, CQRS_ERR_REFUSED);
  cr_assert_eq(dec.n_events, 0);
}

/* A status this decider never writes (e.g. set by a later version) is not ACTIVE. */
Test(customer_decider, decide_unknown_status_is_refused) {
  state = BCON_NEW("customerId", BCON_UTF8("k-1"), "email", BCON_UTF8("a@b.io"), "status", BCON_UTF8("CLOSED"));
  cr_assert_not(decide("{\"commandType\":\"SuspendCustomer\",\"reason\":\"r\"}", LATER));
  cr_assert_eq(err.code, CQRS_ERR_REFUSED);
  cr_assert_not(decide("{\"commandType\":\"UpdateEmail\",\"newEmail\":\"x@b.io\"}", LATER));
  cr_assert_eq(err.code, CQRS_ERR_REFUSED);
}

Test(customer_decider, evolve_registered) {
  registered_state();
  cr_assert_eq(u_count(state), 7);
  cr_assert_str_eq(u_str(state, "customerId"), "k-1");
  cr_assert_str_eq(u_str(state, "email"), "ann@example.com");
  cr_assert_str_eq(u_str(state, "name"), "Ann");
  cr_assert_str_eq(u_str(state, "status"), "ACTIVE");
  cr_assert_str_eq(u_str(state, "registrationDate"), NOW);
  cr_assert_str_eq(u_str(state, "lastUpdated"), NOW);
  cr_assert(u_is_null(state, "suspensionReason"));
}

Test(customer_decider, evolve_email_updated) {
  registered_state();
  bson_t *data = BCON_NEW("customerId", BCON_UTF8("k-1"), "oldEmail", BCON_UTF8("ann@example.com"), "email",
                          BCON_UTF8("bo@example.com"), "updatedAt", BCON_UTF8(LATER));
  bson_t *next = bson_new();
  d->evolve(state, "CustomerEmailUpdated", data, next);
  bson_destroy(data);
  cr_assert_eq(u_count(next), 7);
  cr_assert_str_eq(u_str(next, "email"), "bo@example.com");
  cr_assert_str_eq(u_str(next, "lastUpdated"), LATER);
  cr_assert_str_eq(u_str(next, "registrationDate"), NOW);
  cr_assert_str_eq(u_str(next, "name"), "Ann");
  cr_assert_str_eq(u_str(next, "status"), "ACTIVE");
  cr_assert_str_eq(u_str(next, "customerId"), "k-1");
  cr_assert(u_is_null(next, "suspensionReason"));
  bson_destroy(next);
}

Test(customer_decider, evolve_suspended) {
  suspended_state();
  cr_assert_eq(u_count(state), 7);
  cr_assert_str_eq(u_str(state, "status"), "SUSPENDED");
  cr_assert_str_eq(u_str(state, "suspensionReason"), "fraud");
  cr_assert_str_eq(u_str(state, "lastUpdated"), LATER);
  cr_assert_str_eq(u_str(state, "registrationDate"), NOW);
  cr_assert_str_eq(u_str(state, "email"), "ann@example.com");
  cr_assert_str_eq(u_str(state, "name"), "Ann");
}

Test(customer_decider, evolve_unknown_event_keeps_state) {
  registered_state();
  bson_t *data = BCON_NEW("x", BCON_INT32(1));
  bson_t *next = bson_new();
  d->evolve(state, "CustomerReactivated", data, next);
  cr_assert(bson_equal(state, next));
  bson_destroy(data);
  bson_destroy(next);
}

Test(customer_decider, decide_then_evolve_lifecycle) {
  cr_assert(decide("{\"commandType\":\"RegisterCustomer\",\"email\":\"ann@example.com\",\"name\":\"Ann\"}", NOW));
  apply_decision();
  cr_assert(decide("{\"commandType\":\"UpdateEmail\",\"newEmail\":\"bo@example.com\"}", LATER));
  apply_decision();
  cr_assert_str_eq(u_str(state, "email"), "bo@example.com");
  cr_assert(decide("{\"commandType\":\"SuspendCustomer\",\"reason\":\"fraud\"}", LATER));
  apply_decision();
  cr_assert_str_eq(u_str(state, "status"), "SUSPENDED");
  cr_assert_str_eq(u_str(state, "email"), "bo@example.com");
  cr_assert_str_eq(u_str(state, "suspensionReason"), "fraud");
  cr_assert_not(decide("{\"commandType\":\"UpdateEmail\",\"newEmail\":\"cy@example.com\"}", LATER));
}

/* Through the processor ------------------------------------------------ */

#include "processor_harness.h"

TestSuite(customer_processor, .init = p_setup, .fini = p_teardown);

#define REGISTER "{\"commandType\":\"RegisterCustomer\",\"commandId\":\"c-1\",\"customerId\":\"cust-7\"," \
                 "\"email\":\"ann@example.com\",\"name\":\"Ann\"}"

Test(customer_processor, register_uses_customer_id) {
  process(REGISTER);
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_str_eq(out.aggregate_id, "cust-7");
  cr_assert_str_eq(u_str(result, "aggregateId"), "cust-7");
  cr_assert_eq(u_i64(result, "version"), 1);
  cr_assert_str_eq(u_str(result, "eventType"), "CustomerRegistered");
  cr_assert_eq(out.n_events, 1);
  cr_assert_str_eq(out.events[0].aggregate_type, "customer");
  cr_assert_str_eq(out.events[0].aggregate_id, "cust-7");
  cr_assert_str_eq(u_str(out.events[0].data, "customerId"), "cust-7");
  const cqrs_aggregate_t *a = cqrs_aggregate_store_get(store, "default/cust-7");
  cr_assert_not_null(a);
  cr_assert_str_eq(u_str(a->state, "status"), "ACTIVE");
}

Test(customer_processor, register_existing_is_422) {
  process(REGISTER);
  process("{\"commandType\":\"RegisterCustomer\",\"commandId\":\"c-2\",\"customerId\":\"cust-7\","
          "\"email\":\"x@example.com\",\"name\":\"X\"}");
  cr_assert_eq(out.status, 422, "%s", out.result_json);
}

Test(customer_processor, conflicting_customer_id_is_400) {
  process("{\"commandType\":\"RegisterCustomer\",\"commandId\":\"c-1\",\"aggregateId\":\"cust-1\","
          "\"customerId\":\"cust-2\",\"email\":\"ann@example.com\",\"name\":\"Ann\"}");
  cr_assert_eq(out.status, 400, "%s", out.result_json);
  cr_assert_str_eq(u_str(result, "field"), "customerId");
}

Test(customer_processor, update_email_of_suspended_is_422) {
  process(REGISTER);
  process("{\"commandType\":\"SuspendCustomer\",\"commandId\":\"c-2\",\"customerId\":\"cust-7\","
          "\"reason\":\"fraud\"}");
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_eq(u_i64(result, "version"), 2);
  process("{\"commandType\":\"UpdateEmail\",\"commandId\":\"c-3\",\"aggregateId\":\"cust-7\","
          "\"newEmail\":\"bo@example.com\"}");
  cr_assert_eq(out.status, 422, "%s", out.result_json);
  cr_assert_neq(u_str(result, "error")[0], '\0');
  cr_assert_eq(out.n_events, 0);
  cr_assert_eq(cqrs_aggregate_store_get(store, "default/cust-7")->version, 2, "unchanged");
  process("{\"commandType\":\"SuspendCustomer\",\"commandId\":\"c-4\",\"aggregateId\":\"cust-7\","
          "\"reason\":\"again\"}");
  cr_assert_eq(out.status, 422, "%s", out.result_json);
}

Test(customer_processor, second_identical_update_email_is_200_without_event) {
  process(REGISTER);
  process("{\"commandType\":\"UpdateEmail\",\"commandId\":\"c-2\",\"aggregateId\":\"cust-7\","
          "\"newEmail\":\"bo@example.com\"}");
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_eq(u_i64(result, "version"), 2);
  cr_assert_str_eq(u_str(result, "eventType"), "CustomerEmailUpdated");
  cr_assert_str_eq(u_str(out.events[0].data, "oldEmail"), "ann@example.com");

  /* the same change again under a new commandId: valid, changes nothing */
  process("{\"commandType\":\"UpdateEmail\",\"commandId\":\"c-3\",\"aggregateId\":\"cust-7\","
          "\"newEmail\":\"bo@example.com\"}");
  cr_assert_eq(out.status, 200, "%s", out.result_json);
  cr_assert(u_is_null(result, "eventId"), "%s", out.result_json);
  cr_assert_eq(u_i64(result, "version"), 2, "the current version");
  cr_assert_not(u_has(result, "error"));
  cr_assert_eq(out.n_events, 0);
  cr_assert_eq(cqrs_aggregate_store_get(store, "default/cust-7")->version, 2);

  /* and without a commandId at all */
  process("{\"commandType\":\"UpdateEmail\",\"aggregateId\":\"cust-7\",\"newEmail\":\"bo@example.com\"}");
  cr_assert_eq(out.status, 200, "%s", out.result_json);
  cr_assert(u_is_null(result, "eventId"), "%s", out.result_json);
}

Test(customer_processor, update_of_missing_customer_is_404) {
  process("{\"commandType\":\"UpdateEmail\",\"commandId\":\"c-1\",\"customerId\":\"ghost\","
          "\"newEmail\":\"bo@example.com\"}");
  cr_assert_eq(out.status, 404, "%s", out.result_json);
}

Test(customer_processor, stale_expected_version_is_409) {
  process(REGISTER);
  process("{\"commandType\":\"SuspendCustomer\",\"commandId\":\"c-2\",\"aggregateId\":\"cust-7\","
          "\"expectedVersion\":0,\"reason\":\"fraud\"}");
  cr_assert_eq(out.status, 409, "%s", out.result_json);
  cr_assert_eq(u_i64(result, "currentVersion"), 1);
}

/* ---- RecordCustomerOrder: the order placement saga's owner check ---- */

Test(customer_decider, record_order_needs_an_order_id) {
  assert_valid("{\"commandType\":\"RecordCustomerOrder\",\"orderId\":\"o-1\"}");
  assert_invalid("{\"commandType\":\"RecordCustomerOrder\"}", "orderId");
  assert_invalid("{\"commandType\":\"RecordCustomerOrder\",\"orderId\":\"\"}", "orderId");
}

Test(customer_decider, record_order_of_an_active_customer) {
  registered_state();
  cr_assert(decide("{\"commandType\":\"RecordCustomerOrder\",\"orderId\":\"o-1\"}", NOW), "%s", err.message);
  cr_assert_eq(dec.n_events, 1);
  cr_assert_str_eq(dec.events[0].type, "CustomerOrderRecorded");
  cr_assert_str_eq(u_str(&dec.events[0].data, "orderId"), "o-1");
  cr_assert_str_eq(u_str(&dec.events[0].data, "customerId"), "k-1");
  apply_decision();
  cr_assert_str_eq(u_str(state, "status"), "ACTIVE", "recording an order changes no state");
}

/* The suspension and the record are decided one after the other: after it,
 * the record is refused (and the placement saga cancels the order). */
Test(customer_decider, record_order_of_a_suspended_customer_is_refused) {
  suspended_state();
  cr_assert_not(decide("{\"commandType\":\"RecordCustomerOrder\",\"orderId\":\"o-1\"}", NOW));
  cr_assert_eq(err.code, CQRS_ERR_REFUSED);
  cr_assert_eq(dec.n_events, 0);
}
