/* command-svc's HTTP ingress against the real broker: backpressure past
 * COMMAND_MAX_IN_FLIGHT (503 with Retry-After, nothing refused reaches Kafka,
 * every accepted command answered) and replies routed to the replica that
 * awaits them (each of 3 replicas reads about a third of command-results; a
 * reply routed to a replica that died before reading it is still on
 * command-results and a retry elsewhere gets the original outcome; a replica
 * holding no results partition is not ready). The results are held back,
 * where a test needs it, by an open transaction on command-results, so what
 * is in flight is a state the test sets, not a race. */
#include "testkit.h"

#include "cqrs/result.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define N_REPLICAS 3

static tk_env_t env;
static pid_t pids[N_REPLICAS];
static int ports[N_REPLICAS];

static void nap(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void setup(void) {
  tk_env_init(&env);
  ports[0] = env.command_port;
  for (int i = 1; i < N_REPLICAS; i++) ports[i] = tk_free_port();
}

static void teardown(void) {
  for (int i = 0; i < N_REPLICAS; i++)
    if (pids[i] > 0) tk_stop(pids[i], SIGTERM);
}

TestSuite(ingress, .init = setup, .fini = teardown, .timeout = 180);

/* Starts replica i (HTTP port ports[i]) with extra settings, side by side
 * with the others: spawn all, then await each. */
static void start_replicas(int n, const char *const *extra) {
  char logs[N_REPLICAS][512];
  for (int i = 0; i < n; i++) {
    tk_env_t e = env;
    e.command_port = ports[i];
    pids[i] = tk_spawn(&e, TK_COMMAND, extra, logs[i]);
  }
  for (int i = 0; i < n; i++) {
    tk_env_t e = env;
    e.command_port = ports[i];
    tk_await_ready(&e, TK_COMMAND, pids[i], logs[i]);
  }
}

/* Waits (bounded, 30 s) until series on port reads want. */
static bool await_metric(int port, const char *series, double want) {
  for (int i = 0; i < 600; i++) {
    if (tk_metric(port, series) == want) return true;
    nap(50);
  }
  return false;
}

/* Every committed record of topic_name (read once; tk_records_free it). */
static tk_record_t *read_topic(const char *topic_name, size_t *n) {
  char topic[128];
  return tk_kafka_read_all(&env, tk_topic(&env, topic_name, topic), n);
}

/* How many of r[0..n) have key key (command-results: "<tenant>/<commandId>"). */
static size_t with_key(const tk_record_t *r, size_t n, const char *key) {
  size_t matching = 0;
  for (size_t i = 0; i < n; i++) matching += r[i].key && strcmp(r[i].key, key) == 0;
  return matching;
}

/* How many events of r[0..n) command_id caused. */
static size_t caused_by(const tk_record_t *r, size_t n, const char *command_id) {
  size_t matching = 0;
  for (size_t i = 0; i < n; i++) matching += r[i].ce_causationid && strcmp(r[i].ce_causationid, command_id) == 0;
  return matching;
}

/* How many command records of r[0..n) carry command_id. */
static size_t commands_with_id(const tk_record_t *r, size_t n, const char *command_id) {
  size_t matching = 0;
  for (size_t i = 0; i < n; i++) {
    char *cid = tk_json_string(r[i].value, "commandId");
    matching += cid && strcmp(cid, command_id) == 0;
    free(cid);
  }
  return matching;
}

/* ---- backpressure ---- */

/* A transaction of the test's own, left open on every command-results
 * partition: read_committed readers (the ingress) see nothing past its first
 * record until it ends, so every accepted command stays in flight for as long
 * as the test wants. This makes the overload a state, not a race. */
static rd_kafka_t *hold_results(int partitions) {
  char errstr[256], topic[128], txn[200];
  snprintf(txn, sizeof txn, "%sresults-holder", env.prefix);
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", env.brokers, errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "transactional.id", txn, errstr, sizeof errstr);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  cr_assert_not_null(rk, "%s", errstr);
  rd_kafka_error_t *e = rd_kafka_init_transactions(rk, 30000);
  cr_assert_null(e, "init_transactions: %s", e ? rd_kafka_error_string(e) : "");
  e = rd_kafka_begin_transaction(rk);
  cr_assert_null(e, "begin_transaction: %s", e ? rd_kafka_error_string(e) : "");
  tk_topic(&env, "command-results", topic);
  for (int p = 0; p < partitions; p++)
    cr_assert_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p), RD_KAFKA_V_KEY("hold", 4),
                                   RD_KAFKA_V_VALUE("{}", 2), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                   RD_KAFKA_V_END),
                 0);
  cr_assert_eq(rd_kafka_flush(rk, 15000), 0, "the holding records were not delivered");
  return rk;
}

