/* The accounting checker (tests/support/accounting.h) on hand-made logs: a
 * clean history passes, and each broken guarantee (an acknowledged event
 * lost, an event twice, versions out of order, a read model off the log, a
 * refused command with an event, an event nobody sent, a result that
 * disagrees with the log) is reported. A checker that cannot fail proves
 * nothing. */
#include "accounting.h"
#include "unit.h"

#include "cqrs/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 32

/* The world the checker looks at, rebuilt for each test. */
static tk_acct_event_t events[MAXN];
static size_t n_events;
static tk_acct_command_t commands[MAXN];
static size_t n_commands;
static tk_acct_result_t results[MAXN];
static size_t n_results;
static char strings[MAXN * 4][64];
static size_t n_strings;

static const char *str(const char *fmt, const char *a, int64_t b) {
  char *s = strings[n_strings++];
  snprintf(s, 64, fmt, a, (long long)b);
  return s;
}

static void teardown(void) {
  for (size_t i = 0; i < n_events; i++) bson_destroy(events[i].ev.data);
  n_events = n_commands = n_results = n_strings = 0;
}

TestSuite(accounting, .fini = teardown);

/* Appends user id's event at version (1: created, else a profile update
 * renaming it "<id> v<version>"), caused by command cmd, at partition/offset,
 * and returns its index. */
static size_t user_event(const char *id, int64_t version, const char *cmd, int32_t partition, int64_t offset) {
  tk_acct_event_t *e = &events[n_events];
  bson_t *data = bson_new();
  const char *name = str("%s v%lld", id, version);
  if (version == 1) {
    cqrs_user_created_t c = {.user_id = id, .email = str("%s@example.com%.0lld", id, 0), .name = name,
                             .created_at = "2026-03-01T10:00:00.000Z"};
    cqrs_user_created_encode(&c, data);
  } else {
    cqrs_user_profile_updated_t u = {.user_id = id, .changes = {.name = name}, .updated_at = "2026-03-01T10:00:01.000Z"};
    cqrs_user_profile_updated_encode(&u, data);
  }
  e->ev = (cqrs_event_t){.id = (char *)str("ev-%s-%lld", id, version),
                         .type = (char *)(version == 1 ? cqrs_user_created_event.name : cqrs_user_profile_updated_event.name),
                         .source = "/command-svc",
                         .aggregate_type = (char *)cqrs_user_created_event.aggregate_type,
                         .aggregate_id = (char *)id,
                         .time = "2026-03-01T10:00:00.000Z",
                         .causation_id = (char *)cmd,
                         .tenant = "default",
                         .version = version,
                         .data = data};
  e->partition = partition;
  e->offset = offset;
  return n_events++;
}

/* A command answered 201 for event i, and its result on command-results. */
static void acknowledged(size_t i) {
  const cqrs_event_t *e = &events[i].ev;
  commands[n_commands++] = (tk_acct_command_t){.command_id = e->causation_id, .status = 201,
                                               .aggregate_id = e->aggregate_id, .version = e->version,
                                               .event_id = e->id};
  results[n_results++] = (tk_acct_result_t){.tenant = "default", .command_id = e->causation_id, .status = 201,
                                            .aggregate_id = e->aggregate_id, .version = e->version,
                                            .event_id = e->id};
}

/* Two users, two and three versions, on two partitions: a clean history. */
static void clean_history(void) {
  acknowledged(user_event("u1", 1, "c1", 0, 10));
  acknowledged(user_event("u2", 1, "c2", 1, 20));
  acknowledged(user_event("u1", 2, "c3", 0, 11));
  acknowledged(user_event("u2", 2, "c4", 1, 21));
  acknowledged(user_event("u2", 3, "c5", 1, 22));
}

/* Checks the world with the stored documents of user_profiles and
 * event_history as given (NULL: exactly the fold of the log). */
