/* Command results (cqrs/result.h): the body for HTTP and command-results. */
#include "cqrs/result.h"
#include "unit.h"

Test(result, accepted_fields) {
  cqrs_result_t r = {.status = 201, .command_id = "cmd-1", .aggregate_id = "agg-1", .version = 3,
                     .event_id = "ev-1", .event_type = "UserCreated"};
  size_t len = 0;
  char *json = cqrs_result_to_json(&r, &len);
  cr_assert_eq(len, strlen(json));
  bson_t *doc = u_parse(json);
  cr_assert_str_eq(u_str(doc, "commandId"), "cmd-1");
  cr_assert_str_eq(u_str(doc, "aggregateId"), "agg-1");
  cr_assert_eq(u_i64(doc, "version"), 3);
  cr_assert_str_eq(u_str(doc, "eventId"), "ev-1");
  cr_assert_str_eq(u_str(doc, "eventType"), "UserCreated");
  cr_assert_eq(u_i64(doc, "status"), 201);
  cr_assert_not(u_has(doc, "error"));
  cr_assert_not(u_has(doc, "field"));
  cr_assert_not(u_has(doc, "currentVersion"));
  bson_destroy(doc);
  bson_free(json);
}

Test(result, no_op_has_null_event) {
  cqrs_result_t r = {.status = 200, .command_id = "cmd-2", .aggregate_id = "agg-1", .version = 4};
  char *json = cqrs_result_to_json(&r, NULL);
  bson_t *doc = u_parse(json);
  cr_assert_eq(u_i64(doc, "version"), 4);
  cr_assert(u_is_null(doc, "eventId"), "%s", json);
  cr_assert(u_is_null(doc, "eventType"), "%s", json);
  cr_assert_eq(u_i64(doc, "status"), 200);
  bson_destroy(doc);
  bson_free(json);
}

Test(result, invalid_names_field) {
  cqrs_error_t err;
  cqrs_error_set(&err, CQRS_ERR_INVALID, "email", "email is required");
  cqrs_result_t r = {.status = 400, .command_id = "cmd-3", .error = &err};
  char *json = cqrs_result_to_json(&r, NULL);
  bson_t *doc = u_parse(json);
  cr_assert_str_eq(u_str(doc, "error"), "email is required");
  cr_assert_str_eq(u_str(doc, "field"), "email");
  cr_assert_eq(u_i64(doc, "status"), 400);
  cr_assert_str_eq(u_str(doc, "commandId"), "cmd-3");
  cr_assert_not(u_has(doc, "aggregateId"), "absent aggregateId is left out");
  cr_assert_not(u_has(doc, "currentVersion"));
  cr_assert_not(u_has(doc, "eventId"), "a refusal has no event members");
  cr_assert_not(u_has(doc, "version"));
  bson_destroy(doc);
  bson_free(json);
}

Test(result, conflict_has_current_version) {
  cqrs_error_t err;
  cqrs_error_set(&err, CQRS_ERR_CONFLICT, NULL, "stale");
  err.current_version = 7;
  cqrs_result_t r = {.status = 409, .command_id = "c", .aggregate_id = "a", .error = &err};
  char *json = cqrs_result_to_json(&r, NULL);
  bson_t *doc = u_parse(json);
  cr_assert_str_eq(u_str(doc, "error"), "stale");
  cr_assert_eq(u_i64(doc, "currentVersion"), 7);
  cr_assert_not(u_has(doc, "field"), "no field when none is to blame");
  cr_assert_eq(u_i64(doc, "status"), 409);
  bson_destroy(doc);
  bson_free(json);
}

Test(result, rate_limited_has_retry_after_in_whole_seconds) {
  cqrs_error_t err = {0};
  cqrs_error_set(&err, CQRS_ERR_RATE_LIMITED, NULL, "slow down");
  err.retry_after_ms = 1001;
  cqrs_result_t r = {.status = 429, .command_id = "c", .error = &err};
  size_t len;
  char *json = cqrs_result_to_json(&r, &len);
  cr_assert_eq(cqrs_result_retry_after(json, len), 2, "1001 ms rounds up to 2 s: %s", json);
  bson_free(json);
  err.retry_after_ms = 1;
  json = cqrs_result_to_json(&r, &len);
  cr_assert_eq(cqrs_result_retry_after(json, len), 1, "at least 1 s: %s", json);
  bson_free(json);
  cqrs_error_set(&err, CQRS_ERR_CONFLICT, NULL, "stale");
  r.status = 409;
  json = cqrs_result_to_json(&r, &len);
  cr_assert_eq(cqrs_result_retry_after(json, len), 0, "only a 429 says when: %s", json);
  bson_free(json);
  cr_assert_eq(cqrs_result_retry_after("{\"retryAfter\":-3}", 17), 0);
  cr_assert_eq(cqrs_result_retry_after("{\"retryAfter\":\"5\"}", 18), 0);
  cr_assert_eq(cqrs_result_retry_after("nope", 4), 0);
}

Test(result, not_found_and_refused) {
  cqrs_error_t err;
  cqrs_error_set(&err, CQRS_ERR_NOT_FOUND, NULL, "user u does not exist");
  cqrs_result_t r = {.status = 404, .command_id = "c", .aggregate_id = "u", .error = &err};
  char *json = cqrs_result_to_json(&r, NULL);
  bson_t *doc = u_parse(json);
  cr_assert_str_eq(u_str(doc, "error"), "user u does not exist");
  cr_assert_not(u_has(doc, "currentVersion"));
  bson_destroy(doc);
  bson_free(json);
}

