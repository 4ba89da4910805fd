/* Restore under faults, on a Kafka broker of the test's own (own_stack.h),
 * never the shared one: command-svc restoring a few thousand aggregates
 *
 *   1. loses its broker mid-restore: it says so, retries, and is ready with
 *      every aggregate once the broker is back;
 *   2. gets SIGTERM mid-restore: it exits within SHUTDOWN_GRACE_MS;
 *   3. loses its broker for longer than RESTORE_TIMEOUT_MS: it exits non-zero
 *      with a clear line instead of hanging.
 *
 * The restore is made slow on purpose (one record per batch, one batch per
 * fetch) so that it is still under way when the fault hits. Long version only
 * (FAULTS_LONG=1, make test-faults): a broker of its own starts in 20-60 s. */
#include "load.h"
#include "own_stack.h"
#include "testkit.h"

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGGREGATES 6000
#define GRACE_MS 5000          /* SHUTDOWN_GRACE_MS given to command-svc */
#define SHORT_RESTORE_MS 4000  /* RESTORE_TIMEOUT_MS of the third case */
#define AWAIT_MS 120000        /* a condition not met within this fails the test */

static tk_env_t env;
static own_broker_t broker;
static pid_t svc;

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void teardown(void) {
  if (svc > 0) tk_stop(svc, SIGKILL);
  if (broker.pid > 0) tk_stop(broker.pid, SIGKILL);
}

TestSuite(restore_faults, .fini = teardown, .timeout = 900);

static long file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (long)sb.st_size : 0;
}

/* True when log, from byte from on, has a line holding every one of the
 * NULL-terminated strings; *line (may be NULL) gets a copy of it (free). */
static bool log_has(const char *log, long from, char **line, ...) {
  FILE *f = fopen(log, "r");
  if (!f) return false;
  fseek(f, from, SEEK_SET);
  char buf[8192];
  bool found = false;
  while (!found && fgets(buf, sizeof buf, f)) {
    va_list ap;
    va_start(ap, line);
    found = true;
    for (const char *s; found && (s = va_arg(ap, const char *)) != NULL;) found = strstr(buf, s) != NULL;
    va_end(ap);
  }
  fclose(f);
  if (found && line) *line = strdup(buf);
  return found;
}

#define AWAIT_LOG(log, from, what, ...)                                                                    \
  do {                                                                                                     \
    int64_t end_ = load_now_ms() + AWAIT_MS;                                                               \
    while (!log_has(log, from, NULL, __VA_ARGS__, NULL)) {                                                 \
      cr_assert(load_now_ms() < end_, "command-svc did not log %s within %d ms; see %s", what, AWAIT_MS, log); \
      pause_ms(20);                                                                                        \
    }                                                                                                      \
  } while (0)

/* AGGREGATES user aggregates into aggregate-state, each record a batch of
 * its own (batch.num.messages=1), as command-svc would write them. */
