/* The pure command pipeline (command-svc/processor.h): one command record in,
 * its outcome out, against an aggregate store the test stages into. */
#include "processor.h"

#include "cqrs/json.h"
#include "cqrs/util.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#define OUR_PARTITION 3

static int32_t ours(const char *key, void *ctx) {
  (void)key, (void)ctx;
  return OUR_PARTITION;
}
static int32_t elsewhere(const char *key, void *ctx) {
  (void)key;
  return *(int32_t *)ctx;
}
/* Records the key it was asked about; the command is ours. */
static char routed_key[256];
static int32_t recording(const char *key, void *ctx) {
  (void)ctx;
  snprintf(routed_key, sizeof routed_key, "%s", key);
  return OUR_PARTITION;
}

#define TENANT "acme"

static const char *NOW = "2026-03-01T10:00:00.000Z";

static cqrs_aggregate_store_t *store;
static cqrs_outcome_t out;
static cqrs_process_ctx_t ctx;
static bson_t *result;

static void setup(void) {
  store = cqrs_aggregate_store_new();
  ctx = (cqrs_process_ctx_t){.tenant = TENANT, .partition = OUR_PARTITION, .partition_of = ours, .now = NOW,
                             .source = "/command-svc", .traceparent = NULL};
}

static void teardown(void) {
  cqrs_outcome_cleanup(&out);
  if (result) bson_destroy(result);
  result = NULL;
  cqrs_aggregate_store_destroy(store);
}

TestSuite(processor, .init = setup, .fini = teardown);

/* Processes json; result holds the parsed result JSON (NULL when forwarded). */
static void process(const char *json) {
  cqrs_outcome_cleanup(&out);
  if (result) bson_destroy(result);
  result = NULL;
  cqrs_process_command(store, &ctx, json, strlen(json), &out);
  if (out.result_json) {
    cr_assert_eq(out.result_len, strlen(out.result_json));
    result = u_parse(out.result_json);
    cr_assert_eq(u_i64(result, "status"), out.status, "status in the body: %s", out.result_json);
  }
}

/* Takes the staged aggregate and commits it, as the command loop does after a
 * committed Kafka transaction. */
static void commit_staged(void) {
  cr_assert_not_null(out.staged);
  cqrs_aggregate_store_stage(store, out.staged);
  out.staged = NULL;
  cqrs_aggregate_store_commit(store);
}

static void assert_refused(int status, const char *field) {
  cr_assert_eq(out.status, status, "%s", out.result_json);
  cr_assert_not_null(result);
  cr_assert_neq(u_str(result, "error")[0], '\0');
  if (field)
    cr_assert_str_eq(u_str(result, "field"), field, "%s", out.result_json);
  cr_assert_eq(out.n_events, 0);
  cr_assert_null(out.staged);
  cr_assert_eq(out.forward_partition, -1);
  cr_assert_not_null(out.command_id, "a refusal is still keyed by a commandId");
}

#define CREATE "{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-1\",\"aggregateId\":\"u-1\"," \
               "\"correlationId\":\"corr-1\",\"email\":\"ann@example.com\",\"name\":\"Ann\"}"

/* Creates u-1 at version 1 and commits it. */
static void create_committed(void) {
  process(CREATE);
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  commit_staged();
}

Test(processor, not_json) {
  process("this is not json");
  assert_refused(400, NULL);
  cr_assert_str_eq(u_str(result, "commandId"), out.command_id, "a generated commandId");
  cr_assert_eq(strlen(out.command_id), CQRS_UUID_LEN - 1);
  cr_assert_null(out.command_type);
}

Test(processor, array_body) {
  process("[{\"commandType\":\"CreateUser\"}]");
  assert_refused(400, NULL);
}

Test(processor, missing_command_type_keeps_command_id) {
  process("{\"commandId\":\"cmd-x\",\"email\":\"a@b.io\"}");
  assert_refused(400, "commandType");
  cr_assert_str_eq(out.command_id, "cmd-x");
  cr_assert_str_eq(u_str(result, "commandId"), "cmd-x");
}

Test(processor, unknown_command_type) {
  process("{\"commandType\":\"DeleteUser\",\"commandId\":\"c\",\"aggregateId\":\"u-1\"}");
  assert_refused(400, "commandType");
  cr_assert_null(out.command_type, "only known types are reported for metrics");
}

Test(processor, update_without_aggregate_id) {
  process("{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"c\",\"changes\":{\"name\":\"Bo\"}}");
  assert_refused(400, "aggregateId");
  cr_assert_str_eq(out.command_type, "UpdateUserProfile");
}

