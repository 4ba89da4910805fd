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
  tk_acct_input_t in = {commands, n_commands, events, n_events, results, n_results, stores, 2, true};
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
