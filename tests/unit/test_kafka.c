/* Kafka helpers (cqrs/kafka.h) without a broker: how configuration, group
 * names and operator overrides map to librdkafka properties (read back from
 * the client), that callbacks get the caller's ctx and librdkafka's log lines
 * reach the caller's log through the library's own context (freed with the
 * conf or the client: LeakSanitizer checks), headers, and error mapping.
 * The bootstrap address is a closed local port: nothing answers, nothing
 * leaves the machine. */
#include "cqrs/kafka.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define NOBODY "127.0.0.1:1"

/* librdkafka's own log level 0: its connection-refused lines stay out of the
 * test output (the log test turns them back on). */
static cqrs_kv_t silent[] = {{"log_level", "0"}};
static cqrs_config_t cfg = {.kafka_brokers = NOBODY, .topic_prefix = "t19.", .kafka_props = silent, .n_kafka_props = 1};
static cqrs_log_t quiet = {.service = "test", .level = CQRS_LOG_ERROR};
static cqrs_error_t err;

static void setup(void) { cqrs_error_clear(&err); }

TestSuite(kafka, .init = setup);

/* A property of a client's final configuration, in buf. */
static const char *client_prop(rd_kafka_t *rk, const char *name, char *buf, size_t size) {
  cr_assert_eq(rd_kafka_conf_get(rd_kafka_conf(rk), name, buf, &size), RD_KAFKA_CONF_OK, "no property %s", name);
  return buf;
}

static const char *conf_prop(rd_kafka_conf_t *conf, const char *name, char *buf, size_t size) {
  cr_assert_eq(rd_kafka_conf_get(conf, name, buf, &size), RD_KAFKA_CONF_OK, "no property %s", name);
  return buf;
}

/* ---- configuration ---- */

Test(kafka, conf_new_sets_the_brokers_then_the_pairs_then_the_operators_properties) {
  cqrs_kv_t props[] = {{"linger.ms", "7"}, {"client.id", "from-operator"}, {"log_level", "0"}};
  cfg.kafka_props = props;
  cfg.n_kafka_props = 3;
  rd_kafka_conf_t *conf = cqrs_kafka_conf_new(&cfg, &quiet, &err, "linger.ms", "5", "acks", "1", NULL);
  cr_assert_not_null(conf, "%s", err.message);
  char v[256];
  cr_expect_str_eq(conf_prop(conf, "bootstrap.servers", v, sizeof v), NOBODY);
  cr_expect_str_eq(conf_prop(conf, "acks", v, sizeof v), "1");
  cr_expect_str_eq(conf_prop(conf, "linger.ms", v, sizeof v), "7", "KAFKA_* must win over our defaults");
  cr_expect_str_eq(conf_prop(conf, "client.id", v, sizeof v), "from-operator");
  rd_kafka_conf_destroy(conf); /* frees the library's context too: LeakSanitizer would say otherwise */
  cfg.kafka_props = silent;
  cfg.n_kafka_props = 1;
}

Test(kafka, conf_new_refuses_a_bad_property_naming_it) {
  cr_expect_null(cqrs_kafka_conf_new(&cfg, &quiet, &err, "linger.ms", "soon", NULL));
  cr_expect_eq(err.code, CQRS_ERR_INVALID);
  cr_expect_str_eq(err.field, "linger.ms");
  cr_expect(strstr(err.message, "linger.ms") != NULL, "%s", err.message);

  cqrs_error_clear(&err);
  cr_expect_null(cqrs_kafka_conf_new(&cfg, &quiet, &err, "no.such.property", "1", NULL));
  cr_expect_str_eq(err.field, "no.such.property");
}

Test(kafka, an_operators_bad_property_is_refused_too) {
  cqrs_kv_t props[] = {{"session.timeout.ms", "forever"}};
  cfg.kafka_props = props;
  cfg.n_kafka_props = 1;
  cr_expect_null(cqrs_kafka_consumer_new(&cfg, &quiet, "g", NULL, NULL, &err, NULL));
  cr_expect_str_eq(err.field, "session.timeout.ms");
  cr_expect_null(cqrs_kafka_producer_new(&cfg, &quiet, NULL, NULL, NULL, NULL), "err may be NULL");
  cfg.kafka_props = silent;
  cfg.n_kafka_props = 1;
}

/* ---- consumers: group naming and the defaults every consumer shares ---- */