Test(processor, invalid_fields) {
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"c\",\"email\":\"a@b.io\",\"name\":5}");
  assert_refused(400, "name");
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"c\",\"name\":\"A\"}");
  assert_refused(400, "email");
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"c\",\"name\":\"A\",\"email\":\"a@b.io\","
          "\"expectedVersion\":-2}");
  assert_refused(400, "expectedVersion");
}

Test(processor, create_derives_aggregate_id) {
  const char *json = "{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-derive\","
                     "\"email\":\"a@b.io\",\"name\":\"A\"}";
  process(json);
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  /* UUIDv5 of "cmd-derive" in the project's namespace, computed outside the
   * code under test: python3 -c 'import uuid; print(uuid.uuid5(uuid.UUID(
   * "6f1c2c8e-3d1a-5b7e-9a43-2c9f4b7d8e01"), "cmd-derive"))' */
  const char *want = "8acbb7f8-9ebb-5642-b4f7-baaa5f699a5b";
  cr_assert_str_eq(out.aggregate_id, want);
  cr_assert_str_eq(u_str(result, "aggregateId"), want);
  cr_assert_str_eq(out.events[0].aggregate_id, want);
  cr_assert_str_eq(out.staged->aggregate_id, want);
  /* the same commandId always lands on the same aggregate */
  cqrs_aggregate_store_t *other = cqrs_aggregate_store_new();
  cqrs_outcome_t again;
  cqrs_process_command(other, &ctx, json, strlen(json), &again);
  cr_assert_str_eq(again.aggregate_id, want);
  cqrs_outcome_cleanup(&again);
  cqrs_aggregate_store_destroy(other);
}

Test(processor, update_of_missing_aggregate) {
  process("{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"c\",\"aggregateId\":\"ghost\","
          "\"changes\":{\"name\":\"Bo\"}}");
  assert_refused(404, NULL);
  cr_assert_str_eq(u_str(result, "aggregateId"), "ghost");
}

Test(processor, update_of_missing_with_expected_version) {
  process("{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"c\",\"aggregateId\":\"ghost\","
          "\"expectedVersion\":0,\"changes\":{\"name\":\"Bo\"}}");
  assert_refused(404, NULL);
}

Test(processor, accepted_create) {
  ctx.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  process(CREATE);
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_str_eq(out.command_id, "cmd-1");
  cr_assert_str_eq(out.result_key, TENANT "/cmd-1");
  cr_assert_str_eq(out.aggregate_id, "u-1");
  cr_assert_str_eq(out.aggregate_key, TENANT "/u-1");
  cr_assert_str_eq(out.command_type, "CreateUser");
  cr_assert_eq(out.forward_partition, -1);
  cr_assert_null(out.forward_json);

  cr_assert_eq(out.n_events, 1);
  const cqrs_event_t *ev = &out.events[0];
  cr_assert_str_eq(ev->type, "UserCreated");
  cr_assert_eq(ev->version, 1);
  cr_assert_str_eq(ev->aggregate_type, "user");
  cr_assert_str_eq(ev->aggregate_id, "u-1", "ce_subject is the plain aggregateId");
  cr_assert_str_eq(ev->tenant, TENANT);
  cr_assert_str_eq(ev->source, "/command-svc");
  cr_assert_str_eq(ev->time, NOW);
  cr_assert_str_eq(ev->causation_id, "cmd-1");
  cr_assert_str_eq(ev->correlation_id, "corr-1");
  cr_assert_str_eq(ev->traceparent, ctx.traceparent);
  cr_assert_eq(strlen(ev->id), CQRS_UUID_LEN - 1);
  cr_assert_str_eq(u_str(ev->data, "userId"), "u-1");
  cr_assert_str_eq(u_str(ev->data, "email"), "ann@example.com");
  cr_assert_str_eq(u_str(ev->data, "name"), "Ann");
  cr_assert_str_eq(u_str(ev->data, "createdAt"), NOW);

  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = cqrs_event_to_headers(ev, h, vbuf);
  cqrs_event_t wire;
  char *value = cqrs_json_write(ev->data, NULL);
  cqrs_error_t err = {0};
  cr_assert(cqrs_event_from_record(&wire, h, n, value, strlen(value), &err), "%s", err.message);
  cr_assert_str_eq(wire.id, ev->id);
  cr_assert_str_eq(wire.type, "UserCreated");
  cr_assert_str_eq(wire.aggregate_id, "u-1");
  cr_assert_str_eq(wire.tenant, TENANT, "ce_tenant travels");
  cr_assert_str_eq(wire.aggregate_type, "user");
  cr_assert_eq(wire.version, 1);
  cr_assert_str_eq(wire.causation_id, "cmd-1");
  cr_assert_str_eq(wire.correlation_id, "corr-1");
  cqrs_event_cleanup(&wire);
  bson_free(value);

  cr_assert_str_eq(u_str(result, "commandId"), "cmd-1");
  cr_assert_str_eq(u_str(result, "aggregateId"), "u-1");
  cr_assert_eq(u_i64(result, "version"), 1);
  cr_assert_str_eq(u_str(result, "eventId"), ev->id);
  cr_assert_str_eq(u_str(result, "eventType"), "UserCreated");

  cr_assert_not_null(out.staged);
  cr_assert_eq(out.staged->version, 1);
  cr_assert_eq(out.staged->partition, OUR_PARTITION);
  cr_assert_str_eq(out.staged->aggregate_type, "user");
  cr_assert_str_eq(out.staged->tenant, TENANT);
  cr_assert_str_eq(out.staged->aggregate_id, "u-1");
  cr_assert_str_eq(out.staged->key, TENANT "/u-1");
  cr_assert_str_eq(u_str(out.staged->state, "name"), "Ann");
  cr_assert_not_null(cqrs_aggregate_recent(out.staged, "cmd-1"), "the outcome is remembered");
  cr_assert_null(cqrs_aggregate_store_get(store, TENANT "/u-1"), "the processor does not stage itself");
}

