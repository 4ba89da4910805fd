/* End to end, projector-svc's write path on the real stack: a batch folds
 * each document's events into one write; a redelivery that interleaves
 * applied and new events still gives the fold of the log; a store that stops
 * and comes back under load loses nothing, and query-svc answers 503 (not a
 * hang) while it is gone. */
#include "testkit.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define VISIBLE_MS 60000

static tk_env_t env;
static pid_t pids[3];

static void teardown(void) { tk_stop_all(pids); }

TestSuite(projector, .fini = teardown, .timeout = 600);

static char *command(int want, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *command(int want, const char *fmt, ...) {
  char json[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(json, sizeof json, fmt, ap);
  va_end(ap);
  tk_response_t r;
  tk_http("POST", env.command_port, "/v1/commands", json, strlen(json), &r);
  cr_assert_eq(r.status, want, "%s answered %d: %s", json, r.status, r.body ? r.body : "");
  char *body = strdup(r.body);
  tk_response_cleanup(&r);
  return body;
}

static char *create_user(const char *tag) {
  char *b = command(201, "{\"commandType\":\"CreateUser\",\"email\":\"%s.%s@example.com\",\"name\":\"v1\"}", tag,
                    env.db);
  char *id = tk_json_string(b, "aggregateId");
  cr_assert_not_null(id, "%s", b);
  free(b);
  return id;
}

/* Renames user id to "v<version>" (each rename is one event). */
static void rename_user(const char *id, int version) {
  free(command(201, "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"changes\":{\"name\":\"v%d\"}}",
               id, version));
}

/* A counter or gauge from a service's /metrics: name{labels} value; 0 when
 * absent (a counter not incremented yet). */
static double metric(int port, const char *series) {
  tk_response_t r;
  tk_http("GET", port, "/metrics", NULL, 0, &r);
  cr_assert_eq(r.status, 200, "/metrics answered %d", r.status);
  double v = 0;
  for (char *line = r.body; line && *line;) {
    char *nl = strchr(line, '\n');
    size_t n = strlen(series);
    if (strncmp(line, series, n) == 0 && line[n] == ' ') v = strtod(line + n + 1, NULL);
    line = nl ? nl + 1 : NULL;
  }
  tk_response_cleanup(&r);
  return v;
}

/* Waits (bounded) until metric series reaches at least want; returns its value:
 * the counters move after the store acknowledged and offsets are committed. */
static double await_metric(int port, const char *series, double want) {
  double v = 0;
  for (int i = 0; i < 600 && (v = metric(port, series)) < want; i++) usleep(50 * 1000);
  return v;
}

typedef struct {
  const char *name;
  long version;
} want_t;

static bool has_version(const char *body, void *ctx) {
  want_t *w = ctx;
  char *name = tk_json_string(body, "name");
  bool ok = tk_json_int(body, "version") == w->version && name && strcmp(name, w->name) == 0;
  free(name);
  return ok;
}

/* Waits until user id reads back at version with name "v<version>". */
static void await_user(const char *id, long version) {
  char path[256], name[32];
  snprintf(path, sizeof path, "/v1/users/%s", id);
  snprintf(name, sizeof name, "v%ld", version);
  want_t w = {name, version};
  tk_response_t r;
  bool ok = tk_await_get(env.query_port, path, 200, has_version, &w, VISIBLE_MS, &r);
  cr_assert(ok, "GET %s never reached version %ld as %s (last: %d %s)", path, version, name, r.status,
            r.body ? r.body : "");
  tk_response_cleanup(&r);
}

#define USER_LABELS "{projection=\"user_profiles\"}"

/* Ten events of one user, all in the log before the projector starts: they
 * arrive in one batch and reach the store as one document write. */
Test(projector, a_batch_folds_a_documents_events_into_one_write) {
  tk_env_init(&env);
  pids[TK_COMMAND] = tk_start(&env, TK_COMMAND, NULL);
  pids[TK_QUERY] = tk_start(&env, TK_QUERY, NULL);
  char *id = create_user("fold");
  for (int v = 2; v <= 10; v++) rename_user(id, v);
  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, NULL);
  await_user(id, 10);
  cr_assert_eq(await_metric(env.projector_port, "events_applied_total" USER_LABELS, 10), 10);
  cr_assert_eq(metric(env.projector_port, "store_documents_written_total" USER_LABELS), 1,
               "10 events of one document in one batch: one write");
  free(id);
}

/* Commits offset 0 on every partition of events for the projector's group:
 * the next projector reads everything again (the group must be empty). */
static void rewind_group(const char *projection) {
  char group[256], topic[128], errstr[512];
  snprintf(group, sizeof group, "%sprojector-%s", env.prefix, projection);
  tk_topic(&env, "events", topic);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", env.brokers, errstr, sizeof errstr), RD_KAFKA_CONF_OK);
  cr_assert_eq(rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr), RD_KAFKA_CONF_OK);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  cr_assert_not_null(rk, "%s", errstr);
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3);
  for (int p = 0; p < 3; p++) rd_kafka_topic_partition_list_add(l, topic, p)->offset = 0;
  rd_kafka_resp_err_t e = rd_kafka_commit(rk, l, 0);
  cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "rewinding %s: %s", group, rd_kafka_err2str(e));
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

/* The store holds a user at version 5 (applied, committed); the group is
 * rewound so versions 1..5 come again, and 6..9 are new: one batch mixes
 * both. Another user is created meanwhile. The result is the fold of the log. */
Test(projector, a_redelivery_mixing_applied_and_new_events_gives_the_fold_of_the_log) {
  tk_env_init(&env);
  tk_start_all(&env, pids);
  char *id = create_user("redeliver");
  for (int v = 2; v <= 5; v++) rename_user(id, v);
  await_user(id, 5);
  tk_stop(pids[TK_PROJECTOR], SIGTERM);
  pids[TK_PROJECTOR] = 0;
  rewind_group("user_profiles");
  for (int v = 6; v <= 9; v++) rename_user(id, v);
  char *other = create_user("other");
  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, NULL);
  await_user(id, 9);
  await_user(other, 1);
  /* all 10 events came again, and the batch did not write one per event */
  cr_assert_eq(await_metric(env.projector_port, "events_applied_total" USER_LABELS, 10), 10);
  double written = metric(env.projector_port, "store_documents_written_total" USER_LABELS);
  cr_assert(written >= 2 && written < 10, "documents written: %g", written);
  free(id);
  free(other);
}