Test(kafka, a_consumer_is_in_group_prefix_plus_suffix_reads_committed_and_does_not_auto_commit) {
  rd_kafka_t *rk = cqrs_kafka_consumer_new(&cfg, &quiet, "command-svc", NULL, NULL, &err, "session.timeout.ms",
                                           "10000", NULL);
  cr_assert_not_null(rk, "%s", err.message);
  char v[256];
  cr_expect_str_eq(client_prop(rk, "group.id", v, sizeof v), "t19.command-svc");
  cr_expect_str_eq(client_prop(rk, "isolation.level", v, sizeof v), "read_committed");
  cr_expect_str_eq(client_prop(rk, "enable.auto.commit", v, sizeof v), "false");
  cr_expect_str_eq(client_prop(rk, "session.timeout.ms", v, sizeof v), "10000");
  cr_expect_str_eq(client_prop(rk, "bootstrap.servers", v, sizeof v), NOBODY);
  cr_expect_eq(rd_kafka_type(rk), RD_KAFKA_CONSUMER);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

Test(kafka, the_extra_settings_and_then_the_operator_override_the_consumer_defaults) {
  cqrs_kv_t props[] = {{"isolation.level", "read_uncommitted"}, {"log_level", "0"}};
  cfg.kafka_props = props;
  cfg.n_kafka_props = 2;
  cfg.topic_prefix = "";
  rd_kafka_t *rk = cqrs_kafka_consumer_new(&cfg, &quiet, "projector-x-rebuild", NULL, NULL, &err,
                                           "enable.auto.commit", "true", NULL);
  cr_assert_not_null(rk, "%s", err.message);
  char v[256];
  cr_expect_str_eq(client_prop(rk, "group.id", v, sizeof v), "projector-x-rebuild", "no prefix: the suffix alone");
  cr_expect_str_eq(client_prop(rk, "enable.auto.commit", v, sizeof v), "true");
  cr_expect_str_eq(client_prop(rk, "isolation.level", v, sizeof v), "read_uncommitted");
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  cfg.kafka_props = silent;
  cfg.n_kafka_props = 1;
  cfg.topic_prefix = "t19.";
}

Test(kafka, a_consumer_with_a_bad_extra_setting_is_refused_naming_it) {
  cr_expect_null(cqrs_kafka_consumer_new(&cfg, &quiet, "g", NULL, NULL, &err, "auto.offset.reset", "sideways", NULL));
  cr_expect_eq(err.code, CQRS_ERR_INVALID);
  cr_expect_str_eq(err.field, "auto.offset.reset");
}

/* ---- producers ---- */

Test(kafka, a_producer_uses_the_java_clients_partitioner_and_the_given_settings) {
  rd_kafka_t *rk = cqrs_kafka_producer_new(&cfg, &quiet, NULL, NULL, &err, "linger.ms", "3", NULL);
  cr_assert_not_null(rk, "%s", err.message);
  char v[256];
  cr_expect_str_eq(client_prop(rk, "partitioner", v, sizeof v), "murmur2_random");
  cr_expect_str_eq(client_prop(rk, "linger.ms", v, sizeof v), "3");
  cr_expect_eq(rd_kafka_type(rk), RD_KAFKA_PRODUCER);
  rd_kafka_destroy(rk);
}

Test(kafka, a_producer_librdkafka_refuses_is_a_fatal_error_and_leaks_nothing) {
  /* Each property is valid; together rd_kafka_new refuses them. */
  cr_expect_null(cqrs_kafka_producer_new(&cfg, &quiet, NULL, NULL, &err, "transactional.id", "x",
                                         "enable.idempotence", "false", NULL));
  cr_expect_eq(err.code, CQRS_ERR_FATAL);
  cr_expect(strstr(err.message, "cannot create Kafka client") != NULL, "%s", err.message);
}

/* ---- callbacks: the caller's ctx, the library's log context ---- */

typedef struct {
  int calls;
  rd_kafka_resp_err_t err;
  size_t n_headers;
  char names[4][32];
  char values[4][32];
  size_t first_only; /* cqrs_kafka_headers with max 1 */
} delivery_t;

static void delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *ctx) {
  (void)rk;
  delivery_t *d = ctx;
  d->calls++;
  d->err = m->err;
  cqrs_header_t h[4];
  d->n_headers = cqrs_kafka_headers((rd_kafka_message_t *)m, h, 4);
  for (size_t i = 0; i < d->n_headers; i++) {
    snprintf(d->names[i], sizeof d->names[i], "%s", h[i].name);
    snprintf(d->values[i], sizeof d->values[i], "%.*s", (int)h[i].len, (const char *)h[i].value);
  }
  d->first_only = cqrs_kafka_headers((rd_kafka_message_t *)m, h, 1);
}

Test(kafka, delivery_reports_reach_the_callers_ctx_with_the_records_headers) {
  delivery_t d = {0};
  /* Nothing answers: the record times out (librdkafka checks once a second)
   * and its report comes back through the callback, headers and all. */
  rd_kafka_t *rk = cqrs_kafka_producer_new(&cfg, &quiet, delivery_cb, &d, &err, "message.timeout.ms", "10", NULL);
  cr_assert_not_null(rk, "%s", err.message);
  cqrs_header_t hdrs[] = {{"ce_type", "UserCreated", 11}, {"ce_id", "e-1", 3}};
  rd_kafka_resp_err_t e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("t19.events"), RD_KAFKA_V_VALUE("{}", 2),
                                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                            RD_KAFKA_V_HEADERS(cqrs_kafka_headers_new(hdrs, 2)), RD_KAFKA_V_END);
  cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_flush(rk, 5000);
  rd_kafka_destroy(rk);
  cr_assert_eq(d.calls, 1, "the delivery report did not reach the caller's ctx");
  cr_expect_eq(d.err, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
  cr_assert_eq(d.n_headers, 2);
  cr_expect_str_eq(d.names[0], "ce_type");
  cr_expect_str_eq(d.values[0], "UserCreated");
  cr_expect_str_eq(d.names[1], "ce_id");
  cr_expect_str_eq(d.values[1], "e-1");
  cr_expect_eq(d.first_only, 1, "max bounds what cqrs_kafka_headers returns");
}