Test(processor, repeated_command_id_is_idempotent) {
  process(CREATE);
  char *event_id = strdup(out.events[0].id);
  commit_staged();
  process(CREATE);
  cr_assert_eq(out.status, 200, "%s", out.result_json);
  cr_assert_eq(out.n_events, 0);
  cr_assert_null(out.staged);
  cr_assert_str_eq(u_str(result, "eventId"), event_id, "the first outcome, unchanged");
  cr_assert_eq(u_i64(result, "version"), 1);
  cr_assert_str_eq(u_str(result, "eventType"), "UserCreated");
  cr_assert_str_eq(u_str(result, "aggregateId"), "u-1");
  cr_assert_str_eq(u_str(result, "commandId"), "cmd-1");
  free(event_id);
}

/* Processes UpdateUserProfile upd-<i> of u-1 (name "N<i>"). */
static void rename_u1(int i) {
  char json[256];
  snprintf(json, sizeof json,
           "{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"upd-%d\",\"aggregateId\":\"u-1\","
           "\"changes\":{\"name\":\"N%d\"}}",
           i, i);
  process(json);
}

/* README: "each aggregate remembers its last 8 outcomes, and every outcome
 * of the last minute". The numbers are the documented ones, not the
 * implementation's constants: commands a minute apart, the 9th on an
 * aggregate evicts the oldest outcome, and a repeat of it is decided anew. */
Test(processor, the_ninth_command_evicts_the_oldest_outcome) {
  enum { DOCUMENTED_WINDOW = 8, DOCUMENTED_MS = 60 * 1000 };
  ctx.now_ms = 1000000;
  process(CREATE); /* outcome 1: cmd-1 */
  commit_staged();
  for (int i = 2; i <= DOCUMENTED_WINDOW + 1; i++) {
    ctx.now_ms += DOCUMENTED_MS;
    rename_u1(i);
    cr_assert_eq(out.status, 201, "%s", out.result_json);
    commit_staged();
  }
  /* upd-2 is the oldest of the last 8: still answered from the window */
  rename_u1(2);
  cr_assert_eq(out.status, 200, "upd-2 is inside the window: %s", out.result_json);
  cr_assert_eq(u_i64(result, "version"), 2, "its first outcome");
  /* cmd-1 fell out: the create is decided again, and refused (u-1 exists: 422) */
  process(CREATE);
  cr_assert_neq(out.status, 200, "cmd-1 should have been evicted: %s", out.result_json);
  cr_assert_eq(out.status, 422, "%s", out.result_json);
}

/* Within a minute every outcome is remembered, however many commands came
 * after it (up to 64): a late first send (a retry decided, the aggregate
 * moved on) is answered, not decided again. */
Test(processor, a_repeat_within_a_minute_is_answered_after_many_more_commands) {
  ctx.now_ms = 1000000;
  process(CREATE);
  char *event_id = strdup(out.events[0].id);
  commit_staged();
  for (int i = 2; i <= 40; i++) {
    ctx.now_ms += 100;
    rename_u1(i);
    cr_assert_eq(out.status, 201, "%s", out.result_json);
    commit_staged();
  }
  ctx.now_ms += 12000; /* the first send, 12 s late */
  process(CREATE);
  cr_assert_eq(out.status, 200, "39 commands later, within a minute: %s", out.result_json);
  cr_assert_str_eq(u_str(result, "eventId"), event_id, "its first outcome");
  free(event_id);
}

Test(processor, repeated_create_without_aggregate_id) {
  const char *json = "{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-r\",\"email\":\"a@b.io\",\"name\":\"A\"}";
  process(json);
  char *agg = strdup(out.aggregate_id);
  commit_staged();
  process(json);
  cr_assert_eq(out.status, 200, "no second aggregate: %s", out.result_json);
  cr_assert_str_eq(out.aggregate_id, agg);
  cr_assert_eq(out.n_events, 0);
  cr_assert_eq(cqrs_aggregate_store_size(store), 1);
  free(agg);
}