Test(result, message_is_escaped) {
  cqrs_error_t err;
  cqrs_error_set(&err, CQRS_ERR_INVALID, "name", "bad \"quote\" \\ and\nnewline");
  cqrs_result_t r = {.status = 400, .command_id = "c\"1", .error = &err};
  char *json = cqrs_result_to_json(&r, NULL);
  bson_t *doc = u_parse(json);
  cr_assert_str_eq(u_str(doc, "error"), "bad \"quote\" \\ and\nnewline");
  cr_assert_str_eq(u_str(doc, "commandId"), "c\"1");
  bson_destroy(doc);
  bson_free(json);
}

Test(result, restatus_changes_only_status) {
  cqrs_result_t r = {.status = 201, .command_id = "cmd-1", .aggregate_id = "agg-1", .version = 1,
                     .event_id = "ev-1", .event_type = "UserCreated"};
  char *first = cqrs_result_to_json(&r, NULL);
  size_t len = 0;
  char *again = cqrs_result_restatus(first, strlen(first), 200, &len);
  cr_assert_not_null(again);
  cr_assert_eq(len, strlen(again));
  bson_t *a = u_parse(first), *b = u_parse(again);
  cr_assert_eq(u_i64(b, "status"), 200);
  cr_assert_eq(u_count(a), u_count(b));
  bson_t a_rest = BSON_INITIALIZER, b_rest = BSON_INITIALIZER;
  bson_copy_to_excluding_noinit(a, &a_rest, "status", NULL);
  bson_copy_to_excluding_noinit(b, &b_rest, "status", NULL);
  cr_assert(bson_equal(&a_rest, &b_rest), "%s vs %s", first, again);
  bson_destroy(&a_rest);
  bson_destroy(&b_rest);
  bson_destroy(a);
  bson_destroy(b);
  bson_free(first);
  bson_free(again);
}

Test(result, restatus_adds_missing_status) {
  const char *json = "{\"commandId\":\"c\"}";
  char *out = cqrs_result_restatus(json, strlen(json), 200, NULL);
  bson_t *doc = u_parse(out);
  cr_assert_eq(u_i64(doc, "status"), 200);
  cr_assert_str_eq(u_str(doc, "commandId"), "c");
  bson_destroy(doc);
  bson_free(out);
}

Test(result, restatus_not_json) {
  cr_assert_null(cqrs_result_restatus("nope", 4, 200, NULL));
  cr_assert_null(cqrs_result_restatus("[1]", 3, 200, NULL));
}

Test(result, status_reads_it) {
  cqrs_error_t err;
  cqrs_error_set(&err, CQRS_ERR_REFUSED, NULL, "exists");
  cqrs_result_t r = {.status = 422, .command_id = "c", .error = &err};
  char *json = cqrs_result_to_json(&r, NULL);
  int status = 0;
  cr_assert(cqrs_result_status(json, strlen(json), &status));
  cr_assert_eq(status, 422);
  bson_free(json);
}

Test(result, status_absent_or_mistyped) {
  int status = 0;
  const char *none = "{\"commandId\":\"c\"}";
  cr_assert_not(cqrs_result_status(none, strlen(none), &status));
  const char *str = "{\"status\":\"201\"}";
  cr_assert_not(cqrs_result_status(str, strlen(str), &status));
  cr_assert_not(cqrs_result_status("garbage", 7, &status));
}

Test(result, reply_partition_names_a_partition_below_the_count) {
  cr_assert_eq(cqrs_result_reply_partition("0", 1, 6), 0);
  cr_assert_eq(cqrs_result_reply_partition("5", 1, 6), 5);
  cr_assert_eq(cqrs_result_reply_partition("12", 2, 13), 12);
  cr_assert_eq(cqrs_result_reply_partition("3xyz", 1, 6), 3, "only len bytes are read");
  cr_assert_eq(cqrs_result_reply_partition("2147483646", 10, 2147483647), 2147483646);
}

Test(result, reply_partition_absent_or_invalid_is_the_default_partitioner) {
  cr_assert_eq(cqrs_result_reply_partition(NULL, 0, 6), -1, "no header");
  cr_assert_eq(cqrs_result_reply_partition("", 0, 6), -1, "empty");
  cr_assert_eq(cqrs_result_reply_partition("6", 1, 6), -1, "not below the count");
  cr_assert_eq(cqrs_result_reply_partition("1", 1, 0), -1, "a topic without partitions");
  cr_assert_eq(cqrs_result_reply_partition("-1", 2, 6), -1, "a sign");
  cr_assert_eq(cqrs_result_reply_partition("+1", 2, 6), -1);
  cr_assert_eq(cqrs_result_reply_partition(" 1", 2, 6), -1, "a space");
  cr_assert_eq(cqrs_result_reply_partition("1 ", 2, 6), -1);
  cr_assert_eq(cqrs_result_reply_partition("0x1", 3, 6), -1, "hex");
  cr_assert_eq(cqrs_result_reply_partition("1\0", 2, 6), -1, "a NUL inside");
  cr_assert_eq(cqrs_result_reply_partition("99999999999", 11, 2147483647), -1, "over int32");
  cr_assert_eq(cqrs_result_reply_partition("4294967297", 10, 2147483647), -1, "wraps in 32 bits");
}