Test(kafka, librdkafka_log_lines_go_to_a_copy_of_the_callers_log_as_json) {
  cqrs_log_t log = {.service = "kafka-test", .level = CQRS_LOG_DEBUG};
  cfg.n_kafka_props = 0;
  u_capture_start();
  rd_kafka_t *rk = cqrs_kafka_producer_new(&cfg, &log, NULL, NULL, &err, "debug", "generic", NULL);
  /* The client keeps its own copy: the caller may change or drop its log. */
  log.service = "changed";
  log.level = CQRS_LOG_ERROR;
  if (rk) rd_kafka_destroy(rk); /* logs while terminating */
  char *out = u_capture_end();
  cr_assert_not_null(rk, "%s", err.message);
  cfg.n_kafka_props = 1;
  size_t lines = 0, debug = 0;
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    if (!strstr(line, "\"component\":\"librdkafka\"")) continue;
    bson_t *doc = u_parse(line);
    cr_expect_str_eq(u_str(doc, "service"), "kafka-test", "%s", line);
    cr_expect(u_has(doc, "facility"), "%s", line);
    debug += strcmp(u_str(doc, "level"), "debug") == 0; /* librdkafka's level 7 */
    bson_destroy(doc);
    lines++;
  }
  cr_expect_gt(lines, 0, "no librdkafka line reached the log");
  cr_expect_gt(debug, 0, "debug=generic lines should come out at level debug");
  free(out);
}

/* ---- headers ---- */

Test(kafka, headers_new_keeps_order_and_binary_values) {
  cqrs_header_t hdrs[] = {{"a", "1", 1}, {"bin", "x\0y", 3}, {"a", "2", 1}};
  rd_kafka_headers_t *h = cqrs_kafka_headers_new(hdrs, 3);
  cr_assert_eq(rd_kafka_header_cnt(h), 3);
  for (size_t i = 0; i < 3; i++) {
    const char *name;
    const void *value;
    size_t len;
    cr_assert_eq(rd_kafka_header_get_all(h, i, &name, &value, &len), RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_expect_str_eq(name, hdrs[i].name);
    cr_expect_eq(len, hdrs[i].len);
    cr_expect_eq(memcmp(value, hdrs[i].value, len), 0);
  }
  rd_kafka_headers_destroy(h);

  h = cqrs_kafka_headers_new(NULL, 0);
  cr_expect_eq(rd_kafka_header_cnt(h), 0);
  rd_kafka_headers_destroy(h);
}

/* ---- errors ---- */

Test(kafka, check_maps_a_librdkafka_error_and_frees_it) {
  cr_expect(cqrs_kafka_check(NULL, "commit", &err));
  cr_expect_eq(err.code, CQRS_ERR_NONE);

  cr_expect_not(cqrs_kafka_check(rd_kafka_error_new(RD_KAFKA_RESP_ERR__TIMED_OUT, "no answer"), "commit", &err));
  cr_expect_eq(err.code, CQRS_ERR_UNAVAILABLE, "not fatal: retry or restart is the caller's call");
  cr_expect_not(err.retriable);
  cr_expect_str_eq(err.message, "commit: no answer");

  /* err may be NULL: the error is still freed (LeakSanitizer). */
  cr_expect_not(cqrs_kafka_check(rd_kafka_error_new(RD_KAFKA_RESP_ERR__FENCED, "fenced"), "commit", NULL));
}

Test(kafka, probes_of_a_cluster_that_does_not_answer_fail_within_their_timeout) {
  rd_kafka_t *rk = cqrs_kafka_producer_new(&cfg, &quiet, NULL, NULL, &err, NULL);
  cr_assert_not_null(rk, "%s", err.message);
  cr_expect_not(cqrs_kafka_ping(rk, 200));
  cr_expect_eq(cqrs_kafka_partition_count(rk, "t19.events", 200, &err), -1);
  cr_expect_eq(err.code, CQRS_ERR_UNAVAILABLE);
  cr_expect(strstr(err.message, "t19.events") != NULL, "%s", err.message);
  rd_kafka_destroy(rk);
}

Test(kafka, poll_batch_of_a_consumer_with_nothing_assigned_is_empty) {
  rd_kafka_t *rk = cqrs_kafka_consumer_new(&cfg, &quiet, "g", NULL, NULL, &err, NULL);
  cr_assert_not_null(rk, "%s", err.message);
  rd_kafka_message_t *msgs[4];
  cr_expect_eq(cqrs_kafka_poll_batch(rk, msgs, 4, 0, &quiet), 0);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}