Test(processor, repeat_seen_in_staged_batch) {
  process(CREATE);
  cqrs_aggregate_store_stage(store, out.staged); /* not committed yet: same batch */
  out.staged = NULL;
  process(CREATE);
  cr_assert_eq(out.status, 200, "%s", out.result_json);
  cr_assert_eq(out.n_events, 0);
}

Test(processor, create_existing_is_refused) {
  create_committed();
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-2\",\"aggregateId\":\"u-1\","
          "\"email\":\"x@example.com\",\"name\":\"X\"}");
  assert_refused(422, NULL);
}

Test(processor, stale_expected_version) {
  create_committed();
  process("{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"cmd-2\",\"aggregateId\":\"u-1\","
          "\"expectedVersion\":5,\"changes\":{\"name\":\"Bo\"}}");
  assert_refused(409, NULL);
  cr_assert_eq(u_i64(result, "currentVersion"), 1);
}

Test(processor, update_with_matching_expected_version) {
  create_committed();
  process("{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"cmd-2\",\"aggregateId\":\"u-1\","
          "\"expectedVersion\":1,\"changes\":{\"Name\":\"Bo\"}}");
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_eq(out.n_events, 1);
  cr_assert_str_eq(out.events[0].type, "UserProfileUpdated");
  cr_assert_eq(out.events[0].version, 2);
  cr_assert_null(out.events[0].correlation_id);
  cr_assert_str_eq(u_str(out.events[0].data, "changes.name"), "Bo");
  cr_assert_eq(u_i64(result, "version"), 2);
  cr_assert_str_eq(u_str(result, "eventType"), "UserProfileUpdated");
  cr_assert_eq(out.staged->version, 2);
  cr_assert_str_eq(u_str(out.staged->state, "name"), "Bo");
  cr_assert_str_eq(u_str(out.staged->state, "email"), "ann@example.com");
  cr_assert_not_null(cqrs_aggregate_recent(out.staged, "cmd-1"), "earlier outcomes are kept");
  cr_assert_not_null(cqrs_aggregate_recent(out.staged, "cmd-2"));
  commit_staged();
  cr_assert_eq(cqrs_aggregate_store_get(store, TENANT "/u-1")->version, 2);
}

Test(processor, update_without_expected_version) {
  create_committed();
  process("{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"cmd-2\",\"aggregateId\":\"u-1\","
          "\"payload\":{\"changes\":{\"email\":\"new@example.com\"}}}");
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_eq(out.events[0].version, 2);
}

Test(processor, repeat_after_newer_version_answers_first_outcome) {
  create_committed();
  const char *update = "{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"cmd-2\",\"aggregateId\":\"u-1\","
                       "\"expectedVersion\":1,\"changes\":{\"name\":\"Bo\"}}";
  process(update);
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  char *event_id = strdup(out.events[0].id);
  commit_staged();
  /* the aggregate is at version 2 now: the repeat is not a 409 */
  process(update);
  cr_assert_eq(out.status, 200, "%s", out.result_json);
  cr_assert_eq(u_i64(result, "version"), 2);
  cr_assert_str_eq(u_str(result, "eventId"), event_id);
  cr_assert_eq(out.n_events, 0);
  free(event_id);
}

Test(processor, create_with_expected_version_zero) {
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"c\",\"aggregateId\":\"u-7\","
          "\"expectedVersion\":0,\"email\":\"a@b.io\",\"name\":\"A\"}");
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_eq(out.events[0].version, 1);
}

Test(processor, no_op_update) {
  create_committed();
  process("{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"cmd-2\",\"aggregateId\":\"u-1\","
          "\"changes\":{\"name\":\"Ann\"}}");
  cr_assert_eq(out.status, 200, "%s", out.result_json);
  cr_assert_eq(out.n_events, 0);
  cr_assert_null(out.staged, "nothing to stage");
  cr_assert(u_is_null(result, "eventId"), "%s", out.result_json);
  cr_assert_eq(u_i64(result, "version"), 1, "the current version");
  cr_assert_not(u_has(result, "error"));
}

