/* Single reads (query-svc/single_read.h): the decision between fresh, wait,
 * stale and absent, and the answer each gives. */
#include "single_read.h"
#include "unit.h"

static const char *const SORT[] = {"createdAt", "_id", NULL};
static const cqrs_single_read_t BY_ID = {"user_profiles", "_id", NULL, "no such user"};
static const cqrs_single_read_t BY_EMAIL = {"user_profiles", "email", SORT, "no user with this email"};

Test(single_read, a_document_at_or_past_min_version_is_fresh) {
  bson_t *doc = u_parse("{\"_id\":\"u1\",\"version\":3}");
  cr_assert_eq(cqrs_single_read_decide(doc, 0, false), CQRS_READ_FRESH);
  cr_assert_eq(cqrs_single_read_decide(doc, 3, true), CQRS_READ_FRESH);
  cr_assert_eq(cqrs_single_read_decide(doc, 2, false), CQRS_READ_FRESH);
  bson_destroy(doc);
}

Test(single_read, an_older_document_waits_while_there_is_time_then_is_stale) {
  bson_t *doc = u_parse("{\"_id\":\"u1\",\"version\":1}");
  cr_assert_eq(cqrs_single_read_decide(doc, 2, true), CQRS_READ_WAIT);
  cr_assert_eq(cqrs_single_read_decide(doc, 2, false), CQRS_READ_STALE);
  bson_destroy(doc);
}

Test(single_read, an_absent_document_waits_only_when_a_version_is_asked) {
  cr_assert_eq(cqrs_single_read_decide(NULL, 0, true), CQRS_READ_ABSENT);
  cr_assert_eq(cqrs_single_read_decide(NULL, 1, true), CQRS_READ_WAIT);
  cr_assert_eq(cqrs_single_read_decide(NULL, 1, false), CQRS_READ_ABSENT);
}

Test(single_read, a_document_without_version_counts_as_version_0) {
  bson_t *doc = u_parse("{\"_id\":\"u1\"}");
  cr_assert_eq(cqrs_single_read_version(doc), 0);
  cr_assert_eq(cqrs_single_read_version(NULL), 0);
  cr_assert_eq(cqrs_single_read_decide(doc, 1, false), CQRS_READ_STALE);
  bson_destroy(doc);
  doc = u_parse("{\"version\":4.0}");
  cr_assert_eq(cqrs_single_read_version(doc), 4);
  bson_destroy(doc);
}

Test(single_read, fresh_answers_200_with_the_document_without_id) {
  bson_t *doc = u_parse("{\"_id\":\"u1\",\"userId\":\"u1\",\"name\":\"A\",\"version\":2}");
  cqrs_read_answer_t a;
  cqrs_single_read_answer(&BY_ID, CQRS_READ_FRESH, doc, 2, &a);
  cr_assert_eq(a.status, 200);
  cr_assert_not(a.stale);
  cr_assert_str_eq(a.body, "{\"userId\":\"u1\",\"name\":\"A\",\"version\":2}");
  cr_assert_eq(a.len, strlen(a.body));
  cqrs_read_answer_cleanup(&a);
  bson_destroy(doc);
}

Test(single_read, stale_answers_200_with_x_stale) {
  bson_t *doc = u_parse("{\"_id\":\"u1\",\"version\":1}");
  cqrs_read_answer_t a;
  cqrs_single_read_answer(&BY_ID, CQRS_READ_STALE, doc, 2, &a);
  cr_assert_eq(a.status, 200);
  cr_assert(a.stale);
  cr_assert_str_eq(a.body, "{\"version\":1}");
  cqrs_read_answer_cleanup(&a);
  bson_destroy(doc);
}

Test(single_read, absent_answers_404_with_the_reads_message_and_x_stale_only_when_waited) {
  cqrs_read_answer_t a;
  cqrs_single_read_answer(&BY_EMAIL, CQRS_READ_ABSENT, NULL, 1, &a);
  cr_assert_eq(a.status, 404);
  cr_assert(a.stale);
  cr_assert_str_eq(a.body, "{\"error\":\"no user with this email\"}");
  cqrs_read_answer_cleanup(&a);
  cqrs_single_read_answer(&BY_ID, CQRS_READ_ABSENT, NULL, 0, &a);
  cr_assert_eq(a.status, 404);
  cr_assert_not(a.stale);
  cr_assert_str_eq(a.body, "{\"error\":\"no such user\"}");
  cqrs_read_answer_cleanup(&a);
}

Test(single_read, no_store_and_stopping_answer_503_saying_why) {
  cqrs_read_answer_t a;
  cqrs_single_read_answer(&BY_ID, CQRS_READ_NO_STORE, NULL, 1, &a);
  cr_assert_eq(a.status, 503);
  cr_assert_not(a.stale);
  cr_assert_str_eq(a.body, "{\"error\":\"the read store did not answer\"}");
  cqrs_read_answer_cleanup(&a);
  cqrs_single_read_answer(&BY_ID, CQRS_READ_STOPPING, NULL, 1, &a);
  cr_assert_eq(a.status, 503);
  cr_assert_str_eq(a.body, "{\"error\":\"the service is stopping\"}");
  cqrs_read_answer_cleanup(&a);
  cqrs_read_answer_cleanup(&a); /* twice is fine */
  cqrs_read_answer_cleanup(NULL);
}

Test(single_read, the_sort_goes_into_the_find_options_in_order) {
  bson_t opts = BSON_INITIALIZER;
  cqrs_single_read_append_sort(&BY_ID, &opts);
  cr_assert_eq(u_count(&opts), 0);
  cqrs_single_read_append_sort(&BY_EMAIL, &opts);
  char *json = bson_as_relaxed_extended_json(&opts, NULL);
  cr_assert_str_eq(json, "{ \"sort\" : { \"createdAt\" : 1, \"_id\" : 1 } }");
  bson_free(json);
  bson_destroy(&opts);
}