static void check(bson_t **user_docs, size_t n_user_docs, tk_acct_report_t *r) {
  bson_t **want_u = NULL, **want_h = NULL;
  size_t nu = 0, nh = 0;
  cqrs_error_t err = {0};
  cr_assert(tk_acct_expected_docs(&cqrs_user_profiles_projection, "default", events, n_events, &want_u, &nu, &err),
            "%s", err.message);
  cr_assert(tk_acct_expected_docs(&cqrs_event_history_projection, "default", events, n_events, &want_h, &nh, &err),
            "%s", err.message);
  tk_acct_docs_t stores[2] = {
      {"default", &cqrs_user_profiles_projection, (const bson_t *const *)(user_docs ? user_docs : want_u),
       user_docs ? n_user_docs : nu},
      {"default", &cqrs_event_history_projection, (const bson_t *const *)want_h, nh},
  };
  tk_acct_input_t in = {.commands = commands, .n_commands = n_commands, .events = events, .n_events = n_events,
                        .results = results, .n_results = n_results, .stores = stores, .n_stores = 2,
                        .all_commands_known = true};
  tk_acct_check(&in, r);
  tk_acct_docs_free(want_u, nu);
  tk_acct_docs_free(want_h, nh);
}

/* True when a violation line contains needle. */
static bool says(const tk_acct_report_t *r, const char *needle) {
  for (size_t i = 0; i < r->n_violations; i++)
    if (strstr(r->violations[i], needle)) return true;
  return false;
}

static char *text(const tk_acct_report_t *r) { return tk_acct_report_format(r, 20); }

Test(accounting, a_clean_history_has_no_violation) {
  clean_history();
  tk_acct_report_t r;
  check(NULL, 0, &r);
  char *t = text(&r);
  cr_expect_eq(r.n_violations, 0, "%s", t);
  cr_expect_eq(r.acknowledged, 5);
  cr_expect_eq(r.events, 5);
  cr_expect_eq(r.documents, 2 + 5, "two users, five history entries: %s", t);
  cr_expect_eq(r.lost + r.duplicated + r.reordered + r.gaps + r.orphans + r.documents_wrong, 0);
  free(t);
  tk_acct_report_cleanup(&r);
}

Test(accounting, the_expected_document_is_the_fold_of_the_log) {
  clean_history();
  bson_t **docs = NULL;
  size_t n = 0;
  cqrs_error_t err = {0};
  cr_assert(tk_acct_expected_docs(&cqrs_user_profiles_projection, "default", events, n_events, &docs, &n, &err));
  cr_assert_eq(n, 2);
  for (size_t i = 0; i < n; i++) {
    bson_iter_t id, name, version;
    cr_assert(bson_iter_init_find(&id, docs[i], "_id"));
    cr_assert(bson_iter_init_find(&name, docs[i], "name"));
    cr_assert(bson_iter_init_find(&version, docs[i], "version"));
    const char *want = strcmp(bson_iter_utf8(&id, NULL), "u1") == 0 ? "u1 v2" : "u2 v3";
    cr_expect_str_eq(bson_iter_utf8(&name, NULL), want);
    cr_expect_eq(bson_iter_as_int64(&version), want[4] - '0');
  }
  tk_acct_docs_free(docs, n);
}