Test(processor, routed_to_another_partition) {
  int32_t target = 5;
  ctx.partition_of = elsewhere;
  ctx.partition_ctx = &target;
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-f\",\"correlationId\":\"corr-f\","
          "\"expectedVersion\":0,\"payload\":{\"email\":\"a@b.io\",\"name\":\"A\"}}");
  cr_assert_eq(out.forward_partition, 5);
  cr_assert_not_null(out.forward_json);
  char want_key[64];
  cr_assert_null(out.result_json, "no result for a forwarded command");
  cr_assert_eq(out.status, 0);
  cr_assert_eq(out.n_events, 0);
  cr_assert_null(out.staged);

  const char *want = "39aa0c09-acce-59a9-bf37-7b887ef0c0fb"; /* UUIDv5 of "cmd-f", as above */
  snprintf(want_key, sizeof want_key, TENANT "/%s", want);
  cr_assert_str_eq(out.aggregate_key, want_key, "forwarded under its aggregate key");
  cqrs_command_t fwd;
  cqrs_error_t err = {0};
  cr_assert(cqrs_command_parse(&fwd, out.forward_json, strlen(out.forward_json), &err), "%s", err.message);
  cr_assert_str_eq(fwd.type, "CreateUser");
  cr_assert_str_eq(fwd.command_id, "cmd-f");
  cr_assert_str_eq(fwd.aggregate_id, want, "forwarded with its derived aggregateId");
  cr_assert_str_eq(fwd.correlation_id, "corr-f");
  cr_assert(fwd.has_expected_version);
  cr_assert_eq(fwd.expected_version, 0);
  cr_assert_str_eq(u_str(&fwd.fields, "email"), "a@b.io");
  cr_assert_str_eq(u_str(&fwd.fields, "name"), "A");
  cqrs_command_cleanup(&fwd);

  /* processed on the owning partition, it is accepted on the same aggregate */
  char *json = strdup(out.forward_json);
  ctx.partition = 5;
  process(json);
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_str_eq(out.aggregate_id, want);
  cr_assert_eq(out.staged->partition, 5);
  free(json);
}

Test(processor, forwarded_command_id_generated_when_absent) {
  int32_t target = 0;
  ctx.partition_of = elsewhere;
  ctx.partition_ctx = &target;
  process("{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"u-9\",\"changes\":{\"name\":\"Bo\"}}");
  cr_assert_eq(out.forward_partition, 0);
  bson_t *fwd = u_parse(out.forward_json);
  cr_assert_str_eq(u_str(fwd, "commandId"), out.command_id, "the id it was given travels with it");
  cr_assert_str_eq(u_str(fwd, "aggregateId"), "u-9");
  bson_destroy(fwd);
}

Test(processor, invalid_command_is_refused_not_forwarded) {
  int32_t target = 1;
  ctx.partition_of = elsewhere;
  ctx.partition_ctx = &target;
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"c\",\"name\":\"A\"}");
  assert_refused(400, "email");
  cr_assert_null(out.forward_json);
}

Test(processor, outcome_cleanup_twice) {
  process(CREATE);
  cqrs_outcome_cleanup(&out);
  cqrs_outcome_cleanup(&out);
  cr_assert_null(out.result_json);
}

Test(processor, routes_by_aggregate_key) {
  ctx.partition_of = recording;
  process(CREATE);
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_str_eq(routed_key, TENANT "/u-1", "the partition follows the tenant's aggregate key");
}

Test(processor, same_aggregate_id_in_two_tenants_is_two_aggregates) {
  create_committed();
  ctx.tenant = "globex";
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-g\",\"aggregateId\":\"u-1\","
          "\"email\":\"gil@example.com\",\"name\":\"Gil\"}");
  cr_assert_eq(out.status, 201, "not an 'already exists' across tenants: %s", out.result_json);
  cr_assert_eq(u_i64(result, "version"), 1);
  cr_assert_str_eq(u_str(result, "aggregateId"), "u-1");
  cr_assert_str_eq(out.events[0].tenant, "globex");
  cr_assert_str_eq(out.events[0].aggregate_id, "u-1");
  cr_assert_eq(out.events[0].version, 1);
  commit_staged();
  cr_assert_eq(cqrs_aggregate_store_size(store), 2);
  const cqrs_aggregate_t *a = cqrs_aggregate_store_get(store, TENANT "/u-1");
  const cqrs_aggregate_t *b = cqrs_aggregate_store_get(store, "globex/u-1");
  cr_assert(a && b);
  cr_assert_eq(a->version, 1);
  cr_assert_eq(b->version, 1);
  cr_assert_str_eq(u_str(a->state, "name"), "Ann");
  cr_assert_str_eq(u_str(b->state, "name"), "Gil");
  cr_assert_null(cqrs_aggregate_store_get(store, "u-1"), "never keyed by the bare id");
}

Test(processor, same_command_id_in_two_tenants_is_two_commands) {
  const char *json = "{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-same\",\"email\":\"a@b.io\","
                     "\"name\":\"A\"}";
  process(json);
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_str_eq(out.result_key, TENANT "/cmd-same");
  commit_staged();
  ctx.tenant = "globex";
  process(json);
  cr_assert_eq(out.status, 201, "not the other tenant's outcome: %s", out.result_json);
  cr_assert_eq(out.n_events, 1);
  cr_assert_str_eq(out.result_key, "globex/cmd-same");
}