static void release_results(rd_kafka_t *rk) {
  rd_kafka_error_t *e = rd_kafka_abort_transaction(rk, 30000);
  cr_assert_null(e, "abort_transaction: %s", e ? rd_kafka_error_string(e) : "");
  rd_kafka_destroy(rk);
}

#define CAP 4
#define N_OFFERED 40

typedef struct {
  pthread_t thread;
  int port;
  char command_id[32];
  tk_response_t r;
} post_t;

static atomic_int posts_done;

static void *post_main(void *arg) {
  post_t *p = arg;
  char json[256];
  snprintf(json, sizeof json,
           "{\"commandType\":\"CreateUser\",\"commandId\":\"%s\",\"email\":\"%s@example.com\",\"name\":\"BP\"}",
           p->command_id, p->command_id);
  tk_http("POST", p->port, "/v1/commands", json, strlen(json), &p->r);
  atomic_fetch_add(&posts_done, 1);
  return NULL;
}

Test(ingress, past_the_in_flight_cap_commands_get_503_with_retry_after_and_none_is_lost) {
  const char *extra[] = {"COMMAND_MAX_IN_FLIGHT=4", "COMMAND_TIMEOUT_MS=60000", NULL};
  start_replicas(1, extra);
  int port = ports[0];
  cr_expect_eq(tk_metric(port, "commands_in_flight_limit"), CAP);
  rd_kafka_t *holder = hold_results(3); /* tk_spawn's TOPIC_PARTITIONS */

  post_t posts[N_OFFERED];
  for (int i = 0; i < N_OFFERED; i++) {
    memset(&posts[i], 0, sizeof posts[i]);
    posts[i].port = port;
    snprintf(posts[i].command_id, sizeof posts[i].command_id, "bp-%d", i);
    cr_assert_eq(pthread_create(&posts[i].thread, NULL, post_main, &posts[i]), 0);
  }
  /* Nothing is answered while the results are held: exactly CAP commands are
   * taken and every other one is refused at once, whatever the timing. */
  for (int i = 0; i < 600 && atomic_load(&posts_done) < N_OFFERED - CAP; i++) nap(50);
  cr_assert_eq(atomic_load(&posts_done), N_OFFERED - CAP, "refusals did not come back while results were held");
  cr_expect_eq(tk_metric(port, "commands_in_flight"), CAP);
  cr_expect_eq(tk_metric(port, "commands_overloaded_total"), N_OFFERED - CAP);
  cr_expect_eq(atomic_load(&posts_done), N_OFFERED - CAP, "an accepted command was answered before its result");
  release_results(holder);

  int accepted = 0;
  for (int i = 0; i < N_OFFERED; i++) {
    pthread_join(posts[i].thread, NULL);
    tk_response_t *r = &posts[i].r;
    if (r->status == 503) {
      cr_expect_not_null(strstr(r->headers, "Retry-After: 1"), "%s: no Retry-After: %s", posts[i].command_id,
                         r->headers);
      cr_expect_not_null(r->body && strstr(r->body, "overloaded"), "%s: %s", posts[i].command_id, r->body);
      cr_expect_not_null(r->body && strstr(r->body, "COMMAND_MAX_IN_FLIGHT"), "%s", r->body);
    } else {
      cr_expect_eq(r->status, 201, "%s: %d %s", posts[i].command_id, r->status, r->body ? r->body : "");
      char *event_id = tk_json_string(r->body, "eventId");
      cr_expect_not_null(event_id, "%s", r->body);
      free(event_id);
      accepted++;
    }
  }
  cr_expect_eq(accepted, CAP);
  cr_expect(await_metric(port, "commands_in_flight", 0), "slots were not given back");

  /* Every accepted command has its one event and one result; a refused one
   * never reached Kafka: no command record, no event, no result. */
  size_t n_cmds, n_events, n_results;
  tk_record_t *cmds = read_topic("commands", &n_cmds), *events = read_topic("events", &n_events),
              *results = read_topic("command-results", &n_results);
  cr_expect_eq(n_cmds, CAP);
  for (int i = 0; i < N_OFFERED; i++) {
    char key[64];
    snprintf(key, sizeof key, "default/%s", posts[i].command_id);
    size_t want = posts[i].r.status == 201;
    cr_expect_eq(commands_with_id(cmds, n_cmds, posts[i].command_id), want, "%s", posts[i].command_id);
    cr_expect_eq(caused_by(events, n_events, posts[i].command_id), want, "%s", posts[i].command_id);
    cr_expect_eq(with_key(results, n_results, key), want, "%s", posts[i].command_id);
  }
  tk_records_free(cmds, n_cmds);
  tk_records_free(events, n_events);
  tk_records_free(results, n_results);

  /* The refused command was not taken: sent again once there is room, it is
   * applied now, once. */
  for (int i = 0; i < N_OFFERED; i++) {
    if (posts[i].r.status != 503) continue;
    post_t again = posts[i];
    memset(&again.r, 0, sizeof again.r);
    post_main(&again);
    cr_expect_eq(again.r.status, 201, "%d %s", again.r.status, again.r.body ? again.r.body : "");
    tk_response_cleanup(&again.r);
    events = read_topic("events", &n_events);
    cr_expect_eq(caused_by(events, n_events, posts[i].command_id), 1);
    tk_records_free(events, n_events);
    break;
  }
  for (int i = 0; i < N_OFFERED; i++) tk_response_cleanup(&posts[i].r);
}

