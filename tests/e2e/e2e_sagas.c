/* End to end, the sagas on the real stack (issue 13): command-svc,
 * projector-svc, query-svc and saga-svc with AUTH=off (every record is tenant
 * "default"'s), their own topics and database.
 *   - an order of an unknown user ends Cancelled, USER_NOT_FOUND, on GET /v1/orders/{id};
 *   - an order of a customer who is not ACTIVE ends Cancelled, CUSTOMER_NOT_ACTIVE;
 *   - a suspension cancels the customer's open orders (CUSTOMER_SUSPENDED),
 *     leaves a Delivered one alone, and "concurrently" resolves on the
 *     customer aggregate: recorded before -> CUSTOMER_SUSPENDED, after -> CUSTOMER_NOT_ACTIVE;
 *   - the processing deadline cancels an order still Created (PROCESSING_TIMEOUT)
 *     and leaves one that moved on alone, also when the deadline fell due
 *     while saga-svc was down;
 *   - rewound saga-svc offsets emit no new command, nor does a replay (--rebuild or admin-svc's);
 *   - saga_deadline_lag_seconds shows a deadline found overdue at a restart;
 *   - an OrderCreated written the old way (v1, no ce_dataschema) starts its
 *     saga; one of an unknown schema version is saga-svc's dead letter
 *     (shown by admin-svc, not redriven) and the sagas go on past it, or,
 *     with POISON_POLICY=halt, saga-svc halts before it and /readyz says so;
 * and afterwards the log holds exactly one Cancelled transition per cancelled order. */
#include "testkit.h"

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VISIBLE_MS 30000

static tk_env_t env;
static pid_t pids[3], saga, admin;

static void teardown(void) {
  if (saga > 0) tk_stop(saga, SIGTERM);
  if (admin > 0) tk_stop(admin, SIGTERM);
  saga = admin = 0;
  tk_stop_all(pids);
}

TestSuite(sagas, .fini = teardown, .timeout = 300);

/* Starts the three services and saga-svc with extra settings (may be NULL). */
static void start_with(const char *const *saga_extra) {
  tk_env_init(&env);
  tk_start_all(&env, pids);
  saga = tk_start(&env, TK_SAGA, saga_extra);
}

static void start(void) { start_with(NULL); }

/* The aggregateId of a command's 201 answer (free it). */
static char *created(const char *body) {
  char *id = tk_json_string(body, "aggregateId");
  cr_assert_not_null(id, "%s", body);
  return id;
}

static char *create_user(void) {
  char *b = tk_command(&env, 201, "{\"commandType\":\"CreateUser\",\"email\":\"u%ld@example.com\",\"name\":\"U\"}",
                       random());
  char *id = created(b);
  free(b);
  return id;
}

static char *register_customer(void) {
  char *b = tk_command(&env, 201,
                       "{\"commandType\":\"RegisterCustomer\",\"email\":\"k%ld@example.com\",\"name\":\"K\"}", random());
  char *id = created(b);
  free(b);
  return id;
}

/* RFC 3339 UTC of now + ms. */
static void in_ms(int64_t ms, char out[32]) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  time_t t = ts.tv_sec + (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/* Creates an order of user (customer may be NULL; process_by may be NULL). */
static char *create_order(const char *user, const char *customer, const char *process_by) {
  char extra[256] = "";
  size_t n = 0;
  if (customer) n += (size_t)snprintf(extra + n, sizeof extra - n, ",\"customerId\":\"%s\"", customer);
  if (process_by) snprintf(extra + n, sizeof extra - n, ",\"processBy\":\"%s\"", process_by);
  char *b = tk_command(&env, 201,
                       "{\"commandType\":\"CreateOrder\",\"userId\":\"%s\",\"totalAmount\":2,"
                       "\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":2}]%s}",
                       user, extra);
  char *id = created(b);
  free(b);
  return id;
}

static void set_status(const char *order, const char *status) {
  free(tk_command(&env, 201, "{\"commandType\":\"UpdateOrderStatus\",\"aggregateId\":\"%s\",\"status\":\"%s\"}",
                  order, status));
}