Test(processor, update_of_another_tenants_aggregate_is_not_found) {
  create_committed();
  ctx.tenant = "globex";
  process("{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"cmd-x\",\"aggregateId\":\"u-1\","
          "\"changes\":{\"name\":\"Eve\"}}");
  assert_refused(404, NULL);
  cr_assert_eq(cqrs_aggregate_store_get(store, TENANT "/u-1")->version, 1);
}

Test(processor, tenant_id_member_naming_another_tenant_is_forbidden) {
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-t\",\"aggregateId\":\"u-1\","
          "\"tenantId\":\"globex\",\"email\":\"a@b.io\",\"name\":\"A\"}");
  assert_refused(403, "tenantId");
  cr_assert_str_eq(out.result_key, TENANT "/cmd-t");
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-t\",\"aggregateId\":\"u-1\","
          "\"payload\":{\"tenantId\":7,\"email\":\"a@b.io\",\"name\":\"A\"}}");
  assert_refused(403, "tenantId");
}

Test(processor, tenant_id_member_naming_its_own_tenant_is_ignored) {
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-t\",\"aggregateId\":\"u-1\","
          "\"tenantId\":\"" TENANT "\",\"email\":\"a@b.io\",\"name\":\"A\"}");
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_str_eq(out.events[0].tenant, TENANT);
}

Test(processor, unauthenticated_record_gets_a_401_and_nothing_else) {
  int32_t target = 5;
  ctx.partition_of = elsewhere; /* not even forwarded */
  ctx.partition_ctx = &target;
  cqrs_error_t denied = {0};
  cqrs_error_set(&denied, CQRS_ERR_UNAUTHENTICATED, NULL, "missing");
  ctx.tenant = NULL;
  ctx.denied = &denied;
  process(CREATE);
  assert_refused(401, NULL);
  cr_assert_str_eq(u_str(result, "commandId"), "cmd-1");
  cr_assert_str_eq(out.result_key, "/cmd-1", "keyed so that no tenant's waiter matches it");
  cr_assert_null(out.aggregate_key);
  /* even a malformed one: who may send comes first */
  process("not json");
  assert_refused(401, NULL);
  cr_assert_eq(out.result_key[0], '/');
  cr_assert_str_eq(out.result_key + 1, out.command_id);
}

Test(processor, forbidden_record_gets_a_403_keyed_by_its_tenant) {
  cqrs_error_t denied = {0};
  cqrs_error_set(&denied, CQRS_ERR_FORBIDDEN, NULL, "the credential lacks the scope commands:write");
  ctx.denied = &denied;
  process(CREATE);
  assert_refused(403, NULL);
  cr_assert_str_eq(out.result_key, TENANT "/cmd-1");
  cr_assert_eq(cqrs_aggregate_store_size(store), 0);
}

Test(processor, result_key) {
  char *k = cqrs_result_key("acme", "c-1");
  cr_assert_str_eq(k, "acme/c-1");
  free(k);
  k = cqrs_result_key(NULL, "c-1");
  cr_assert_str_eq(k, "/c-1");
  free(k);
}

Test(processor, a_restored_aggregate_moves_to_the_partition_that_decides_it) {
  /* e.g. restored from a record written before tenancy, on the bare id's partition */
  cqrs_aggregate_t *a = cqrs_aggregate_new(TENANT, "u-1", "user", OUR_PARTITION + 1);
  a->version = 1;
  a->state = BCON_NEW("userId", BCON_UTF8("u-1"), "email", BCON_UTF8("ann@example.com"), "name", BCON_UTF8("Ann"));
  cqrs_aggregate_store_put(store, a);
  process("{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"cmd-2\",\"aggregateId\":\"u-1\","
          "\"changes\":{\"name\":\"Bo\"}}");
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_eq(out.staged->version, 2);
  cr_assert_eq(out.staged->partition, OUR_PARTITION, "dropped with the partition it is written to");
}

/* Every event says its schema: ce_dataschema points at its type's current
 * version in the registry, ce_schemaversion is that version, and both travel
 * through the wire headers. */