/* ---- replies routed to the replica that awaits them ---- */

/* The value of header name on r (borrowed), or NULL. */
static const char *header(const tk_record_t *r, const char *name) {
  for (size_t i = 0; i < r->n_headers; i++)
    if (strcmp(r->headers[i].name, name) == 0) return r->headers[i].value;
  return NULL;
}

#define N_ROUTED 300
#define N_SENDERS 6

static void *send_routed(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int i = t; i < N_ROUTED; i += N_SENDERS) {
    char json[256];
    snprintf(json, sizeof json,
             "{\"commandType\":\"CreateUser\",\"commandId\":\"routed-%d\",\"email\":\"r%d@example.com\",\"name\":\"R\"}",
             i, i);
    tk_response_t r;
    tk_http("POST", ports[i % N_REPLICAS], "/v1/commands", json, strlen(json), &r);
    if (r.status != 201) fprintf(stderr, "routed-%d answered %d: %s\n", i, r.status, r.body ? r.body : "");
    else atomic_fetch_add(&posts_done, 1);
    tk_response_cleanup(&r);
  }
  return NULL;
}

Test(ingress, each_of_three_replicas_reads_about_a_third_of_the_results) {
  const char *extra[] = {"TOPIC_PARTITIONS=6", NULL};
  start_replicas(N_REPLICAS, extra);
  atomic_store(&posts_done, 0);
  pthread_t t[N_SENDERS];
  for (int i = 0; i < N_SENDERS; i++) pthread_create(&t[i], NULL, send_routed, (void *)(intptr_t)i);
  for (int i = 0; i < N_SENDERS; i++) pthread_join(t[i], NULL);
  cr_assert_eq(atomic_load(&posts_done), N_ROUTED, "every command is answered 201 by the replica it was sent to");

  /* Each result is on the partition its command named. */
  size_t n_cmds, n_results;
  tk_record_t *cmds = read_topic("commands", &n_cmds), *results = read_topic("command-results", &n_results);
  cr_assert_eq(n_cmds, N_ROUTED);
  cr_assert_eq(n_results, N_ROUTED);
  double total = 0;
  for (size_t i = 0; i < n_results; i++) total += (double)(strlen(results[i].key) + strlen(results[i].value));
  for (size_t i = 0; i < n_cmds; i++) {
    const char *named = header(&cmds[i], CQRS_REPLY_PARTITION_HEADER);
    cr_assert_not_null(named, "a command record without %s", CQRS_REPLY_PARTITION_HEADER);
    char *cid = tk_json_string(cmds[i].value, "commandId"), key[96];
    snprintf(key, sizeof key, "default/%s", cid);
    free(cid);
    int found = 0;
    for (size_t j = 0; j < n_results; j++)
      if (strcmp(results[j].key, key) == 0) {
        found++;
        cr_expect_eq(results[j].partition, atoi(named), "%s: result on %d, the command named %s", key,
                     results[j].partition, named);
      }
    cr_expect_eq(found, 1, "%s", key);
  }
  tk_records_free(cmds, n_cmds);
  tk_records_free(results, n_results);

  /* Each replica read its own replies only: about a third of the bytes each,
   * and together every result exactly once. */
  double read[N_REPLICAS], sum = 0, records = 0;
  for (int i = 0; i < N_REPLICAS; i++) {
    read[i] = tk_metric(ports[i], "command_results_read_bytes_total");
    records += tk_metric(ports[i], "command_results_read_total");
    cr_expect_eq(tk_metric(ports[i], "command_reply_partitions"), 2, "replica %d holds 6/3 partitions", i);
    sum += read[i];
    fprintf(stderr, "replica %d read %.0f of %.0f result bytes (%.0f%%)\n", i, read[i], total, 100 * read[i] / total);
  }
  for (int i = 0; i < N_REPLICAS; i++) {
    cr_expect_gt(read[i], 0, "replica %d read nothing", i);
    cr_expect_lt(read[i], 0.6 * total, "replica %d read %.0f of %.0f bytes: others' replies too", i, read[i], total);
  }
  cr_expect_eq(sum, total, "the replicas read %.0f bytes, command-results holds %.0f", sum, total);
  cr_expect_eq(records, N_ROUTED);
}

