/* End to end: the User aggregate through command-svc, Kafka, projector-svc,
 * MongoDB and query-svc, against the real local stack. */
#include "accounting_env.h"
#include "testkit.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VISIBLE_MS 30000

static tk_env_t env;
static pid_t pids[3];

static void setup(void) {
  tk_env_init(&env);
  tk_start_all(&env, pids);
}

static void teardown(void) { tk_stop_all(pids); }

TestSuite(e2e, .init = setup, .fini = teardown, .timeout = 300);

/* The exactly-once accounting over everything the test did: versions
 * contiguous, results consistent with the log, read models equal to the fold
 * of the log (tests/support/accounting.h). */
static void assert_accounted(void) {
  tk_acct_report_t rep;
  tk_acct_check_env(&env, NULL, 0, NULL, &rep);
  tk_acct_assert_clean(&rep);
  cr_expect_gt(rep.events, 0, "the accounting saw no event");
  tk_acct_report_cleanup(&rep);
}

static void nap(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static tk_response_t post(const char *json) {
  tk_response_t r;
  tk_http("POST", env.command_port, "/v1/commands", json, strlen(json), &r);
  return r;
}

static bool version_at_least(const char *body, void *ctx) {
  return tk_json_int(body, "version") >= *(int64_t *)ctx;
}

/* Waits until the user's read document reaches version; returns the body. */
static char *await_user_version(const char *user_id, int64_t version) {
  char path[256];
  snprintf(path, sizeof path, "/v1/users/%s", user_id);
  tk_response_t r;
  bool ok = tk_await_get(env.query_port, path, 200, version_at_least, &version, VISIBLE_MS, &r);
  cr_assert(ok, "user %s did not reach version %lld within %d ms (last: %d %s)", user_id, (long long)version,
            VISIBLE_MS, r.status, r.body ? r.body : "");
  char *body = strdup(r.body);
  tk_response_cleanup(&r);
  return body;
}

static char *create_user(const char *email, const char *name, const char *command_id) {
  char json[512];
  snprintf(json, sizeof json, "{\"commandType\":\"CreateUser\",\"email\":\"%s\",\"name\":\"%s\",\"commandId\":\"%s\"}",
           email, name, command_id);
  tk_response_t r = post(json);
  cr_assert_eq(r.status, 201, "CreateUser answered %d: %s", r.status, r.body ? r.body : "");
  cr_assert_eq(tk_json_int(r.body, "version"), 1);
  char *id = tk_json_string(r.body, "aggregateId");
  cr_assert_not_null(id);
  tk_response_cleanup(&r);
  return id;
}

static tk_response_t update_name(const char *id, const char *name, const char *command_id) {
  char json[512];
  snprintf(json, sizeof json,
           "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"commandId\":\"%s\","
           "\"payload\":{\"changes\":{\"name\":\"%s\"}}}",
           id, command_id, name);
  return post(json);
}

Test(e2e, create_then_update_is_visible_by_id_and_email) {
  char email[160], cmd[128];
  snprintf(email, sizeof email, "john.%s@example.com", env.db);
  snprintf(cmd, sizeof cmd, "create-%s", env.db);
  char *id = create_user(email, "John Doe", cmd);

  char *doc = await_user_version(id, 1);
  char *got_email = tk_json_string(doc, "email"), *got_name = tk_json_string(doc, "name"),
       *got_id = tk_json_string(doc, "userId");
  cr_expect_str_eq(got_email, email);
  cr_expect_str_eq(got_name, "John Doe");
  cr_expect_str_eq(got_id, id);
  cr_expect_not_null(tk_json_string(doc, "createdAt"));
  free(got_email), free(got_name), free(got_id), free(doc);

  char path[256];
  snprintf(path, sizeof path, "/v1/users?email=%s", email);
  tk_response_t r;
  tk_http("GET", env.query_port, path, NULL, 0, &r);
  cr_assert_eq(r.status, 200, "by email: %d %s", r.status, r.body);
  char *by_email = tk_json_string(r.body, "userId");
  cr_expect_str_eq(by_email, id);
  free(by_email);
  tk_response_cleanup(&r);

  /* The same create again, same commandId: the first outcome, nothing new. */
  char json[512];
  snprintf(json, sizeof json, "{\"commandType\":\"CreateUser\",\"email\":\"%s\",\"name\":\"John Doe\",\"commandId\":\"%s\"}",
           email, cmd);
  r = post(json);
  cr_expect_eq(r.status, 200, "repeat answered %d: %s", r.status, r.body);
  char *again = tk_json_string(r.body, "aggregateId");
  cr_expect_str_eq(again, id);
  cr_expect_eq(tk_json_int(r.body, "version"), 1);
  free(again);
  tk_response_cleanup(&r);

  r = update_name(id, "John Q. Doe", "update-1");
  cr_assert_eq(r.status, 201, "update answered %d: %s", r.status, r.body);
  cr_expect_eq(tk_json_int(r.body, "version"), 2);
  char *type = tk_json_string(r.body, "eventType");
  cr_expect_str_eq(type, "UserProfileUpdated");
  free(type);
  tk_response_cleanup(&r);

  doc = await_user_version(id, 2);
  got_name = tk_json_string(doc, "name");
  cr_expect_str_eq(got_name, "John Q. Doe");
  cr_expect_eq(tk_json_int(doc, "version"), 2);
  free(got_name), free(doc);

  /* Nothing to change: 200, same version, no event. */
  r = update_name(id, "John Q. Doe", "update-2");
  cr_expect_eq(r.status, 200, "no-op update answered %d: %s", r.status, r.body);
  cr_expect_eq(tk_json_int(r.body, "version"), 2);
  cr_expect(tk_json_is_null(r.body, "eventId"));
  tk_response_cleanup(&r);
  free(id);
  assert_accounted();
}

static void expect_error(const char *body, size_t len, int status, const char *field) {
  tk_response_t r;
  tk_http("POST", env.command_port, "/v1/commands", body, len, &r);
  cr_expect_eq(r.status, status, "%.60s... answered %d: %s", body, r.status, r.body ? r.body : "");
  char *err = tk_json_string(r.body, "error");
  cr_expect_not_null(err, "no error message in %s", r.body);
  free(err);
  if (field) {
    char *f = tk_json_string(r.body, "field");
    cr_expect(f && strcmp(f, field) == 0, "expected field %s in %s", field, r.body);
    free(f);
  }
  tk_response_cleanup(&r);
}

#define EXPECT_ERROR(json, status, field) expect_error(json, strlen(json), status, field)

Test(e2e, bad_input_gets_a_clear_4xx_and_the_services_keep_running) {
  EXPECT_ERROR("{not json", 400, NULL);
  EXPECT_ERROR("[1,2]", 400, NULL);
  EXPECT_ERROR("{\"email\":\"a@b.co\",\"name\":\"A\"}", 400, "commandType");
  EXPECT_ERROR("{\"commandType\":\"LaunchRocket\"}", 400, "commandType");
  EXPECT_ERROR("{\"commandType\":\"CreateUser\",\"name\":\"A\"}", 400, "email");
  EXPECT_ERROR("{\"commandType\":\"CreateUser\",\"email\":\"not-an-email\",\"name\":\"A\"}", 400, "email");
  EXPECT_ERROR("{\"commandType\":\"CreateUser\",\"email\":\"a@b.co\",\"name\":42}", 400, "name");
  EXPECT_ERROR("{\"commandType\":\"CreateUser\",\"email\":\"a@b.co\",\"name\":\"A\",\"expectedVersion\":\"x\"}", 400,
               "expectedVersion");
  EXPECT_ERROR("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"name\":\"B\"}}", 400, "aggregateId");
  EXPECT_ERROR("{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"x\"}", 400, "changes");

  size_t big = (1 << 20) + 100;
  char *huge = malloc(big);
  memset(huge, ' ', big);
  memcpy(huge, "{\"commandType\":\"CreateUser\",\"name\":\"", 37);
  huge[big - 2] = '"', huge[big - 1] = '}';
  expect_error(huge, big, 413, NULL);
  free(huge);

  EXPECT_ERROR("{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"no-such-user\",\"changes\":{\"name\":\"B\"}}",
               404, NULL);

  char email[160], cmd[128];
  snprintf(email, sizeof email, "ann.%s@example.com", env.db);
  snprintf(cmd, sizeof cmd, "create-ann-%s", env.db);
  char *id = create_user(email, "Ann", cmd);
  char json[512];
  snprintf(json, sizeof json,
           "{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"%s\",\"expectedVersion\":7,\"changes\":{\"name\":\"B\"}}",
           id);
  tk_response_t r = post(json);
  cr_expect_eq(r.status, 409, "stale expectedVersion answered %d: %s", r.status, r.body);
  cr_expect_eq(tk_json_int(r.body, "currentVersion"), 1);
  tk_response_cleanup(&r);
  snprintf(json, sizeof json, "{\"commandType\":\"CreateUser\",\"aggregateId\":\"%s\",\"email\":\"%s\",\"name\":\"X\"}",
           id, email);
  EXPECT_ERROR(json, 422, NULL);

  tk_http("GET", env.query_port, "/v1/users/no-such-user", NULL, 0, &r);
  cr_expect_eq(r.status, 404);
  tk_response_cleanup(&r);
  tk_http("GET", env.query_port, "/v1/users?mail=x", NULL, 0, &r);
  cr_expect_eq(r.status, 400);
  char *field = tk_json_string(r.body, "field");
  cr_expect_str_eq(field, "mail");
  free(field);
  tk_response_cleanup(&r);
  tk_http("GET", env.query_port, "/v1/users", NULL, 0, &r);
  cr_expect_eq(r.status, 400);
  tk_response_cleanup(&r);

  /* Still serving, and still deciding. */
  int ports[3] = {env.command_port, env.projector_port, env.query_port};
  for (int i = 0; i < 3; i++) {
    tk_http("GET", ports[i], "/readyz", NULL, 0, &r);
    cr_expect_eq(r.status, 200, "service on port %d not ready after bad input", ports[i]);
    tk_response_cleanup(&r);
  }
  r = update_name(id, "Ann B", "ann-update");
  cr_expect_eq(r.status, 201, "%d %s", r.status, r.body);
  tk_response_cleanup(&r);
  free(await_user_version(id, 2));
  free(id);
}

/* POSTs json (printf(fmt, ...)) and expects status with an error message
 * naming the problem (containing words). */
static void expect_refused(int status, const char *words, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void expect_refused(int status, const char *words, const char *fmt, ...) {
  char json[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(json, sizeof json, fmt, ap);
  va_end(ap);
  tk_response_t r = post(json);
  cr_expect_eq(r.status, status, "%s answered %d: %s", json, r.status, r.body ? r.body : "");
  char *err = tk_json_string(r.body, "error");
  cr_expect(err && strstr(err, words), "%s: the error should say \"%s\": %s", json, words, r.body ? r.body : "");
  free(err);
  tk_response_cleanup(&r);
}

/* Events in the log caused by command_id (ce_causationid). */
static size_t events_caused_by(const char *command_id) {
  char topic[128];
  size_t n, found = 0;
  tk_record_t *ev = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n);
  for (size_t i = 0; i < n; i++) found += ev[i].ce_causationid && strcmp(ev[i].ce_causationid, command_id) == 0;
  tk_records_free(ev, n);
  return found;
}

Test(e2e, orders_and_customers_answer_404_and_422_like_users) {
  /* 404: a command for an aggregate that does not exist */
  expect_refused(404, "order no-such-order does not exist",
                 "{\"commandType\":\"UpdateOrderStatus\",\"commandId\":\"o-404\",\"aggregateId\":\"no-such-order\","
                 "\"status\":\"Processing\"}");
  expect_refused(404, "customer no-such-customer does not exist",
                 "{\"commandType\":\"UpdateEmail\",\"commandId\":\"c-404\",\"aggregateId\":\"no-such-customer\","
                 "\"newEmail\":\"x@example.com\"}");
  expect_refused(404, "customer no-such-customer does not exist",
                 "{\"commandType\":\"SuspendCustomer\",\"commandId\":\"c-404b\",\"aggregateId\":\"no-such-customer\","
                 "\"reason\":\"r\"}");

  /* 422: the aggregate exists, the decider refuses */
  const char *order = "{\"commandType\":\"CreateOrder\",\"commandId\":\"%s\",\"aggregateId\":\"o-1\",\"userId\":\"u-1\","
                      "\"totalAmount\":2,\"currency\":\"EUR\",\"items\":[{\"product\":\"Ink\",\"quantity\":1,\"price\":2}]}";
  char json[512];
  snprintf(json, sizeof json, order, "o-create");
  free(tk_command(&env, 201, "%s", json));
  expect_refused(422, "order o-1 already exists", order, "o-create-again");
  expect_refused(422, "order status cannot change from Created to Delivered",
                 "{\"commandType\":\"UpdateOrderStatus\",\"commandId\":\"o-skip\",\"aggregateId\":\"o-1\","
                 "\"status\":\"Delivered\"}");
  const char *customer = "{\"commandType\":\"RegisterCustomer\",\"commandId\":\"%s\",\"aggregateId\":\"c-1\","
                         "\"email\":\"c1@example.com\",\"name\":\"C\"}";
  snprintf(json, sizeof json, customer, "c-register");
  free(tk_command(&env, 201, "%s", json));
  expect_refused(422, "customer c-1 already exists", customer, "c-register-again");
  free(tk_command(&env, 201, "{\"commandType\":\"SuspendCustomer\",\"commandId\":\"c-suspend\",\"aggregateId\":\"c-1\","
                             "\"reason\":\"unpaid\"}"));
  expect_refused(422, "not ACTIVE",
                 "{\"commandType\":\"UpdateEmail\",\"commandId\":\"c-email\",\"aggregateId\":\"c-1\","
                 "\"newEmail\":\"c2@example.com\"}");

  /* nothing refused was appended; what was accepted was, once */
  static const char *const refused[] = {"o-404", "c-404", "c-404b", "o-create-again", "o-skip", "c-register-again",
                                        "c-email"};
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
    cr_expect_eq(events_caused_by(refused[i]), 0, "the refused command %s appended", refused[i]);
  static const char *const accepted[] = {"o-create", "c-register", "c-suspend"};
  for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++)
    cr_expect_eq(events_caused_by(accepted[i]), 1, "%s", accepted[i]);
  /* and the order goes on as allowed */
  char *b = tk_command(&env, 201, "{\"commandType\":\"UpdateOrderStatus\",\"aggregateId\":\"o-1\",\"status\":\"Processing\"}");
  cr_expect_eq(tk_json_int(b, "version"), 2, "%s", b);
  free(b);
}

/* COMMAND_TIMEOUT_MS passes before the result (the lane holds its first
 * transaction open 3 s, COMMAND_TEST_HOLD_TXN): 503 with the documented JSON,
 * the command still applied once, and a retry with the same commandId gets
 * the first outcome. */
Test(e2e, a_command_past_COMMAND_TIMEOUT_MS_gets_503_and_its_retry_the_first_outcome) {
  tk_stop(pids[TK_COMMAND], SIGTERM);
  static const char *const slow[] = {"COMMAND_LANES=1", "COMMAND_TIMEOUT_MS=300", "COMMAND_TEST_HOLD_TXN=0:1:3000",
                                     NULL};
  pids[TK_COMMAND] = tk_start(&env, TK_COMMAND, slow);
  /* its replies group settled (until then it refuses commands at once, 503 "not ready") */
  for (int tries = 0; tk_metric(env.command_port, "command_reply_partitions") != 3 && tries < 300; tries++) nap(100);
  const char *json = "{\"commandType\":\"CreateUser\",\"commandId\":\"slow-1\",\"aggregateId\":\"u-slow\","
                     "\"email\":\"slow@example.com\",\"name\":\"Slow\"}";
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  tk_response_t r = post(json);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  cr_assert_eq(r.status, 503, "answered %d: %s", r.status, r.body ? r.body : "");
  cr_expect(ms >= 300 && ms < 3000, "the 503 came after %ld ms, not at the 300 ms deadline", ms);
  char *err = tk_json_string(r.body, "error");
  cr_expect(err && strstr(err, "no result within 300 ms") && strstr(err, "retry with the same commandId"),
            "the 503's body: %s", r.body ? r.body : "");
  free(err);
  tk_response_cleanup(&r);
  cr_expect_eq(tk_metric(env.command_port, "command_timeouts_total"), 1);

  /* the command was still applied: its outcome reaches command-results */
  char *first = tk_await_result(&env, "default/slow-1", 30000, NULL);
  cr_assert_not_null(first, "the timed-out command has no outcome on command-results");
  cr_expect_eq(tk_json_int(first, "status"), 201, "%s", first);
  char *first_event = tk_json_string(first, "eventId");
  cr_assert_not_null(first_event, "%s", first);

  /* the retry: a round trip past 300 ms on a loaded machine is another 503, retried too */
  r = post(json);
  for (int tries = 0; r.status == 503 && tries < 50; tries++) {
    tk_response_cleanup(&r);
    nap(100);
    r = post(json);
  }
  cr_expect_eq(r.status, 200, "the retry answered %d: %s", r.status, r.body ? r.body : "");
  char *again = tk_json_string(r.body, "eventId");
  cr_expect(again && strcmp(again, first_event) == 0, "the retry names another event: %s, first %s", r.body, first);
  cr_expect_eq(tk_json_int(r.body, "version"), 1, "%s", r.body);
  free(again), free(first_event), free(first);
  tk_response_cleanup(&r);
  cr_expect_eq(events_caused_by("slow-1"), 1);
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The "deadline" header of the commands record of command_id; 0 when none. */
static int64_t deadline_on_commands_topic(const char *command_id) {
  char topic[128], needle[160];
  snprintf(needle, sizeof needle, "\"commandId\":\"%s\"", command_id);
  size_t n;
  int64_t deadline = 0;
  tk_record_t *recs = tk_kafka_read_all(&env, tk_topic(&env, "commands", topic), &n);
  for (size_t i = 0; i < n; i++) {
    if (!recs[i].value || !strstr(recs[i].value, needle)) continue;
    for (size_t h = 0; h < recs[i].n_headers; h++)
      if (strcmp(recs[i].headers[h].name, "deadline") == 0) deadline = strtoll((const char *)recs[i].headers[h].value, NULL, 10);
  }
  tk_records_free(recs, n);
  return deadline;
}

/* A command record past its "deadline" header (a late copy: its HTTP client
 * was answered 503 and retried) is not decided: no event, no result, the
 * aggregate as if it never came; the next command on the same aggregate (a
 * deadline ahead) is decided on that state. The HTTP ingress puts its own
 * 503 moment there. */
Test(e2e, a_command_record_past_its_deadline_is_not_decided) {
  char topic[128], past[24], ahead[24];
  snprintf(past, sizeof past, "%lld", (long long)(wall_ms() - 1000));
  snprintf(ahead, sizeof ahead, "%lld", (long long)(wall_ms() + 600000));
  const char *late[] = {"deadline", past, NULL}, *timely[] = {"deadline", ahead, NULL};
  tk_topic(&env, "commands", topic);
  tk_kafka_produce(&env, topic, -1, "default/u-late", /* same key: same partition, in this order */
                   "{\"commandType\":\"CreateUser\",\"commandId\":\"late-1\",\"aggregateId\":\"u-late\","
                   "\"email\":\"late1@example.com\",\"name\":\"Late\"}",
                   late);
  tk_kafka_produce(&env, topic, -1, "default/u-late",
                   "{\"commandType\":\"CreateUser\",\"commandId\":\"late-2\",\"aggregateId\":\"u-late\","
                   "\"email\":\"late2@example.com\",\"name\":\"Timely\"}",
                   timely);
  char *second = tk_await_result(&env, "default/late-2", 30000, NULL);
  cr_assert_not_null(second, "the command in time has no result");
  cr_expect_eq(tk_json_int(second, "status"), 201, "decided on an aggregate the late one did not create: %s", second);
  cr_expect_eq(tk_json_int(second, "version"), 1, "%s", second);
  free(second);
  size_t results = 0;
  free(tk_await_result(&env, "default/late-1", 0, &results)); /* decided before late-2's, if at all */
  cr_expect_eq(results, 0, "the late command has a result");
  cr_expect_eq(events_caused_by("late-1"), 0, "the late command has an event");
  cr_expect_eq(events_caused_by("late-2"), 1);
  cr_expect_eq(tk_metric(env.command_port, "commands_expired_total"), 1);
  char *body = await_user_version("u-late", 1);
  char *name = tk_json_string(body, "name");
  cr_expect(name && strcmp(name, "Timely") == 0, "%s", body);
  free(name), free(body);

  /* the HTTP ingress gives every command its 503 moment (COMMAND_TIMEOUT_MS, 5 s by default) */
  int64_t before = wall_ms();
  free(create_user("http-deadline@example.com", "Http", "http-deadline"));
  int64_t after = wall_ms(), deadline = deadline_on_commands_topic("http-deadline");
  cr_expect(deadline >= before + 5000 && deadline <= after + 5000,
            "the HTTP command's deadline is %lld, not 5 s after it was sent (%lld..%lld)", (long long)deadline,
            (long long)before, (long long)after);
  assert_accounted();
}

/* A request read after its client gave up and closed the connection (here:
 * sent to a frozen command-svc, which reads it when woken) is not taken: the
 * client's retry with the same commandId is then the first to be decided
 * (201, not a repeat's 200), and it is the only one with an event. */
Test(e2e, a_command_whose_client_left_before_it_was_read_is_not_taken) {
  const char *json = "{\"commandType\":\"CreateUser\",\"commandId\":\"gone-1\",\"aggregateId\":\"u-gone\","
                     "\"email\":\"gone@example.com\",\"name\":\"Gone\"}";
  char request[1024];
  int len = snprintf(request, sizeof request,
                     "POST /v1/commands HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(json), json);
  cr_assert_eq(kill(pids[TK_COMMAND], SIGSTOP), 0);
  int fd = tk_connect("127.0.0.1", env.command_port, 5000);
  bool sent = fd >= 0 && write(fd, request, (size_t)len) == len;
  if (fd >= 0) close(fd); /* the client gives up */
  cr_assert_eq(kill(pids[TK_COMMAND], SIGCONT), 0);
  cr_assert(sent, "the request did not reach the frozen command-svc's socket");
  double gone = 0;
  for (int tries = 0; (gone = tk_metric(env.command_port, "commands_client_gone_total")) < 1 && tries < 600; tries++)
    nap(50);
  cr_assert_eq(gone, 1, "the woken command-svc did not see that the client had left");
  tk_response_t r = post(json);
  cr_expect_eq(r.status, 201, "the retry was not the first decision: %d %s", r.status, r.body ? r.body : "");
  tk_response_cleanup(&r);
  cr_expect_eq(events_caused_by("gone-1"), 1);
}

Test(e2e, a_service_restarted_mid_test_loses_nothing) {
  char email[160], cmd[128];
  snprintf(email, sizeof email, "rita.%s@example.com", env.db);
  snprintf(cmd, sizeof cmd, "create-rita-%s", env.db);
  char *id = create_user(email, "Rita", cmd);
  free(await_user_version(id, 1));

  /* The projector is down while the user changes. */
  int status = tk_stop(pids[TK_PROJECTOR], SIGTERM);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "projector-svc did not stop cleanly: %d", status);
  tk_response_t r = update_name(id, "Rita 2", "rita-2");
  cr_assert_eq(r.status, 201, "%d %s", r.status, r.body);
  tk_response_cleanup(&r);

  /* command-svc dies hard and comes back: its state comes back from
   * aggregate-state, so the next version is 3 and the old commandId is known. */
  tk_stop(pids[TK_COMMAND], SIGKILL);
  pids[TK_COMMAND] = tk_start(&env, TK_COMMAND, NULL);
  r = update_name(id, "Rita 2", "rita-2");
  cr_expect_eq(r.status, 200, "repeat after restart answered %d: %s", r.status, r.body);
  cr_expect_eq(tk_json_int(r.body, "version"), 2);
  tk_response_cleanup(&r);
  r = update_name(id, "Rita 3", "rita-3");
  cr_assert_eq(r.status, 201, "%d %s", r.status, r.body);
  cr_expect_eq(tk_json_int(r.body, "version"), 3);
  tk_response_cleanup(&r);

  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, NULL);
  char *doc = await_user_version(id, 3);
  char *name = tk_json_string(doc, "name");
  cr_expect_str_eq(name, "Rita 3");
  free(name), free(doc);

  /* query-svc holds nothing: a restart answers the same. */
  status = tk_stop(pids[TK_QUERY], SIGTERM);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "query-svc did not stop cleanly: %d", status);
  pids[TK_QUERY] = tk_start(&env, TK_QUERY, NULL);
  doc = await_user_version(id, 3);
  cr_expect_eq(tk_json_int(doc, "version"), 3);
  free(doc);

  /* SIGTERM: command-svc finishes the batch in hand, leaves its group and
   * exits 0; a new instance carries on from the committed state. */
  status = tk_stop(pids[TK_COMMAND], SIGTERM);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "command-svc did not stop cleanly: %d", status);
  pids[TK_COMMAND] = tk_start(&env, TK_COMMAND, NULL);
  r = update_name(id, "Rita 4", "rita-4");
  cr_expect_eq(r.status, 201, "%d %s", r.status, r.body);
  cr_expect_eq(tk_json_int(r.body, "version"), 4);
  tk_response_cleanup(&r);
  free(id);
  assert_accounted();
}