static void seed(void) {
  char errstr[512], topic[128];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", env.brokers, errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "batch.num.messages", "1", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "partitioner", "murmur2_random", errstr, sizeof errstr);
  rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  cr_assert_not_null(p, "%s", errstr);
  tk_topic(&env, "aggregate-state", topic);
  for (int i = 0; i < AGGREGATES; i++) {
    char key[96], json[512];
    snprintf(key, sizeof key, "default/restore-%d", i);
    int len = snprintf(json, sizeof json,
                       "{\"tenant\":\"default\",\"aggregateId\":\"restore-%d\",\"aggregateType\":\"user\",\"version\":1,"
                       "\"state\":{\"userId\":\"restore-%d\",\"email\":\"r%d@example.com\",\"name\":\"Restore %d\","
                       "\"createdAt\":\"2026-12-01T00:00:00.000Z\",\"updatedAt\":\"2026-12-01T00:00:00.000Z\"},"
                       "\"recent\":[]}",
                       i, i, i, i);
    while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                             RD_KAFKA_V_VALUE(json, (size_t)len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(p, 10);
  }
  cr_assert_eq(rd_kafka_flush(p, 60000), RD_KAFKA_RESP_ERR_NO_ERROR, "seeding aggregate-state did not finish");
  rd_kafka_destroy(p);
}

/* command-svc with a slow restore (one record batch per fetch) and extra
 * settings; *from gets where its log stood before it started. */
static pid_t spawn_slow(const char *restore_timeout, long *from, char log[512]) {
  static char timeout[64], grace[64];
  snprintf(timeout, sizeof timeout, "RESTORE_TIMEOUT_MS=%s", restore_timeout);
  snprintf(grace, sizeof grace, "SHUTDOWN_GRACE_MS=%d", GRACE_MS);
  const char *extra[] = {"KAFKA_MAX_PARTITION_FETCH_BYTES=1", timeout, grace, NULL};
  tk_log_path(&env, TK_COMMAND, log);
  *from = file_size(log);
  return tk_spawn(&env, TK_COMMAND, extra, log);
}

/* The broker gone at once, as in a crash: frozen first (no record more),
 * then killed (its connections reset). */
static void kill_broker(void) {
  kill(broker.pid, SIGSTOP);
  tk_stop(broker.pid, SIGKILL);
  broker.pid = 0;
}

/* Waits up to ms for pid to exit; its wait status, or -1 when it did not. */
static int exit_within(pid_t pid, int ms) {
  int status;
  for (int64_t end = load_now_ms() + ms; load_now_ms() < end; pause_ms(20))
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
  return -1;
}

Test(restore_faults, a_broker_lost_mid_restore_is_retried_sigterm_stops_it_and_a_deadline_ends_it) {
  if (!getenv("FAULTS_LONG") || strcmp(getenv("FAULTS_LONG"), "1") != 0)
    cr_skip_test("long version only (FAULTS_LONG=1, make test-faults): it starts a broker of its own");
  tk_env_init(&env);
  broker.port = tk_free_port();
  broker.controller_port = tk_free_port();
  snprintf(broker.dir, sizeof broker.dir, "%s/%skafka", CQRS_TEST_LOG_DIR, env.prefix);
  snprintf(broker.log, sizeof broker.log, "%s/%skafka.log", CQRS_TEST_LOG_DIR, env.prefix);
  own_broker_start(&broker);
  snprintf(env.brokers, sizeof env.brokers, "127.0.0.1:%d", broker.port);
  svc = tk_start(&env, TK_COMMAND, NULL); /* makes the topics */
  tk_stop(svc, SIGTERM);
  svc = 0;
  seed();

  /* 1. The broker lost mid-restore, back after the retry is logged. */
  char log[512], *line = NULL;
  long from;
  svc = spawn_slow("120000", &from, log);
  AWAIT_LOG(log, from, "the restore's start", "\"restoring\"", "aggregate-state");
  AWAIT_LOG(log, from, "that it listens", "\"listening\""); /* its start is over: only the restore is left */
  kill_broker();
  AWAIT_LOG(log, from, "a retry", "\"level\":\"warn\"", "restoring: ", "timeLeftMs");
  cr_assert(log_has(log, from, &line, "\"level\":\"warn\"", "restoring: ", "timeLeftMs", NULL));
  fprintf(stderr, "restore_faults: %s", line);
  free(line);
  own_broker_start(&broker);
  tk_await_ready(&env, TK_COMMAND, svc, log);
  AWAIT_LOG(log, from, "the restore's end", "\"partitions assigned and restored\"");
  char want[64];
  snprintf(want, sizeof want, "\"aggregates\":\"%d\"", AGGREGATES);
  cr_expect(log_has(log, from, NULL, "\"partitions assigned and restored\"", want, NULL),
            "a restore resumed after the outage should hold all %d aggregates; see %s", AGGREGATES, log);
  char *body = tk_command(&env, 201, "{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"after-outage\","
                                     "\"aggregateId\":\"restore-7\",\"expectedVersion\":1,\"changes\":{\"name\":\"Back\"}}");
  cr_expect_eq(tk_json_int(body, "version"), 2, "%s", body);
  free(body);
  tk_stop(svc, SIGTERM);
  svc = 0;

  /* 2. SIGTERM mid-restore: out within SHUTDOWN_GRACE_MS, not as a failure. */
  svc = spawn_slow("120000", &from, log);
  AWAIT_LOG(log, from, "the restore's start", "\"restoring\"", "aggregate-state");
  AWAIT_LOG(log, from, "that it listens", "\"listening\""); /* its start is over: only the restore is left */
  int64_t t0 = load_now_ms();
  kill(svc, SIGTERM);
  int status = exit_within(svc, GRACE_MS);
  int64_t took = load_now_ms() - t0;
  if (status != -1) svc = 0;
  cr_assert_neq(status, -1, "command-svc did not exit within SHUTDOWN_GRACE_MS (%d ms) of SIGTERM mid-restore; see %s",
                GRACE_MS, log);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d after SIGTERM; see %s", status, log);
  cr_expect(log_has(log, from, NULL, "\"restore interrupted: stopping\"", NULL),
            "SIGTERM did not land mid-restore; see %s", log);
  fprintf(stderr, "restore_faults: SIGTERM mid-restore: exited after %lld ms\n", (long long)took);

  /* 3. The broker gone past RESTORE_TIMEOUT_MS: a clear line, exit 1. */
  char timeout[16];
  snprintf(timeout, sizeof timeout, "%d", SHORT_RESTORE_MS);
  svc = spawn_slow(timeout, &from, log);
  AWAIT_LOG(log, from, "the restore's start", "\"restoring\"", "aggregate-state");
  AWAIT_LOG(log, from, "that it listens", "\"listening\""); /* its start is over: only the restore is left */
  kill_broker();
  t0 = load_now_ms();
  status = exit_within(svc, SHORT_RESTORE_MS + GRACE_MS + 5000);
  took = load_now_ms() - t0;
  if (status != -1) svc = 0;
  cr_assert_neq(status, -1, "command-svc hangs past RESTORE_TIMEOUT_MS with its broker gone; see %s", log);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) != 0, "exit status %d; see %s", status, log);
  cr_expect(log_has(log, from, &line, "not restored within RESTORE_TIMEOUT_MS", NULL), "no clear line in %s", log);
  if (line) fprintf(stderr, "restore_faults: %s", line);
  free(line);
  fprintf(stderr, "restore_faults: broker gone, RESTORE_TIMEOUT_MS=%d: exited %d after %lld ms\n", SHORT_RESTORE_MS,
          WIFEXITED(status) ? WEXITSTATUS(status) : -1, (long long)took);
}