/* The value of the result keyed key on command-results (malloc'd) and its
 * partition, awaited (bounded: 60 s); NULL when it never came. */
static char *await_result(const char *key, int32_t *partition) {
  char *value = NULL;
  for (int tries = 0; !value && tries < 300; tries++) {
    size_t n;
    tk_record_t *r = read_topic("command-results", &n);
    for (size_t i = 0; i < n && !value; i++)
      if (r[i].key && strcmp(r[i].key, key) == 0) {
        value = strdup(r[i].value);
        *partition = r[i].partition;
      }
    tk_records_free(r, n);
    if (!value) nap(200);
  }
  return value;
}

Test(ingress, a_reply_routed_to_a_replica_that_died_before_reading_it_is_not_lost) {
  const char *extra[] = {"TOPIC_PARTITIONS=6", NULL};
  start_replicas(2, extra);
  /* Replica 0 takes a command over HTTP; its result cannot be read before
   * the test lets it (the open transaction), and the test kills replica 0
   * first: the reply was routed to a replica that died before reading it. */
  rd_kafka_t *holder = hold_results(6);
  post_t post = {.port = ports[0], .command_id = "orphan"};
  cr_assert_eq(pthread_create(&post.thread, NULL, post_main, &post), 0);
  int32_t named = -1;
  for (int tries = 0; named < 0 && tries < 300; tries++) {
    size_t n;
    tk_record_t *cmds = read_topic("commands", &n);
    for (size_t i = 0; i < n; i++)
      if (commands_with_id(&cmds[i], 1, "orphan")) {
        const char *h = header(&cmds[i], CQRS_REPLY_PARTITION_HEADER);
        cr_assert_not_null(h, "an HTTP command without %s", CQRS_REPLY_PARTITION_HEADER);
        named = atoi(h);
      }
    tk_records_free(cmds, n);
    if (named < 0) nap(100);
  }
  cr_assert_geq(named, 0, "replica 0 never produced the command");
  tk_stop(pids[0], SIGKILL);
  pids[0] = 0;
  pthread_join(post.thread, NULL);
  cr_expect_neq(post.r.status, 201, "replica 0 answered before it could have read the result: %s",
                post.r.body ? post.r.body : "");
  tk_response_cleanup(&post.r);
  release_results(holder);

  /* The result is not lost: a Kafka client reading command-results finds it,
   * on the partition replica 0 named (decided by whichever replica owns the
   * aggregate's partition, after a rebalance if that was replica 0). */
  int32_t partition = -1;
  char *result = await_result("default/orphan", &partition);
  cr_assert_not_null(result, "no result on command-results for the orphaned command");
  cr_expect_eq(partition, named);
  cr_expect_eq(tk_json_int(result, "status"), 201, "%s", result);

  /* The client retries with the same commandId on the live replica and gets
   * the original outcome: 200 and the first result's event, decided once. */
  /* Until the group moves the dead replica's command partitions (its session
   * timeout), a command of an aggregate it owned waits and times out (503):
   * the client retries, as any client of a 503 does. */
  post_t retry = {.port = ports[1], .command_id = "orphan"};
  post_main(&retry);
  for (int tries = 0; retry.r.status == 503 && tries < 10; tries++) {
    tk_response_cleanup(&retry.r);
    post_main(&retry);
  }
  cr_expect_eq(retry.r.status, 200, "%d %s", retry.r.status, retry.r.body ? retry.r.body : "");
  char *first_event = tk_json_string(result, "eventId"), *event = tk_json_string(retry.r.body, "eventId");
  cr_assert_not_null(first_event, "%s", result);
  cr_expect_str_eq(event ? event : "", first_event);
  cr_expect_eq(tk_json_int(retry.r.body, "version"), tk_json_int(result, "version"));
  free(first_event);
  free(event);
  tk_response_cleanup(&retry.r);
  free(result);
  size_t n_events;
  tk_record_t *events = read_topic("events", &n_events);
  cr_expect_eq(caused_by(events, n_events, "orphan"), 1, "the retry decided the command again");
  tk_records_free(events, n_events);
}