Test(accounting, an_acknowledged_event_missing_from_the_log_is_lost) {
  clean_history();
  /* u2 v2 disappears (the commands still say they got it) */
  bson_destroy(events[3].ev.data);
  events[3] = events[4];
  n_events--;
  tk_acct_report_t r;
  check(NULL, 0, &r);
  char *t = text(&r);
  cr_expect_eq(r.lost, 1, "%s", t);
  cr_expect_eq(r.gaps, 1, "%s", t);
  cr_expect(says(&r, "command c4 answered 201"), "%s", t);
  cr_expect(says(&r, "versions jump from 1 to 3"), "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);
}

Test(accounting, an_event_appended_twice_is_duplicated) {
  clean_history();
  /* c3 decided again: another event id, the same version */
  size_t i = user_event("u1", 2, "c3", 0, 12);
  events[i].ev.id = "ev-u1-2-again";
  tk_acct_report_t r;
  check(NULL, 0, &r);
  char *t = text(&r);
  cr_expect_eq(r.duplicated, 1, "%s", t);
  cr_expect(says(&r, "version 2 more than once"), "%s", t);
  cr_expect(says(&r, "command c3 has 2 events"), "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);
}

Test(accounting, versions_out_of_order_in_the_log_are_reordered) {
  clean_history();
  /* u2 v3 written before v2 */
  events[3].offset = 23;
  tk_acct_report_t r;
  check(NULL, 0, &r);
  char *t = text(&r);
  cr_expect_eq(r.reordered, 1, "%s", t);
  cr_expect(says(&r, "version 2 after version 3"), "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);
}

Test(accounting, a_read_model_off_the_log_is_reported_field_by_field) {
  clean_history();
  bson_t **docs = NULL;
  size_t n = 0;
  cqrs_error_t err = {0};
  cr_assert(tk_acct_expected_docs(&cqrs_user_profiles_projection, "default", events, n_events, &docs, &n, &err));
  /* u2 as if v2 had been applied after v3 (no version guard): name of v2 */
  for (size_t i = 0; i < n; i++) {
    bson_iter_t id;
    if (!bson_iter_init_find(&id, docs[i], "_id") || strcmp(bson_iter_utf8(&id, NULL), "u2") != 0) continue;
    bson_t *old = bson_new();
    bson_iter_t it;
    bson_iter_init(&it, docs[i]);
    while (bson_iter_next(&it))
      if (strcmp(bson_iter_key(&it), "name") == 0)
        BSON_APPEND_UTF8(old, "name", "u2 v2");
      else
        bson_append_value(old, bson_iter_key(&it), -1, bson_iter_value(&it));
    bson_destroy(docs[i]);
    docs[i] = old;
  }
  tk_acct_report_t r;
  check(docs, n, &r);
  char *t = text(&r);
  cr_expect_eq(r.documents_wrong, 1, "%s", t);
  cr_expect(says(&r, "document u2 differs from the fold of the log at \"name\""), "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);

  /* and a document no event explains */
  bson_t *ghost = BCON_NEW("_id", BCON_UTF8("u9"), "name", BCON_UTF8("ghost"), "version", BCON_INT64(1));
  docs = realloc(docs, (n + 1) * sizeof *docs);
  docs[n++] = ghost;
  check(docs, n, &r);
  t = text(&r);
  cr_expect(says(&r, "document u9 is explained by no event"), "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);
  tk_acct_docs_free(docs, n);
}

Test(accounting, a_refused_command_with_an_event_is_reported) {
  clean_history();
  commands[2].status = 409; /* c3 refused, yet u1 v2 is its event */
  commands[2].event_id = NULL;
  tk_acct_report_t r;
  check(NULL, 0, &r);
  char *t = text(&r);
  cr_expect(says(&r, "command c3 was refused (409) but the log has event ev-u1-2"), "%s", t);
  cr_expect(says(&r, "command c3: its answer (409, event none) is not on command-results"), "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);
}

Test(accounting, an_event_nobody_sent_is_an_orphan_but_a_lost_answer_may_have_one) {
  clean_history();
  user_event("u3", 1, "c-unknown", 2, 5);
  user_event("u4", 1, "c-nobody", 2, 6);
  commands[n_commands++] = (tk_acct_command_t){.command_id = "c-unknown", .status = 0};
  tk_acct_report_t r;
  check(NULL, 0, &r);
  char *t = text(&r);
  cr_expect_eq(r.unknown, 1, "%s", t);
  cr_expect_eq(r.orphans, 1, "%s", t);
  cr_expect(says(&r, "has no command the client sent (causation c-nobody)"), "%s", t);
  cr_expect_not(says(&r, "c-unknown"), "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);

  /* ...but at most one */
  user_event("u3", 2, "c-unknown", 2, 7);
  check(NULL, 0, &r);
  t = text(&r);
  cr_expect(says(&r, "command c-unknown has 2 events"), "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);
}

Test(accounting, a_result_that_disagrees_with_the_log_is_reported) {
  clean_history();
  results[4].version = 7; /* c5's result says v7; the log has v3 */
  /* and a delivered Kafka command that never got a result */
  commands[n_commands++] = (tk_acct_command_t){.command_id = "k1", .status = 0, .delivered = true};
  tk_acct_report_t r;
  check(NULL, 0, &r);
  char *t = text(&r);
  cr_expect(says(&r, "result of c5 names event ev-u2-3 of u2 v7"), "%s", t);
  cr_expect(says(&r, "command k1 reached the commands topic but has no result"), "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);
}

/* ---- sagas ---------------------------------------------------------------- */

static bson_t *instances[MAXN];
static size_t n_instances;
static tk_acct_emitted_t emitted[MAXN];
static size_t n_emitted;

static void saga_teardown(void) {
  for (size_t i = 0; i < n_instances; i++) bson_destroy(instances[i]);
  n_instances = n_emitted = 0;
  teardown();
}

/* Appends an event of type (its data encoded by the caller into data, taken
 * over) on aggregate id at version, caused by cmd, at time. */
static size_t add_event(const cqrs_event_type_t *type, const char *id, int64_t version, const char *cmd, bson_t *data,
                        const char *time) {
  tk_acct_event_t *e = &events[n_events];
  e->ev = (cqrs_event_t){.id = (char *)str("ev-%s-%lld", id, version),
                         .type = (char *)type->name,
                         .source = "/command-svc",
                         .aggregate_type = (char *)type->aggregate_type,
                         .aggregate_id = (char *)id,
                         .time = (char *)time,
                         .causation_id = (char *)cmd,
                         .tenant = "default",
                         .version = version,
                         .schema_version = type->version,
                         .data = data};
  e->partition = 0;
  e->offset = (int64_t)n_events;
  return n_events++;
}

static size_t user_created(const char *id, const char *cmd, const char *time) {
  bson_t *d = bson_new();
  cqrs_user_created_t c = {.user_id = id, .email = str("%s@example.com%.0lld", id, 0), .name = id, .created_at = time};
  cqrs_user_created_encode(&c, d);
  return add_event(&cqrs_user_created_event, id, 1, cmd, d, time);
}

static size_t order_created(const char *id, const char *user, const char *customer, const char *cmd, const char *time) {
  bson_t *d = bson_new(), *items = BCON_NEW("0", "{", "product", BCON_UTF8("Pen"), "quantity", BCON_INT64(1), "price",
                                            BCON_DOUBLE(2.0), "}");
  cqrs_order_created_t c = {.order_id = id, .user_id = user, .total_amount = 2.0, .currency = "USD",
                            .created_at = time, .customer_id = customer};
  bson_init_static(&c.items, bson_get_data(items), items->len);
  cqrs_order_created_encode(&c, d);
  bson_destroy(items);
  return add_event(&cqrs_order_created_event, id, 1, cmd, d, time);
}

static size_t user_order_recorded(const char *user, int64_t version, const char *order, const char *cmd) {
  bson_t *d = bson_new();
  cqrs_user_order_recorded_t c = {.user_id = user, .order_id = order, .recorded_at = "2026-03-01T10:00:02.000Z"};
  cqrs_user_order_recorded_encode(&c, d);
  return add_event(&cqrs_user_order_recorded_event, user, version, cmd, d, "2026-03-01T10:00:02.000Z");
}

static size_t order_cancelled(const char *order, int64_t version, const char *reason, const char *cmd) {
  bson_t *d = bson_new();
  cqrs_order_status_updated_t c = {.order_id = order, .status = "Cancelled", .previous_status = "Created",
                                   .updated_at = "2026-03-01T10:00:03.000Z", .reason = reason};
  cqrs_order_status_updated_encode(&c, d);
  return add_event(&cqrs_order_status_updated_event, order, version, cmd, d, "2026-03-01T10:00:03.000Z");
}

/* A result on command-results for a command with (or without: event NULL) its event. */
static void result(const char *cmd, int status, size_t event) {
  const cqrs_event_t *e = event == SIZE_MAX ? NULL : &events[event].ev;
  results[n_results++] = (tk_acct_result_t){.tenant = "default", .command_id = cmd, .status = status,
                                            .aggregate_id = e ? e->aggregate_id : NULL, .version = e ? e->version : 0,
                                            .event_id = e ? e->id : NULL};
}

/* A saga instance from JSON (single quotes for double), its commands emitted
 * on the commands topic. */
static void instance(const char *json) {
  char buf[2048];
  size_t n = 0;
  for (; json[n] && n + 1 < sizeof buf; n++) buf[n] = json[n] == '\'' ? '"' : json[n];
  buf[n] = '\0';
  bson_error_t e;
  instances[n_instances] = bson_new_from_json((const uint8_t *)buf, -1, &e);
  cr_assert_not_null(instances[n_instances], "%s: %s", buf, e.message);
  n_instances++;
}

static void emit(const char *saga_id, const char *cmd) {
  emitted[n_emitted] = (tk_acct_emitted_t){.tenant = "default", .command_id = cmd, .correlation_id = saga_id,
                                           .partition = 0, .offset = (int64_t)n_emitted};
  n_emitted++;
}

/* Orders o1 of user u1 (recorded on u1: its placement saga completed) and o2
 * of no user (cancelled USER_NOT_FOUND: compensated); the deadline sagas of
 * both. */
static void saga_history(void) {
  acknowledged(user_created("u1", "c1", "2026-03-01T10:00:00.000Z"));
  acknowledged(order_created("o1", "u1", NULL, "c2", "2026-03-01T10:00:01.000Z"));
  acknowledged(order_created("o2", "nobody", NULL, "c3", "2026-03-01T10:00:01.000Z"));
  result("s1", 201, user_order_recorded("u1", 2, "o1", "s1"));
  result("s2", 404, SIZE_MAX);
  result("s3", 201, order_cancelled("o2", 2, "USER_NOT_FOUND", "s3"));
  instance("{'sagaId':'p1','type':'order_placement','tenant':'default','key':'o1','state':'completed',"
           "'steps':[{'step':'record-user','command':{'commandType':'RecordUserOrder','aggregateId':'u1'},"
           "'commandId':'s1','outcome':'201'}]}");
  instance("{'sagaId':'p2','type':'order_placement','tenant':'default','key':'o2','state':'compensated',"
           "'steps':[{'step':'record-user','command':{'commandType':'RecordUserOrder','aggregateId':'nobody'},"
           "'commandId':'s2','outcome':'404'},"
           "{'step':'cancel','command':{'commandType':'UpdateOrderStatus','aggregateId':'o2'},"
           "'commandId':'s3','outcome':'201'}]}");
  instance("{'sagaId':'d1','type':'order_deadline','tenant':'default','key':'o1','state':'running',"
           "'steps':[{'step':'deadline set','command':null,'commandId':null,'outcome':''}]}");
  instance("{'sagaId':'d2','type':'order_deadline','tenant':'default','key':'o2','state':'completed','steps':[]}");
  emit("p1", "s1");
  emit("p2", "s2");
  emit("p2", "s3");
}

static void check_sagas(tk_acct_report_t *r) {
  tk_acct_input_t in = {.commands = commands, .n_commands = n_commands, .events = events, .n_events = n_events,
                        .results = results, .n_results = n_results, .all_commands_known = true, .sagas = true,
                        .saga_instances = (const bson_t *const *)instances, .n_saga_instances = n_instances,
                        .emitted = emitted, .n_emitted = n_emitted};
  tk_acct_check(&in, r);
}

TestSuite(accounting_sagas, .fini = saga_teardown);

Test(accounting_sagas, a_clean_saga_history_has_no_violation) {
  saga_history();
  tk_acct_report_t r;
  check_sagas(&r);
  char *t = text(&r);
  cr_expect_eq(r.n_violations, 0, "%s", t);
  cr_expect_eq(r.sagas, 4, "%s", t);
  cr_expect_eq(r.saga_commands, 3, "%s", t);
  cr_expect_eq(r.orphans, 0, "events caused by saga steps are no orphans: %s", t);
  free(t);
  tk_acct_report_cleanup(&r);
}

/* What a saga-svc that picked a fresh commandId when it emitted a step again
 * (after a crash) would leave: the order recorded twice on its user. */
Test(accounting_sagas, a_step_emitted_again_under_another_command_id_is_duplicated) {
  saga_history();
  result("s1-again", 201, user_order_recorded("u1", 3, "o1", "s1-again"));
  emit("p1", "s1-again");
  tk_acct_report_t r;
  check_sagas(&r);
  char *t = text(&r);
  cr_expect_geq(r.saga_duplicated, 1, "%s", t);
  cr_expect(says(&r, "order o1 (user u1): recorded on its user 2 times"), "%s", t);
  cr_expect(says(&r, "saga p1 emitted command s1-again"), "%s", t);
  cr_expect_eq(r.orphans, 1, "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);
}

Test(accounting_sagas, a_saga_command_emitted_or_decided_twice_is_duplicated) {
  saga_history();
  emit("p1", "s1"); /* on the commands topic twice */
  results[n_results] = results[3];
  results[n_results++].event_id = "ev-other"; /* and a second decision */
  tk_acct_report_t r;
  check_sagas(&r);
  char *t = text(&r);
  cr_expect_geq(r.saga_duplicated, 2, "%s", t);
  cr_expect(says(&r, "saga command s1 of saga p1 is on the commands topic twice"), "%s", t);
  cr_expect(says(&r, "step record-user (command s1): decided twice"), "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);

  /* an event whose causation is a saga command, twice */
  saga_teardown();
  saga_history();
  size_t i = user_order_recorded("u1", 3, "o1", "s1");
  events[i].ev.id = "ev-u1-3-again";
  check_sagas(&r);
  t = text(&r);
  cr_expect(says(&r, "saga command s1 has 2 events in the log"), "%s", t);
  cr_expect_geq(r.duplicated, 1, "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);
}

Test(accounting_sagas, an_order_without_its_outcome_is_unfinished) {
  saga_history();
  /* o1's record lost (its result too), o2's cancel lost */
  for (size_t i = 0; i < n_events; i++)
    if (events[i].ev.causation_id && (strcmp(events[i].ev.causation_id, "s1") == 0 ||
                                      strcmp(events[i].ev.causation_id, "s3") == 0))
      events[i].ev.causation_id = "lost", events[i].ev.type = "Nothing";
  tk_acct_report_t r;
  check_sagas(&r);
  char *t = text(&r);
  cr_expect_geq(r.saga_unfinished, 2, "%s", t);
  cr_expect(says(&r, "order o1 (user u1): its user was created before it, yet it is recorded on the user 0 times"),
            "%s", t);
  cr_expect(says(&r, "order o1 (user u1): its placement saga completed, but the log records it 0 times"), "%s", t);
  cr_expect(says(&r, "order o2 (user nobody): its placement saga compensated it, but it is Created"), "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);
}

Test(accounting_sagas, an_instance_that_disagrees_with_command_results_is_reported) {
  saga_history();
  bson_destroy(instances[0]);
  n_instances--;
  memmove(&instances[0], &instances[1], n_instances * sizeof *instances); /* o1's placement saga gone */
  instance("{'sagaId':'p1','type':'order_placement','tenant':'default','key':'o1','state':'running',"
           "'steps':[{'step':'record-user','command':{'commandType':'RecordUserOrder','aggregateId':'u1'},"
           "'commandId':'s1','outcome':'pending'}]}");
  bson_destroy(instances[2]); /* o2's deadline saga gone */
  instances[2] = instances[--n_instances];
  tk_acct_report_t r;
  check_sagas(&r);
  char *t = text(&r);
  cr_expect(says(&r, "step record-user (command s1): still pending, though command-results answers it 201"), "%s", t);
  cr_expect(says(&r, "order o1 (user u1): its placement saga is still running"), "%s", t);
  cr_expect(says(&r, "(OrderCreated of o2 v1) started no order_deadline saga"), "%s", t);
  cr_expect_geq(r.saga_wrong, 1, "%s", t);
  cr_expect_geq(r.saga_unfinished, 2, "%s", t);
  free(t);
  tk_acct_report_cleanup(&r);
}
