/* JSON log lines (cqrs/log.h): what one call writes to stderr, captured from
 * fd 2: one JSON object a line with time, level, service, message and the
 * caller's pairs in order; escaping; the level filter; level names. */
#include "cqrs/log.h"
#include "unit.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The line out must be exactly one: ends with its only newline. */
static void expect_one_line(const char *out) {
  size_t len = strlen(out);
  cr_assert_gt(len, 0, "nothing was written");
  cr_expect_eq(out[len - 1], '\n', "a line ends with a newline: %s", out);
  cr_expect_eq(strchr(out, '\n'), out + len - 1, "more than one line: %s", out);
}

static const cqrs_log_t info = {.service = "command-svc", .level = CQRS_LOG_INFO};

Test(log, a_line_is_one_json_object_with_time_level_service_message_and_the_pairs_in_order) {
  u_capture_start();
  cqrs_log_warn(&info, "command forwarded", "commandId", "c-1", "aggregateId", "a-1", NULL);
  char *out = u_capture_end();
  expect_one_line(out);
  bson_t *doc = u_parse(out);
  cr_expect_eq(u_count(doc), 6);
  cr_expect_str_eq(u_str(doc, "level"), "warn");
  cr_expect_str_eq(u_str(doc, "service"), "command-svc");
  cr_expect_str_eq(u_str(doc, "message"), "command forwarded");
  cr_expect_str_eq(u_str(doc, "commandId"), "c-1");
  cr_expect_str_eq(u_str(doc, "aggregateId"), "a-1");
  regex_t re;
  cr_assert_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$", REG_EXTENDED), 0);
  cr_expect_eq(regexec(&re, u_str(doc, "time"), 0, NULL, 0), 0, "time %s", u_str(doc, "time"));
  regfree(&re);
  /* Fixed members first, then the caller's pairs as given. */
  const char *keys[] = {"time", "level", "service", "message", "commandId", "aggregateId"};
  bson_iter_t it;
  bson_iter_init(&it, doc);
  for (size_t i = 0; bson_iter_next(&it); i++) cr_expect_str_eq(bson_iter_key(&it), keys[i]);
  bson_destroy(doc);
  free(out);
}

Test(log, a_null_value_is_json_null) {
  u_capture_start();
  cqrs_log_info(&info, "m", "traceparent", NULL, "after", "x", NULL);
  char *out = u_capture_end();
  bson_t *doc = u_parse(out);
  cr_expect(u_is_null(doc, "traceparent"));
  cr_expect_str_eq(u_str(doc, "after"), "x", "a NULL value does not end the pairs");
  bson_destroy(doc);
  free(out);
}

Test(log, quotes_backslashes_and_control_characters_are_escaped_and_stay_on_one_line) {
  /* What a Kafka error string or a client's field may hold. */
  const char *nasty = "say \"hi\"\\ \n next line\r\t\x01\x1f end ü";
  u_capture_start();
  cqrs_log_error(&info, nasty, "key \"q\"\n", nasty, NULL);
  char *out = u_capture_end();
  expect_one_line(out);
  cr_expect(strstr(out, "\\u0001") != NULL && strstr(out, "\\u001f") != NULL, "%s", out);
  cr_expect(strstr(out, "\\n next") != NULL && strstr(out, "\\\"hi\\\"") != NULL, "%s", out);
  bson_t *doc = u_parse(out);
  cr_expect_str_eq(u_str(doc, "message"), nasty, "the text survives the round trip");
  cr_expect_str_eq(u_str(doc, "key \"q\"\n"), nasty);
  bson_destroy(doc);
  free(out);
}

Test(log, lines_below_the_level_are_not_written) {
  const cqrs_log_t warn = {.service = "s", .level = CQRS_LOG_WARN};
  u_capture_start();
  cqrs_log_debug(&warn, "debug", NULL);
  cqrs_log_info(&warn, "info", NULL);
  cqrs_log_warn(&warn, "warn", NULL);
  cqrs_log_error(&warn, "error", NULL);
  char *out = u_capture_end();
  cr_expect(strstr(out, "\"debug\"") == NULL && strstr(out, "\"message\":\"info\"") == NULL, "%s", out);
  cr_expect(strstr(out, "\"message\":\"warn\"") != NULL, "%s", out);
  cr_expect(strstr(out, "\"message\":\"error\"") != NULL, "%s", out);
  free(out);
}

Test(log, a_null_log_writes_every_level_as_service_cqrs) {
  u_capture_start();
  cqrs_log_debug(NULL, "early", NULL);
  char *out = u_capture_end();
  bson_t *doc = u_parse(out);
  cr_expect_str_eq(u_str(doc, "service"), "cqrs");
  cr_expect_str_eq(u_str(doc, "level"), "debug");
  bson_destroy(doc);
  free(out);
}

Test(log, level_names_parse_in_any_case_and_nothing_else_does) {
  cqrs_log_level_t l = CQRS_LOG_ERROR;
  cr_expect(cqrs_log_level_parse("debug", &l) && l == CQRS_LOG_DEBUG);
  cr_expect(cqrs_log_level_parse("INFO", &l) && l == CQRS_LOG_INFO);
  cr_expect(cqrs_log_level_parse("Warn", &l) && l == CQRS_LOG_WARN);
  cr_expect(cqrs_log_level_parse("error", &l) && l == CQRS_LOG_ERROR);
  l = CQRS_LOG_INFO;
  cr_expect_not(cqrs_log_level_parse("warning", &l));
  cr_expect_not(cqrs_log_level_parse("", &l));
  cr_expect_not(cqrs_log_level_parse(NULL, &l));
  cr_expect_eq(l, CQRS_LOG_INFO, "a refused name leaves out alone");
}