Test(e2e, a_w3c_traceparent_from_http_travels_with_the_event_and_the_result) {
  const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  char json[256], cmd[96];
  snprintf(cmd, sizeof cmd, "trace-%s", env.db);
  snprintf(json, sizeof json, "{\"commandType\":\"CreateUser\",\"email\":\"t@example.com\",\"name\":\"T\",\"commandId\":\"%s\"}",
           cmd);
  tk_response_t r;
  char hdr[128];
  snprintf(hdr, sizeof hdr, "traceparent: %s\r\n", tp);
  tk_http_headers("POST", env.command_port, "/v1/commands", hdr, json, strlen(json), &r);
  cr_assert_eq(r.status, 201, "%d %s", r.status, r.body);
  tk_response_cleanup(&r);
  const char *topics[] = {"events", "command-results"};
  for (int t = 0; t < 2; t++) {
    char topic[128];
    size_t n;
    tk_record_t *recs = tk_kafka_read_all(&env, tk_topic(&env, topics[t], topic), &n);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
      bool mine = t == 0 ? recs[i].ce_causationid && strcmp(recs[i].ce_causationid, cmd) == 0
                         : recs[i].key && strncmp(recs[i].key, "default/", 8) == 0 &&
                               strcmp(recs[i].key + 8, cmd) == 0; /* AUTH=off: tenant "default" */
      if (mine) {
        found = true;
        cr_expect(recs[i].traceparent && strcmp(recs[i].traceparent, tp) == 0, "%s record without the traceparent",
                  topics[t]);
      }
    }
    cr_expect(found, "no %s record for %s", topics[t], cmd);
    tk_records_free(recs, n);
  }
}

Test(e2e, a_stop_that_outlasts_the_grace_period_is_cut_short) {
  /* With no grace at all the watchdog fires before the projector has left its
   * consumer group: the process must say so and exit 1 rather than hang. */
  tk_stop(pids[TK_PROJECTOR], SIGTERM);
  static const char *const no_grace[] = {"SHUTDOWN_GRACE_MS=0", NULL};
  pids[TK_PROJECTOR] = tk_start(&env, TK_PROJECTOR, no_grace);
  int status = tk_stop(pids[TK_PROJECTOR], SIGTERM);
  pids[TK_PROJECTOR] = 0;
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 1, "expected exit 1 from the watchdog, status %d", status);
  char log[512];
  snprintf(log, sizeof log, "%s/%sprojector-svc.log", CQRS_TEST_LOG_DIR, env.prefix);
  FILE *f = fopen(log, "r");
  cr_assert_not_null(f, "no log at %s", log);
  char line[2048];
  bool said = false;
  while (fgets(line, sizeof line, f)) said |= strstr(line, "longer than the grace period") != NULL;
  fclose(f);
  cr_expect(said, "the watchdog did not log in %s", log);
}