typedef struct {
  const char *status, *reason; /* reason NULL: cancellationReason must be null */
} want_t;

static bool order_is(const char *body, void *ctx) {
  const want_t *w = ctx;
  char *status = tk_json_string(body, "status"), *reason = tk_json_string(body, "cancellationReason");
  bool ok = status && strcmp(status, w->status) == 0 &&
            (w->reason ? reason && strcmp(reason, w->reason) == 0 : tk_json_is_null(body, "cancellationReason"));
  free(status);
  free(reason);
  return ok;
}

/* Waits until GET /v1/orders/{id} shows status (and reason). */
static void await_order(const char *id, const char *status, const char *reason) {
  char path[256];
  snprintf(path, sizeof path, "/v1/orders/%s", id);
  want_t w = {status, reason};
  tk_response_t r;
  bool ok = tk_await_get(env.query_port, path, 200, order_is, &w, VISIBLE_MS, &r);
  cr_assert(ok, "order %s never became %s/%s: %d %s", id, status, reason ? reason : "null", r.status,
            r.body ? r.body : "");
  tk_response_cleanup(&r);
}

/* The current document of order id (free it). */
static char *get_order(const char *id) {
  char path[256];
  snprintf(path, sizeof path, "/v1/orders/%s", id);
  tk_response_t r;
  cr_assert(tk_http("GET", env.query_port, path, NULL, 0, &r) && r.status == 200, "GET %s: %d", path, r.status);
  char *body = strdup(r.body);
  tk_response_cleanup(&r);
  return body;
}

/* How many OrderStatusUpdated events of order id say Cancelled. */
static size_t cancelled_transitions(const char *id) {
  char topic[128];
  size_t n = 0, count = 0;
  tk_record_t *recs = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n);
  for (size_t i = 0; i < n; i++) {
    if (!recs[i].ce_type || strcmp(recs[i].ce_type, "OrderStatusUpdated") != 0) continue;
    if (!recs[i].ce_subject || strcmp(recs[i].ce_subject, id) != 0) continue;
    char *status = tk_json_string(recs[i].value, "status");
    if (status && strcmp(status, "Cancelled") == 0) count++;
    free(status);
  }
  tk_records_free(recs, n);
  return count;
}

/* How many records of ce_type the events topic holds. */
static size_t events_of_type(const char *type) {
  char topic[128];
  size_t n = 0, count = 0;
  tk_record_t *recs = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n);
  for (size_t i = 0; i < n; i++) count += recs[i].ce_type && strcmp(recs[i].ce_type, type) == 0;
  tk_records_free(recs, n);
  return count;
}

static size_t records_of(const char *name) {
  char topic[128];
  size_t n = 0;
  tk_records_free(tk_kafka_read_all(&env, tk_topic(&env, name, topic), &n), n);
  return n;
}