Test(processor, events_say_their_schema) {
  ctx.schema_registry = "http://registry.test:8083/";
  process("{\"commandType\":\"CreateOrder\",\"commandId\":\"cmd-o\",\"userId\":\"u-1\",\"totalAmount\":3,"
          "\"currency\":\"EUR\",\"items\":[{\"product\":\"Pen\",\"quantity\":3,\"price\":1}]}");
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  const cqrs_event_t *ev = &out.events[0];
  cr_assert_eq(ev->schema_version, 2);
  cr_assert_str_eq(ev->dataschema, "http://registry.test:8083/v1/schemas/subjects/OrderCreated/versions/2");
  cr_assert_str_eq(u_str(ev->data, "currency"), "EUR");
  cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
  char vbuf[24];
  size_t n = cqrs_event_to_headers(ev, h, vbuf);
  cqrs_event_t wire;
  char *value = cqrs_json_write(ev->data, NULL);
  cqrs_error_t err = {0};
  cr_assert(cqrs_event_from_record(&wire, h, n, value, strlen(value), &err), "%s", err.message);
  cr_assert_eq(wire.schema_version, 2);
  cr_assert_str_eq(wire.dataschema, ev->dataschema);
  bool has_version_header = false;
  for (size_t i = 0; i < n; i++)
    if (strcmp(h[i].name, "ce_schemaversion") == 0) has_version_header = h[i].len == 1 && *(const char *)h[i].value == '2';
  cr_assert(has_version_header, "ce_schemaversion: 2");
  cqrs_event_cleanup(&wire);
  bson_free(value);
  /* without a registry configured: the default one */
  ctx.schema_registry = NULL;
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-u\",\"email\":\"ann@example.com\",\"name\":\"Ann\"}");
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_str_eq(out.events[0].dataschema, CQRS_SCHEMA_REGISTRY_DEFAULT "/v1/schemas/subjects/UserCreated/versions/1");
}

/* The credential's kind and subject in the ctx land in every decided event
 * and travel in its Auth Context headers; without them the events say
 * nothing (never a made-up actor). */
Test(processor, events_say_who_caused_them) {
  ctx.actor_type = CQRS_AUTHTYPE_API_KEY;
  ctx.actor_id = "apikey:0123456789abcdef";
  create_committed();
  process("{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"cmd-2\",\"aggregateId\":\"u-1\","
          "\"changes\":{\"name\":\"Anna\"}}");
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_geq(out.n_events, 1);
  for (size_t i = 0; i < out.n_events; i++) {
    const cqrs_event_t *ev = &out.events[i];
    cr_assert_str_eq(ev->auth_type, CQRS_AUTHTYPE_API_KEY, "event %zu", i);
    cr_assert_str_eq(ev->auth_id, ctx.actor_id, "event %zu", i);
    cqrs_header_t h[CQRS_EVENT_MAX_HEADERS];
    char vbuf[24];
    size_t n = cqrs_event_to_headers(ev, h, vbuf);
    cqrs_event_t wire;
    cqrs_error_t err = {0};
    cr_assert(cqrs_event_from_record(&wire, h, n, "{}", 2, &err), "%s", err.message);
    cr_assert_str_eq(wire.auth_type, CQRS_AUTHTYPE_API_KEY);
    cr_assert_str_eq(wire.auth_id, ctx.actor_id);
    cqrs_event_cleanup(&wire);
  }
  ctx.actor_type = ctx.actor_id = NULL;
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-3\",\"aggregateId\":\"u-2\","
          "\"email\":\"bo@example.com\",\"name\":\"Bo\"}");
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_null(out.events[0].auth_type);
  cr_assert_null(out.events[0].auth_id);
}

/* Validation before append: a decided event that does not match its schema
 * (or is not at its type's current version) is refused as our bug, naming the
 * event and the field. */
Test(processor, decision_validate_refuses_a_bad_event) {
  cqrs_decision_t d = {0};
  cqrs_order_status_updated_t ok = {.status = "Shipped", .updated_at = NOW};
  cqrs_order_status_updated_encode(&ok, cqrs_decision_add(&d, &cqrs_order_status_updated_event));
  size_t bad = 99;
  cqrs_error_t err = {0};
  cr_assert(cqrs_decision_validate(&d, &bad, &err), "%s", err.message);
  cqrs_decision_cleanup(&d);

  cqrs_decision_t d2 = {0};
  cqrs_order_status_updated_encode(&ok, cqrs_decision_add(&d2, &cqrs_order_status_updated_event));
  cqrs_order_created_v1_t v1 = {.user_id = "u-1", .total_amount = 1, .created_at = NOW};
  bson_init(&v1.items);
  cqrs_order_created_v1_t *pv1 = &v1;
  cqrs_order_created_v1_encode(pv1, cqrs_decision_add(&d2, &cqrs_order_created_event)); /* v1 data as v2 */
  cr_assert_not(cqrs_decision_validate(&d2, &bad, &err));
  cr_assert_eq(bad, 1);
  cr_assert_eq(err.code, CQRS_ERR_INTERNAL);
  cr_assert_eq(cqrs_error_http_status(err.code), 500);
  cr_assert(strstr(err.message, "OrderCreated v2") && strstr(err.message, "currency"), "%s", err.message);
  cqrs_decision_cleanup(&d2);

  cqrs_decision_t d3 = {0};
  cqrs_order_created_v1_encode(pv1, cqrs_decision_add(&d3, &cqrs_order_created_v1_event));
  bson_destroy(&v1.items);
  cr_assert_not(cqrs_decision_validate(&d3, &bad, &err), "a past version is never written");
  cr_assert_eq(bad, 0);
  cr_assert(strstr(err.message, "OrderCreated v1") && strstr(err.message, "current"), "%s", err.message);
  cqrs_decision_cleanup(&d3);
}