Test(ingress, a_replica_holding_no_results_partition_is_not_ready_and_takes_no_command) {
  /* One command-results partition: the first replica holds it (a sticky
   * assignment keeps it there), the second can hold none. */
  const char *extra[] = {"TOPIC_PARTITIONS=1", NULL};
  start_replicas(1, extra);
  cr_expect_eq(tk_metric(ports[0], "command_reply_partitions"), 1);
  char log[512];
  tk_env_t second = env;
  second.command_port = ports[1];
  pids[1] = tk_spawn(&second, TK_COMMAND, extra, log);
  /* Not ready, and for this reason (the others come first: once it names
   * the ingress, the rest of the replica is ready). */
  tk_response_t r = {0};
  bool named = false;
  for (int i = 0; i < 600 && !named; i++) {
    tk_response_cleanup(&r);
    tk_http("GET", ports[1], "/readyz", NULL, 0, &r);
    named = r.status == 503 && r.body && strstr(r.body, "no command-results partition");
    if (!named) nap(50);
  }
  cr_assert(named, "readyz: %d %s", r.status, r.body ? r.body : "");
  tk_response_cleanup(&r);
  const char *json = "{\"commandType\":\"CreateUser\",\"commandId\":\"unheard\",\"email\":\"u@example.com\",\"name\":\"U\"}";
  cr_assert(tk_http("POST", ports[1], "/v1/commands", json, strlen(json), &r));
  cr_expect_eq(r.status, 503, "%s", r.body);
  cr_expect_not_null(strstr(r.headers, "Retry-After: 1"), "%s", r.headers);
  cr_expect_not_null(r.body && strstr(r.body, "not ready"), "%s", r.body);
  tk_response_cleanup(&r);
  /* The first replica takes it; nothing of the refused attempt reached Kafka. */
  size_t n_cmds;
  tk_record_t *cmds = read_topic("commands", &n_cmds);
  cr_expect_eq(commands_with_id(cmds, n_cmds, "unheard"), 0);
  tk_records_free(cmds, n_cmds);
  cr_assert(tk_http("POST", ports[0], "/v1/commands", json, strlen(json), &r));
  cr_expect_eq(r.status, 201, "%s", r.body);
  tk_response_cleanup(&r);
}