/* A gauge or counter of saga-svc's /metrics (0 when absent). */
static double metric(const char *series) {
  tk_response_t r;
  tk_http("GET", env.saga_port, "/metrics", NULL, 0, &r);
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

static void await_metric(const char *series, double want) {
  double v = 0;
  for (int i = 0; i < VISIBLE_MS / 50 && (v = metric(series)) < want; i++) usleep(50 * 1000);
  cr_assert_geq(v, want, "%s stayed at %g", series, v);
}

static bool has_compensated(const char *body, void *ctx) {
  (void)ctx;
  return strstr(body, "\"state\":\"compensated\"") != NULL;
}

/* The traceparent of the first record on the commands topic whose value
 * holds both a and b ("" without one; free it), or NULL after VISIBLE_MS. */
static char *await_command(const char *a, const char *b) {
  char topic[128], *seen = NULL;
  for (int i = 0; i < VISIBLE_MS / 100 && !seen; i++) {
    size_t n = 0;
    tk_record_t *recs = tk_kafka_read_all(&env, tk_topic(&env, "commands", topic), &n);
    for (size_t j = 0; j < n && !seen; j++)
      if (recs[j].value && strstr(recs[j].value, a) && strstr(recs[j].value, b))
        seen = strdup(recs[j].traceparent ? recs[j].traceparent : "");
    tk_records_free(recs, n);
    if (!seen) usleep(100 * 1000);
  }
  return seen;
}

/* ---- order placement ---- */

Test(sagas, an_order_of_an_unknown_user_is_cancelled_and_one_of_a_known_user_stays) {
  start();
  char *user = create_user();
  char *bad = create_order("no-such-user", NULL, NULL), *good = create_order(user, NULL, NULL);
  await_order(bad, "Cancelled", "USER_NOT_FOUND");
  /* the good one's saga completes: no cancel, its document carries the new fields */
  await_metric("sagas{type=\"order_placement\",state=\"completed\"}", 1);
  char *doc = get_order(good);
  char *status = tk_json_string(doc, "status"), *process_by = tk_json_string(doc, "processBy");
  cr_assert_str_eq(status, "Created", "%s", doc);
  cr_assert_not_null(process_by, "processBy defaults to createdAt + ORDER_PROCESSING_TIMEOUT: %s", doc);
  cr_assert(tk_json_is_null(doc, "customerId") && tk_json_is_null(doc, "cancellationReason"), "%s", doc);
  cr_assert_eq(cancelled_transitions(bad), 1);
  cr_assert_eq(cancelled_transitions(good), 0);

  /* an operator sees both in admin-svc, the bad one with its steps */
  admin = tk_start(&env, TK_ADMIN, NULL);
  char path[256];
  snprintf(path, sizeof path, "/v1/admin/sagas?type=order_placement&key=%s", bad);
  tk_response_t r;
  cr_assert(tk_await_get(env.admin_port, path, 200, has_compensated, NULL, VISIBLE_MS, &r), "%d %s", r.status, r.body);
  const char *at = strstr(r.body, "\"sagaId\":\"");
  cr_assert_not_null(at, "%s", r.body);
  char *saga_id = strndup(at + 10, 36);
  cr_assert(tk_json_is_null(r.body, "nextCursor"), "%s", r.body);
  tk_response_cleanup(&r);
  snprintf(path, sizeof path, "/v1/admin/sagas/%s", saga_id);
  cr_assert(tk_http("GET", env.admin_port, path, NULL, 0, &r) && r.status == 200, "%s: %d %s", path, r.status,
            r.body);
  cr_assert_not_null(strstr(r.body, "\"trigger\":\"OrderCreated\""), "%s", r.body);
  cr_assert_not_null(strstr(r.body, "\"commandType\":\"RecordUserOrder\""), "%s", r.body);
  cr_assert_not_null(strstr(r.body, "\"outcome\":\"404\""), "%s", r.body);
  cr_assert_not_null(strstr(r.body, "\"reason\":\"USER_NOT_FOUND\""), "%s", r.body);
  cr_assert_not_null(strstr(r.body, "\"outcome\":\"201\""), "the cancel's result: %s", r.body);
  tk_response_cleanup(&r);
  cr_assert(tk_http("GET", env.admin_port, "/v1/admin/sagas?state=completed&type=order_placement&limit=1", NULL, 0,
                    &r) && r.status == 200);
  cr_assert_not_null(strstr(r.body, good), "the good order's saga completed: %s", r.body);
  tk_response_cleanup(&r);
  cr_assert(tk_http("GET", env.admin_port, "/v1/admin/sagas?state=sleepy", NULL, 0, &r) && r.status == 400);
  tk_response_cleanup(&r);
  free(saga_id);

  /* rewound offsets: a new saga-svc reads every event and result again and emits nothing new */
  size_t commands = records_of("commands");
  tk_stop(saga, SIGTERM);
  saga = 0;
  char group[256], topic[128], errstr[512];
  snprintf(group, sizeof group, "%ssaga-svc", env.prefix);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", env.brokers, errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  cr_assert_not_null(rk, "%s", errstr);
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(6);
  for (int p = 0; p < 3; p++) {
    rd_kafka_topic_partition_list_add(l, tk_topic(&env, "events", topic), p)->offset = 0;
    rd_kafka_topic_partition_list_add(l, tk_topic(&env, "command-results", topic), p)->offset = 0;
  }
  cr_assert_eq(rd_kafka_commit(rk, l, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  size_t consumed = records_of("events") + records_of("command-results");
  saga = tk_start(&env, TK_SAGA, NULL);
  await_metric("saga_records_total", (double)consumed); /* it read every rewound record again */
  cr_assert_eq(records_of("commands"), commands, "no new command after the rewind");
  cr_assert_eq(cancelled_transitions(bad), 1);
  free(user);
  free(bad);
  free(good);
  free(doc);
  free(status);
  free(process_by);
}

Test(sagas, an_order_of_a_customer_that_is_not_active_is_cancelled) {
  start();
  char *user = create_user(), *customer = register_customer();
  free(tk_command(&env, 201, "{\"commandType\":\"SuspendCustomer\",\"aggregateId\":\"%s\",\"reason\":\"fraud\"}",
                  customer));
  char *order = create_order(user, customer, NULL), *unknown = create_order(user, "no-such-customer", NULL);
  await_order(order, "Cancelled", "CUSTOMER_NOT_ACTIVE");
  await_order(unknown, "Cancelled", "CUSTOMER_NOT_ACTIVE");
  char *doc = get_order(order), *c = tk_json_string(doc, "customerId");
  cr_assert_str_eq(c, customer);
  cr_assert_eq(cancelled_transitions(order), 1);
  free(user);
  free(customer);
  free(order);
  free(unknown);
  free(doc);
  free(c);
}

/* ---- customer suspension ---- */

Test(sagas, a_suspension_cancels_the_open_orders_once_and_concurrency_resolves_on_the_customer) {
  start();
  char *user = create_user(), *customer = register_customer();
  char *open1 = create_order(user, customer, NULL), *open2 = create_order(user, customer, NULL);
  char *delivered = create_order(user, customer, NULL);
  /* recorded on the customer before the suspension: the suspension covers them */
  for (int i = 0; i < VISIBLE_MS / 50 && events_of_type("CustomerOrderRecorded") < 3; i++) usleep(50 * 1000);
  cr_assert_eq(events_of_type("CustomerOrderRecorded"), 3);
  set_status(open2, "Processing");
  set_status(delivered, "Processing");
  set_status(delivered, "Shipped");
  set_status(delivered, "Delivered");
  free(tk_command(&env, 201, "{\"commandType\":\"SuspendCustomer\",\"aggregateId\":\"%s\",\"reason\":\"fraud\"}",
                  customer));
  /* after the suspension: refused by the customer, cancelled by the placement saga */
  char *late = create_order(user, customer, NULL);
  await_order(open1, "Cancelled", "CUSTOMER_SUSPENDED");
  await_order(open2, "Cancelled", "CUSTOMER_SUSPENDED");
  await_order(late, "Cancelled", "CUSTOMER_NOT_ACTIVE");
  await_metric("sagas{type=\"customer_suspension\",state=\"completed\"}", 1);
  char *doc = get_order(delivered), *status = tk_json_string(doc, "status");
  cr_assert_str_eq(status, "Delivered", "a Delivered order is not open: %s", doc);
  cr_assert(tk_json_is_null(doc, "cancellationReason"));
  const char *all[] = {open1, open2, late};
  for (size_t i = 0; i < 3; i++) cr_assert_eq(cancelled_transitions(all[i]), 1, "%s", all[i]);
  cr_assert_eq(cancelled_transitions(delivered), 0);
  free(user);
  free(customer);
  free(open1);
  free(open2);
  free(delivered);
  free(late);
  free(doc);
  free(status);
}

/* ---- processing deadline ---- */

Test(sagas, a_deadline_cancels_an_order_still_created_and_leaves_one_that_moved_on) {
  start();
  char *user = create_user(), due[32];
  in_ms(3000, due);
  char *stale = create_order(user, NULL, due), *moved = create_order(user, NULL, due);
  set_status(moved, "Processing");
  await_order(stale, "Cancelled", "PROCESSING_TIMEOUT");
  /* both deadlines were due: the second saga had dropped its deadline */
  await_metric("sagas{type=\"order_deadline\",state=\"compensated\"}", 1);
  await_metric("sagas{type=\"order_deadline\",state=\"completed\"}", 1);
  char *doc = get_order(moved), *status = tk_json_string(doc, "status");
  cr_assert_str_eq(status, "Processing", "%s", doc);
  cr_assert_eq(cancelled_transitions(stale), 1);
  cr_assert_eq(cancelled_transitions(moved), 0);
  free(user);
  free(stale);
  free(moved);
  free(doc);
  free(status);
}

Test(sagas, a_deadline_due_while_saga_svc_is_down_fires_once_after_the_restart) {
  start();
  char *user = create_user(), due[32];
  in_ms(4000, due);
  char *order = create_order(user, NULL, due);
  /* the deadline is in saga-state before the kill */
  await_metric("sagas{type=\"order_deadline\",state=\"running\"}", 1);
  tk_stop(saga, SIGKILL);
  saga = 0;
  /* the deadline falls due while no saga-svc runs (the clock passing it is the scenario) */
  char now[32];
  do {
    usleep(100 * 1000);
    in_ms(0, now);
  } while (strcmp(now, due) <= 0);
  char *doc = get_order(order), *status = tk_json_string(doc, "status");
  cr_assert_str_eq(status, "Created", "nobody fired it while saga-svc was down: %s", doc);
  saga = tk_start(&env, TK_SAGA, NULL);
  await_order(order, "Cancelled", "PROCESSING_TIMEOUT");
  await_metric("sagas{type=\"order_deadline\",state=\"compensated\"}", 1);
  cr_assert_eq(cancelled_transitions(order), 1);
  free(user);
  free(order);
  free(doc);
  free(status);
}

/* ---- crashes and rebuilds ---- */

/* True when the commands topic holds a committed record of command_type that
 * names order (its orderId or aggregateId). */
static bool command_for(const char *command_type, const char *order) {
  char topic[128], want[160];
  size_t n = 0;
  bool found = false;
  snprintf(want, sizeof want, "\"commandType\":\"%s\"", command_type);
  tk_record_t *recs = tk_kafka_read_all(&env, tk_topic(&env, "commands", topic), &n);
  for (size_t i = 0; i < n && !found; i++)
    found = recs[i].value && strstr(recs[i].value, want) && strstr(recs[i].value, order);
  tk_records_free(recs, n);
  return found;
}

/* The saga emitted its owner check (committed), command-svc has not answered
 * it (stopped), and saga-svc dies by SIGKILL. After both come back the saga
 * completes, once. */
Test(sagas, a_saga_killed_between_its_command_and_the_result_completes_once) {
  start();
  tk_stop(pids[TK_COMMAND], SIGTERM);
  pids[TK_COMMAND] = 0;
  /* the order is created while command-svc runs; then it stops before the saga's command arrives */
  pids[TK_COMMAND] = tk_start(&env, TK_COMMAND, NULL);
  tk_stop(saga, SIGTERM);
  saga = 0;
  char *order = create_order("no-such-user-k9", NULL, NULL);
  tk_stop(pids[TK_COMMAND], SIGTERM);
  pids[TK_COMMAND] = 0;
  saga = tk_start(&env, TK_SAGA, NULL);
  for (int i = 0; i < VISIBLE_MS / 50 && !command_for("RecordUserOrder", order); i++) usleep(50 * 1000);
  cr_assert(command_for("RecordUserOrder", order), "the saga emitted its owner check");
  tk_stop(saga, SIGKILL);
  saga = 0;
  pids[TK_COMMAND] = tk_start(&env, TK_COMMAND, NULL);
  saga = tk_start(&env, TK_SAGA, NULL);
  await_order(order, "Cancelled", "USER_NOT_FOUND");
  await_metric("sagas{type=\"order_placement\",state=\"compensated\"}", 1);
  cr_assert_eq(cancelled_transitions(order), 1);
  free(order);
}

/* A projection rebuild replays the log into the read models; saga-svc has
 * its own consumer group and emits nothing for it. */
Test(sagas, a_projection_rebuild_emits_no_saga_command) {
  start();
  char *order = create_order("no-such-user-rb", NULL, NULL);
  await_order(order, "Cancelled", "USER_NOT_FOUND");
  await_metric("sagas{type=\"order_placement\",state=\"compensated\"}", 1);
  size_t commands = records_of("commands");
  cr_assert_eq(tk_rebuild(&env, "order_summaries"), 0);
  await_order(order, "Cancelled", "USER_NOT_FOUND"); /* the rebuilt read model */
  /* saga-svc has read everything there is (it never rewinds for a rebuild) and emitted nothing */
  await_metric("saga_records_total", (double)(records_of("events") + records_of("command-results")));
  cr_assert_eq(records_of("commands"), commands, "a rebuild emits no saga command");
  cr_assert_eq(cancelled_transitions(order), 1);
  free(order);
}

/* A saga's command goes on with the trace of the event that caused it. */
Test(sagas, a_saga_command_carries_the_trace_of_its_event) {
  start();
  static const char trace[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const char *body = "{\"commandType\":\"CreateOrder\",\"userId\":\"no-such-user-tp\",\"totalAmount\":1,"
                     "\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":1}]}";
  tk_response_t r;
  char header[128];
  snprintf(header, sizeof header, "traceparent: %s\r\n", trace);
  cr_assert(tk_http_headers("POST", env.command_port, "/v1/commands", header,
                            body, strlen(body), &r));
  cr_assert_eq(r.status, 201, "%s", r.body);
  char *order = tk_json_string(r.body, "aggregateId");
  tk_response_cleanup(&r);
  char *seen = await_command("RecordUserOrder", order);
  cr_assert_not_null(seen, "no RecordUserOrder for %s", order);
  cr_assert_str_eq(seen, trace);
  free(seen);
  free(order);
}

/* ---- events saga-svc cannot read (POISON_POLICY) ---- */

static int32_t partition_of(const char *id) {
  char key[128];
  snprintf(key, sizeof key, "default/%s", id);
  return rd_kafka_msg_partitioner_murmur2(NULL, key, strlen(key), 3, NULL, NULL);
}

/* The data of an OrderCreated at schema version 1 (no currency) of user. */
static void v1_order_data(const char *user, char *out, size_t n) {
  snprintf(out, n, "{\"orderId\":\"x\",\"userId\":\"%s\",\"items\":[{\"product\":\"Pen\",\"quantity\":1,"
           "\"price\":2}],\"totalAmount\":2,\"createdAt\":\"2026-01-15T10:00:00.000Z\"}", user);
}

/* saga-svc's dead letters of aggregate id on events.dlq; the first one's
 * dlq_error into *error (free it) when error is not NULL. */
static size_t saga_dead_letters(const char *id, char **error) {
  char topic[128];
  size_t n = 0, count = 0;
  tk_record_t *r = tk_kafka_read_all(&env, tk_topic(&env, "events.dlq", topic), &n);
  for (size_t i = 0; i < n; i++)
    if (r[i].ce_subject && strcmp(r[i].ce_subject, id) == 0 && r[i].dlq_projection &&
        strcmp(r[i].dlq_projection, "saga-svc") == 0 && count++ == 0 && error)
      *error = strdup(r[i].dlq_error ? r[i].dlq_error : "");
  tk_records_free(r, n);
  return count;
}

static bool holds(const char *body, void *needle) { return strstr(body, needle) != NULL; }

/* Written the old way (no ce_dataschema, no currency), an OrderCreated starts
 * order_placement like any other; one of a schema version the contract does
 * not know becomes saga-svc's dead letter naming its type and version, and
 * the sagas go on past it (the v1 event comes after it in its partition). */
Test(sagas, a_v1_order_created_is_acted_on_and_an_unknown_version_is_dead_lettered_while_the_sagas_go_on) {
  start();
  char *user = create_user(), data[256], future[96], v1[96];
  v1_order_data(user, data, sizeof data);
  snprintf(future, sizeof future, "o-future-%s", env.prefix);
  for (int i = 0; i == 0 || partition_of(v1) != partition_of(future); i++)
    snprintf(v1, sizeof v1, "o-v1-%s-%d", env.prefix, i);
  tk_produce_raw_event(&env, "events", "OrderCreated", "order", future, 1, "9", data, NULL);
  tk_produce_raw_event(&env, "events", "OrderCreated", "order", v1, 1, NULL, data, NULL);

  char *seen = await_command("RecordUserOrder", v1);
  cr_assert_not_null(seen, "order_placement never acted on the v1 OrderCreated of %s", v1);
  free(seen);
  await_metric("sagas{type=\"order_placement\",state=\"completed\"}", 1);
  /* committed with the offset past the poison event, so before the v1 one */
  char *error = NULL;
  cr_assert_eq(saga_dead_letters(future, &error), 1, "one dead letter of saga-svc for %s", future);
  cr_expect(strstr(error, "OrderCreated") && strstr(error, "version 9"), "dlq_error names type and version: %s",
            error);
  cr_expect_eq(saga_dead_letters(v1, NULL), 0);
  cr_expect_eq(metric("dlq_events_total{projection=\"saga-svc\"}"), 1);
  /* admin-svc lists it (read committed) and refuses to redrive it: no projection's */
  admin = tk_start(&env, TK_ADMIN, NULL);
  tk_response_t r;
  cr_assert(tk_await_get(env.admin_port, "/v1/admin/dlq?projection=saga-svc", 200, holds, future, VISIBLE_MS, &r),
            "admin-svc does not list saga-svc's dead letter: %d %s", r.status, r.body ? r.body : "");
  char id[48] = "", path[128];
  const char *at = strstr(r.body, "\"id\":\"");
  cr_assert(at && sscanf(at + 6, "%47[^\"]", id) == 1, "%s", r.body);
  tk_response_cleanup(&r);
  snprintf(path, sizeof path, "/v1/admin/dlq/%s/redrive", id);
  tk_http("POST", env.admin_port, path, NULL, 0, &r);
  cr_expect_eq(r.status, 409, "%s", r.body);
  tk_response_cleanup(&r);
  /* and the sagas go on as ever */
  char *bad = create_order("no-such-user-after", NULL, NULL);
  await_order(bad, "Cancelled", "USER_NOT_FOUND");
  free(error);
  free(bad);
  free(user);
}

static bool halted(const char *body, void *ctx) {
  (void)ctx;
  return strstr(body, "POISON_POLICY=halt") && strstr(body, "OrderCreated") && strstr(body, "version 9");
}

/* With POISON_POLICY=halt, saga-svc stops before the event instead, says so
 * on /readyz, and writes no dead letter. */
Test(sagas, with_poison_policy_halt_an_unknown_version_halts_the_sagas_before_it) {
  start_with((const char *const[]){"POISON_POLICY=halt", NULL});
  char *user = create_user(), data[256], future[96];
  v1_order_data(user, data, sizeof data);
  snprintf(future, sizeof future, "o-future-%s", env.prefix);
  tk_produce_raw_event(&env, "events", "OrderCreated", "order", future, 1, "9", data, NULL);
  tk_response_t r;
  bool ok = tk_await_get(env.saga_port, "/readyz", 503, halted, NULL, VISIBLE_MS, &r);
  cr_assert(ok, "saga-svc did not say it halted: %d %s", r.status, r.body ? r.body : "");
  tk_response_cleanup(&r);
  cr_expect_eq(saga_dead_letters(future, NULL), 0, "a halt writes no dead letter");
  free(user);
}

/* ---- the deadline lag metric ---- */

/* saga_deadline_lag_seconds says how far the earliest pending deadline is
 * past due: 0 while it is not due yet; after a restart that found it overdue
 * by several seconds, that lateness (counted before the deadline fires);
 * 0 again once it fired. */
Test(sagas, the_deadline_lag_shows_a_deadline_overdue_at_a_restart_and_is_0_otherwise) {
  start();
  char *user = create_user(), due[32];
  in_ms(3000, due);
  char *order = create_order(user, NULL, due);
  await_metric("sagas{type=\"order_deadline\",state=\"running\"}", 1);
  double lag = tk_metric(env.saga_port, "saga_deadline_lag_seconds");
  cr_assert_eq(lag, 0, "a deadline not due yet counts as lag %g (-1: the metric is absent)", lag);
  tk_stop(saga, SIGKILL);
  saga = 0;
  /* overdue by 2 s and more when saga-svc comes back */
  char late[32];
  do {
    usleep(100 * 1000); /* the clock passing the deadline while no saga-svc runs is the scenario */
    in_ms(-2000, late);
  } while (strcmp(late, due) <= 0);
  saga = tk_start(&env, TK_SAGA, NULL);
  double seen = -1;
  for (int i = 0; i < 5000 / 20 && seen <= 0; i++) {
    seen = tk_metric(env.saga_port, "saga_deadline_lag_seconds");
    if (seen <= 0) usleep(20 * 1000);
  }
  cr_assert_geq(seen, 2.0, "a deadline 2 s overdue at the restart showed a lag of %g s", seen);
  cr_assert_lt(seen, 60.0, "%g", seen);
  await_order(order, "Cancelled", "PROCESSING_TIMEOUT");
  for (int i = 0; i < VISIBLE_MS / 50 && (lag = tk_metric(env.saga_port, "saga_deadline_lag_seconds")) != 0; i++)
    usleep(50 * 1000);
  cr_assert_eq(lag, 0, "the lag stayed %g after the deadline fired", lag);
  /* fired once, at least as late as the lag said */
  cr_assert_eq(tk_metric(env.saga_port, "saga_deadline_fired_late_seconds_count"), 1);
  cr_assert_geq(tk_metric(env.saga_port, "saga_deadline_fired_late_seconds_sum"), seen);
  cr_assert_eq(cancelled_transitions(order), 1);
  free(user);
  free(order);
}

/* ---- replays from the control plane ---- */

static bool replay_done(const char *body, void *ctx) {
  (void)ctx;
  return strstr(body, "\"state\":\"completed\"") || strstr(body, "\"state\":\"failed\"");
}

/* An applied replay through admin-svc (the control plane, not --rebuild):
 * projector-svc runs it; saga-svc has its own consumer group and emits
 * nothing for it, from the beginning or from a time. */
Test(sagas, an_admin_replay_emits_no_saga_command) {
  start();
  admin = tk_start(&env, TK_ADMIN, NULL);
  char from[32];
  in_ms(-60000, from);
  char *order = create_order("no-such-user-ar", NULL, NULL);
  await_order(order, "Cancelled", "USER_NOT_FOUND");
  await_metric("sagas{type=\"order_placement\",state=\"compensated\"}", 1);
  await_metric("saga_records_total", (double)(records_of("events") + records_of("command-results")));
  size_t commands = records_of("commands"), events = records_of("events");
  const char *projections[] = {"order_summaries", "user_profiles"};
  const char *froms[] = {"beginning", from};
  for (int i = 0; i < 2; i++) {
    char body[256];
    snprintf(body, sizeof body, "{\"projection\":\"%s\",\"from\":\"%s\",\"dryRun\":false}", projections[i], froms[i]);
    tk_response_t r;
    cr_assert(tk_http("POST", env.admin_port, "/v1/admin/replays", body, strlen(body), &r));
    cr_assert_eq(r.status, 202, "%s: %d %s", body, r.status, r.body);
    char *id = tk_json_string(r.body, "replayId"), path[128];
    tk_response_cleanup(&r);
    cr_assert_not_null(id);
    snprintf(path, sizeof path, "/v1/admin/replays/%s", id);
    cr_assert(tk_await_get(env.admin_port, path, 200, replay_done, NULL, VISIBLE_MS * 2, &r), "%s: %s", path,
              r.body ? r.body : "");
    cr_assert_not_null(strstr(r.body, "\"state\":\"completed\""), "%s", r.body);
    cr_assert_geq(tk_json_int(r.body, "applied"), 1, "the replay read nothing: %s", r.body);
    tk_response_cleanup(&r);
    free(id);
  }
  await_order(order, "Cancelled", "USER_NOT_FOUND"); /* the replayed read model */
  /* saga-svc read everything there is (no new event, no new result) and emitted nothing */
  cr_assert_eq(records_of("events"), events, "a replay wrote an event");
  await_metric("saga_records_total", (double)(records_of("events") + records_of("command-results")));
  cr_assert_eq(records_of("commands"), commands, "an admin replay emitted a saga command");
  cr_assert_eq(cancelled_transitions(order), 1);
  free(order);
}