/* The tenant's rate limit (ctx.admit): asked once per command this partition
 * decides, for the credential's tenant; a refusal is a 429 with retryAfter that
 * decides nothing and is not remembered, so a retry is decided later. */
static int admit_asked;
static bool admit_yes;
static char admit_tenant[64];
static bool admit_cb(const char *tenant, int64_t *retry_after_ms, void *c) {
  (void)c;
  admit_asked++;
  snprintf(admit_tenant, sizeof admit_tenant, "%s", tenant);
  if (!admit_yes) *retry_after_ms = 2500;
  return admit_yes;
}

Test(processor, a_rate_limited_command_is_429_decides_nothing_and_a_retry_is_decided) {
  ctx.admit = admit_cb;
  admit_asked = 0;
  admit_yes = false;
  process(CREATE);
  assert_refused(429, NULL);
  cr_assert_eq(u_i64(result, "retryAfter"), 3, "2500 ms is 3 whole seconds: %s", out.result_json);
  cr_assert_eq(admit_asked, 1);
  cr_assert_str_eq(admit_tenant, TENANT, "asked for the credential's tenant");
  admit_yes = true;
  process(CREATE);
  cr_assert_eq(out.status, 201, "the retry was answered from a remembered 429: %s", out.result_json);
  cr_assert_eq(admit_asked, 2);
}

Test(processor, the_rate_limit_is_not_asked_for_a_forwarded_or_malformed_command) {
  int32_t target = 5;
  ctx.admit = admit_cb;
  admit_asked = 0;
  admit_yes = false;
  ctx.partition_of = elsewhere;
  ctx.partition_ctx = &target;
  process(CREATE);
  cr_assert_eq(out.forward_partition, 5, "forwarded: counted where it is decided, not twice");
  process("{\"commandType\":\"CreateUser\"}");
  assert_refused(400, NULL);
  cr_assert_eq(admit_asked, 0);
}

/* CQRS_COMMAND_DEADLINE_HEADER: past its deadline a command is not decided
 * (no result, no event, no state, no rate-limit token); before it, or
 * without one, it is; a repeat the aggregate remembers is answered even
 * late, and a forwarded one is forwarded (its owner looks at the deadline). */
Test(processor, a_command_past_its_deadline_decides_nothing_and_a_remembered_repeat_is_still_answered) {
  ctx.now_ms = 1000000;
  ctx.admit = admit_cb;
  admit_asked = 0;
  admit_yes = true;
  ctx.deadline_ms = ctx.now_ms - 1;
  process(CREATE);
  cr_assert(out.expired);
  cr_assert_eq(out.status, 0);
  cr_assert_null(out.result_json, "no result: nobody waits for it, and its retry gets its own");
  cr_assert_eq(out.n_events, 0);
  cr_assert_null(out.staged);
  cr_assert_eq(admit_asked, 0, "an expired command takes no token");
  cr_assert_str_eq(out.command_id, "cmd-1");

  ctx.deadline_ms = ctx.now_ms; /* at the deadline: still in time */
  process(CREATE);
  cr_assert_not(out.expired);
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  char *event_id = strdup(out.events[0].id);
  commit_staged();

  ctx.deadline_ms = ctx.now_ms - 60000; /* a late copy of a command already decided */
  process(CREATE);
  cr_assert_not(out.expired);
  cr_assert_eq(out.status, 200, "%s", out.result_json);
  cr_assert_str_eq(u_str(result, "eventId"), event_id, "the first outcome");
  free(event_id);

  ctx.deadline_ms = 0; /* no deadline: never expires */
  ctx.now_ms = INT64_MAX;
  process("{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"cmd-2\",\"aggregateId\":\"u-1\","
          "\"changes\":{\"name\":\"Bo\"}}");
  cr_assert_not(out.expired);
  cr_assert_eq(out.status, 201, "%s", out.result_json);

  int32_t target = 5;
  ctx.partition_of = elsewhere;
  ctx.partition_ctx = &target;
  ctx.deadline_ms = 1;
  process("{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-9\",\"aggregateId\":\"u-9\","
          "\"email\":\"x@example.com\",\"name\":\"X\"}");
  cr_assert_not(out.expired, "the partition that decides it looks at its deadline");
  cr_assert_eq(out.forward_partition, 5);
}
