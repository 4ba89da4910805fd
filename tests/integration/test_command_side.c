/* The command side against the real broker: exactly once under a crash, one
 * event for a command sent many times at once, fencing, Kafka ingress. */
#include "testkit.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

static tk_env_t env, env_b; /* env_b: a second command-svc in the same group */
static pid_t pid_a, pid_b;

static void nap(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void setup(void) {
  tk_env_init(&env);
  env_b = env;
  env_b.command_port = tk_free_port();
}

static void teardown(void) {
  if (pid_a > 0) tk_stop(pid_a, SIGTERM);
  if (pid_b > 0) tk_stop(pid_b, SIGTERM);
}

TestSuite(command_side, .init = setup, .fini = teardown, .timeout = 600);

/* Sends a command until it gets a definite answer (not 503, not a dead
 * connection), alternating instances like a client behind a load balancer.
 * Retrying with the same commandId is what makes this safe. */
/* As send_until_answered; *retries (may be NULL) counts the tries that got
 * no answer or a 503 before the one that did. */
static int send_counting_retries(const char *json, int first_port, int other_port, tk_response_t *r, int *retries) {
  for (int attempt = 0; attempt < 200; attempt++) {
    int port = attempt % 2 ? other_port : first_port;
    if (tk_http("POST", port, "/v1/commands", json, strlen(json), r) && r->status != 503) return r->status;
    tk_response_cleanup(r);
    if (retries) (*retries)++;
    nap(50); /* client backoff before the retry */
  }
  return 0;
}

static int send_until_answered(const char *json, int first_port, int other_port, tk_response_t *r) {
  return send_counting_retries(json, first_port, other_port, r, NULL);
}

#define N_AGGREGATES 1000
#define N_CLIENTS 8
#define STEPS 3

static atomic_int done_commands;
static atomic_int bad_answers;

static void *client_main(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int i = t; i < N_AGGREGATES; i += N_CLIENTS) {
    char json[512], cid[64], agg[64] = "";
    for (int step = 0; step < STEPS; step++) {
      if (step == 0) {
        snprintf(cid, sizeof cid, "create-%d", i);
        snprintf(json, sizeof json,
                 "{\"commandType\":\"CreateUser\",\"commandId\":\"%s\",\"email\":\"u%d@example.com\",\"name\":\"U %d\"}",
                 cid, i, i);
      } else {
        snprintf(cid, sizeof cid, "update-%d-%d", i, step);
        snprintf(json, sizeof json,
                 "{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"%s\",\"aggregateId\":\"%s\","
                 "\"changes\":{\"name\":\"U %d step %d\"}}",
                 cid, agg, i, step);
      }
      tk_response_t r;
      int status = send_until_answered(json, i % 2 ? env.command_port : env_b.command_port,
                                       i % 2 ? env_b.command_port : env.command_port, &r);
      /* 201 the first time; 200 when a retry finds the first outcome. */
      if (status != 201 && status != 200) {
        fprintf(stderr, "command %s answered %d: %s\n", cid, status, r.body ? r.body : "");
        atomic_fetch_add(&bad_answers, 1);
      }
      if (step == 0) {
        char *id = tk_json_string(r.body, "aggregateId");
        snprintf(agg, sizeof agg, "%s", id ? id : "missing");
        free(id);
      }
      tk_response_cleanup(&r);
      atomic_fetch_add(&done_commands, 1);
    }
  }
  return NULL;
}

static int by_offset(const void *a, const void *b) {
  const tk_record_t *x = a, *y = b;
  int s = strcmp(x->ce_subject, y->ce_subject);
  if (s) return s;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int by_key(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(command_side, every_accepted_command_has_exactly_one_event_across_a_sigkill) {
  pid_a = tk_start(&env, TK_COMMAND, NULL);
  pid_b = tk_start(&env_b, TK_COMMAND, NULL);
  pthread_t threads[N_CLIENTS];
  for (int t = 0; t < N_CLIENTS; t++) pthread_create(&threads[t], NULL, client_main, (void *)(intptr_t)t);

  int total = N_AGGREGATES * STEPS;
  while (atomic_load(&done_commands) < total / 3) nap(20);
  tk_stop(pid_a, SIGKILL); /* mid-run, mid-transaction perhaps */
  fprintf(stderr, "killed instance A after %d commands\n", atomic_load(&done_commands));
  int at_kill = atomic_load(&done_commands);
  while (atomic_load(&done_commands) < at_kill + 200) nap(20); /* B carries on alone */
  pid_a = tk_start(&env, TK_COMMAND, NULL);
  for (int t = 0; t < N_CLIENTS; t++) pthread_join(threads[t], NULL);
  cr_assert_eq(atomic_load(&bad_answers), 0, "some commands got no 200/201 answer");

  char topic[128];
  size_t n_events;
  tk_record_t *ev = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n_events);
  cr_expect_eq(n_events, (size_t)total, "expected %d events, found %zu", total, n_events);
  qsort(ev, n_events, sizeof *ev, by_offset);
  /* Per aggregate, in log order: versions 1..n without gap or repeat (events of
   * one aggregate share a partition, so offsets order them). */
  size_t aggregates = 0;
  for (size_t i = 0; i < n_events;) {
    size_t j = i;
    while (j < n_events && strcmp(ev[j].ce_subject, ev[i].ce_subject) == 0) {
      cr_assert_eq(ev[j].version, (int64_t)(j - i + 1), "aggregate %s: event %zu has version %lld",
                   ev[i].ce_subject, j - i + 1, (long long)ev[j].version);
      cr_assert_eq(ev[j].partition, ev[i].partition, "aggregate %s spans partitions", ev[i].ce_subject);
      j++;
    }
    cr_expect_eq(j - i, (size_t)STEPS, "aggregate %s has %zu events", ev[i].ce_subject, j - i);
    aggregates++;
    i = j;
  }
  cr_expect_eq(aggregates, (size_t)N_AGGREGATES);
  /* Every command caused exactly one event. */
  char **causes = calloc(n_events, sizeof *causes);
  for (size_t i = 0; i < n_events; i++) causes[i] = ev[i].ce_causationid;
  qsort(causes, n_events, sizeof *causes, by_key);
  for (size_t i = 1; i < n_events; i++)
    cr_assert(strcmp(causes[i - 1], causes[i]) != 0, "command %s caused two events", causes[i]);
  free(causes);
  tk_records_free(ev, n_events);

  /* Every command record has exactly one result record, but one the loop met
   * past its deadline (processor.h: a copy its client gave up on, answered
   * 503, and sent again; the loop drops it): no commandId without a result,
   * none with more results than records, and a record without one only when
   * the instances say they dropped some (commands_expired_total). */
  size_t n_cmds, n_results;
  tk_record_t *cmds = tk_kafka_read_all(&env, tk_topic(&env, "commands", topic), &n_cmds);
  tk_record_t *res = tk_kafka_read_all(&env, tk_topic(&env, "command-results", topic), &n_results);
  char **a = calloc(n_cmds, sizeof *a), **b = calloc(n_results, sizeof *b);
  /* AUTH=off: tenant "default"; results are keyed "<tenant>/<commandId>". */
  for (size_t i = 0; i < n_cmds; i++) {
    char *cid = tk_json_string(cmds[i].value, "commandId");
    cr_assert_not_null(cid);
    cr_assert_gt(asprintf(&a[i], "default/%s", cid), 0);
    free(cid);
  }
  for (size_t i = 0; i < n_results; i++) b[i] = res[i].key;
  qsort(a, n_cmds, sizeof *a, by_key);
  qsort(b, n_results, sizeof *b, by_key);
  size_t missing = 0, j = 0;
  for (size_t i = 0; i < n_cmds;) { /* a and b in step, one commandId at a time */
    size_t records = 0, results = 0;
    const char *key = a[i];
    while (i < n_cmds && strcmp(a[i], key) == 0) i++, records++;
    while (j < n_results && strcmp(b[j], key) < 0) {
      cr_assert_fail("result %s has no command record", b[j]);
      j++;
    }
    while (j < n_results && strcmp(b[j], key) == 0) j++, results++;
    cr_assert_geq(results, 1, "command %s (%zu records) has no result", key, records);
    cr_assert_leq(results, records, "command %s: %zu results for %zu records", key, results, records);
    missing += records - results;
  }
  cr_assert_eq(j, n_results, "result %s has no command record", j < n_results ? b[j] : "");
  double expired = tk_metric(env.command_port, "commands_expired_total") +
                   tk_metric(env_b.command_port, "commands_expired_total");
  cr_log_info("%zu command records, %zu results; %zu records past their deadline (the instances counted %.0f)",
              n_cmds, n_results, missing, expired);
  cr_expect(missing == 0 || expired > 0, "%zu command records have no result, and no instance dropped one", missing);
  for (size_t i = 0; i < n_cmds; i++) free(a[i]);
  free(a), free(b);
  tk_records_free(cmds, n_cmds);
  tk_records_free(res, n_results);
}

static const char *same_json =
    "{\"commandType\":\"CreateUser\",\"commandId\":\"same-5\",\"email\":\"same@example.com\",\"name\":\"Same\"}";
static atomic_int gate;
static char *same_event_ids[5];
static int same_status[5];

/* Waits (bounded: 30 s) until the two replicas' HTTP ingresses hold every
 * command-results partition between them: the group that routes replies has
 * settled. (While a partition moves, a reply routed to it is not heard by the
 * replica that waits for it: that client gets 503 and its retry the first
 * outcome, 200, as ingress.h says; this test is about something else.) */
static void await_replies_settled(void) {
  for (int tries = 0; tries < 300; tries++) {
    double a = tk_metric(env.command_port, "command_reply_partitions"),
           b = tk_metric(env_b.command_port, "command_reply_partitions");
    if (a >= 1 && b >= 1 && a + b == 3) return;
    nap(100);
  }
  cr_assert_fail("the replicas' replies group did not settle on the 3 command-results partitions");
}

static atomic_int same_retries;

static void *send_same(void *arg) {
  int i = (int)(intptr_t)arg;
  atomic_fetch_add(&gate, 1);
  while (atomic_load(&gate) < 5) {
  } /* start together */
  tk_response_t r;
  int retries = 0;
  same_status[i] = send_counting_retries(same_json, i % 2 ? env.command_port : env_b.command_port,
                                         i % 2 ? env_b.command_port : env.command_port, &r, &retries);
  atomic_fetch_add(&same_retries, retries);
  same_event_ids[i] = tk_json_string(r.body, "eventId");
  tk_response_cleanup(&r);
  return NULL;
}

Test(command_side, the_same_command_id_five_times_at_once_appends_one_event) {
  pid_a = tk_start(&env, TK_COMMAND, NULL);
  pid_b = tk_start(&env_b, TK_COMMAND, NULL);
  await_replies_settled();
  pthread_t t[5];
  for (int i = 0; i < 5; i++) pthread_create(&t[i], NULL, send_same, (void *)(intptr_t)i);
  for (int i = 0; i < 5; i++) pthread_join(t[i], NULL);
  int created = 0;
  for (int i = 0; i < 5; i++) {
    cr_expect(same_status[i] == 201 || same_status[i] == 200, "answer %d: %d", i, same_status[i]);
    created += same_status[i] == 201;
    cr_expect(same_event_ids[i] && same_event_ids[0] && strcmp(same_event_ids[i], same_event_ids[0]) == 0,
              "answers name different events");
  }
  /* The first outcome reaches its sender: each replica names one
   * command-results partition for every send of a commandId, so the 201 is
   * read before the replays decided after it (it was not, when the sends were
   * spread round robin over partitions and a 200 of the same transaction was
   * read first; command-svc/ingress.c pick_reply_partition). A client that
   * retried after a 503 may have lost its first answer, so then 200s only
   * are right too. */
  if (atomic_load(&same_retries) == 0)
    cr_expect_geq(created, 1, "nobody retried, yet no answer was the 201 of the first outcome");
  char topic[128];
  size_t n;
  tk_record_t *ev = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n);
  size_t matching = 0;
  for (size_t i = 0; i < n; i++) matching += ev[i].ce_causationid && strcmp(ev[i].ce_causationid, "same-5") == 0;
  cr_expect_eq(matching, 1, "%zu events for one command", matching);
  tk_records_free(ev, n);
  for (int i = 0; i < 5; i++) free(same_event_ids[i]);
}

/* Data records in every partition of topic as a read_uncommitted consumer
 * sees them: aborted transactions' records included. */
static size_t count_uncommitted(const char *topic) {
  char errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", env.brokers, errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "group.id", "count-uncommitted", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "isolation.level", "read_uncommitted", errstr, sizeof errstr);
  rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof errstr);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
  cr_assert_not_null(rk, "%s", errstr);
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3);
  for (int p = 0; p < 3; p++) rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
  size_t n = 0;
  int eof = 0;
  for (int idle = 0; eof < 3 && idle < 300; ) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
    if (!m) {
      idle++;
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) eof++;
    else if (!m->err) n++;
    rd_kafka_message_destroy(m);
  }
  cr_assert_eq(eof, 3, "could not read %s to its end", topic);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return n;
}

/* Waits (bounded) until pid stops (SIGSTOP) or exits; true when it stopped. */
static bool await_stopped(pid_t pid, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG | WUNTRACED);
    if (r == pid) return WIFSTOPPED(status);
    nap(50);
  }
  return false;
}

/* Waits (bounded) for pid to exit; its wait status, or -1 when it is still running. */
static int await_exit(pid_t pid, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 50) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    nap(50);
  }
  return -1;
}

/* The value of the command-results record keyed key (malloc'd), awaited
 * (bounded: 90 s, a takeover from a zombie with a transaction open waits for
 * the broker to abort it); *count gets how many such records there are. */
static char *await_result_of(const char *key, size_t *count) {
  char *value = tk_await_result(&env, key, 90000, count);
  cr_assert_not_null(value, "no result keyed %s on command-results", key);
  return value;
}

/* True when the file at path has a line containing both a and b. */
static bool log_has(const char *path, const char *a, const char *b) {
  FILE *f = fopen(path, "r");
  if (!f) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof line, f)) found = strstr(line, a) && strstr(line, b);
  fclose(f);
  return found;
}

/* A real zombie: two instances with their own transactional ids. A takes a
 * command and stops itself (SIGSTOP from inside, COMMAND_TEST_HOLD_TXN, so
 * the freeze falls at the same point every run): hold "stop" with the
 * transaction open, its event on the broker; "stop-before" with the batch in
 * hand, before the transaction begins. B takes the partition over past the
 * session timeout, decides the same command and goes on with the aggregate.
 * Woken (SIGCONT), A decides from its stale state and must not commit: it
 * exits 1 (fenced, README "exactly once"), or aborts its transaction when
 * the refusal is abortable. Read committed, the command has one event and one
 * result, B's, and the aggregate's versions run 1, 2; A's records are in the
 * log, aborted. */
static void zombie_scenario(const char *hold) {
  char zombie_hold[64];
  snprintf(zombie_hold, sizeof zombie_hold, "COMMAND_TEST_HOLD_TXN=0:1:%s", hold);
  const char *const zombie[] = {"COMMAND_LANES=1", zombie_hold, NULL};
  static const char *const one_lane[] = {"COMMAND_LANES=1", NULL};
  bool txn_open = strcmp(hold, "stop") == 0;
  pid_a = tk_start(&env, TK_COMMAND, zombie); /* alone: it owns every partition */
  char commands[128], events[128], log[512];
  tk_topic(&env, "commands", commands);
  tk_topic(&env, "events", events);
  tk_log_path(&env, TK_COMMAND, log);
  const char *key = "default/u-zombie";
  int32_t p = rd_kafka_msg_partitioner_murmur2(NULL, key, strlen(key), 3, NULL, NULL);
  tk_kafka_produce(&env, commands, p, key,
                   "{\"commandType\":\"CreateUser\",\"commandId\":\"zombie-1\",\"aggregateId\":\"u-zombie\","
                   "\"email\":\"z@example.com\",\"name\":\"Z\"}",
                   NULL);
  cr_assert(await_stopped(pid_a, 30000), "instance A did not stop itself (see %s)", log);
  size_t n;
  tk_record_t *ev = tk_kafka_read_all(&env, events, &n);
  tk_records_free(ev, n);
  cr_assert_eq(n, 0, "an event of A's transaction is visible read_committed");
  /* with the transaction open, its event is on the broker, hidden */
  cr_assert_eq(count_uncommitted(events) > 0, txn_open, "A's event on the broker while it is frozen");

  /* B joins; A is expelled after the session timeout; B decides the command. */
  pid_b = tk_start(&env_b, TK_COMMAND, one_lane);
  size_t results;
  char *first = await_result_of("default/zombie-1", &results);
  cr_expect_eq(tk_json_int(first, "status"), 201, "B's outcome: %s", first);
  cr_expect_eq(tk_json_int(first, "version"), 1, "%s", first);
  free(first);
  /* and goes on with the aggregate */
  const char *update = "{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"zombie-2\",\"aggregateId\":\"u-zombie\","
                       "\"changes\":{\"name\":\"Z2\"}}";
  tk_response_t r;
  int status = send_until_answered(update, env_b.command_port, env_b.command_port, &r);
  cr_expect_eq(status, 201, "B's update: %d %s", status, r.body ? r.body : "");
  cr_expect_eq(tk_json_int(r.body, "version"), 2, "%s", r.body ? r.body : "");
  tk_response_cleanup(&r);

  /* The zombie wakes up with its stale batch in hand. */
  kill(pid_a, SIGCONT);
  int exit_status = await_exit(pid_a, 20000);
  if (exit_status != -1) {
    pid_a = 0;
    fprintf(stderr, "zombie (%s): exited, status %d\n", hold, exit_status);
    cr_expect(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 1, "the woken zombie should exit 1, status %d",
              exit_status);
    cr_expect(log_has(log, "fatal Kafka error", "fenced"), "no fatal \"fenced\" error in %s", log);
  } else { /* still up: then its transaction must have been aborted, never committed */
    fprintf(stderr, "zombie (%s): stayed up\n", hold);
    cr_expect_geq(tk_metric(env.command_port, "transactions_total{outcome=\"aborted\",lane=\"0\"}"), 1,
                  "the woken zombie neither exited nor aborted its transaction");
  }
  cr_expect_leq(tk_metric(env.command_port, "transactions_total{outcome=\"committed\",lane=\"0\"}"), 0,
                "the zombie committed a transaction");

  /* Read committed: one event per command, B's, versions 1 and 2; one result each. */
  ev = tk_kafka_read_all(&env, events, &n);
  size_t ours = 0, z1 = 0, z2 = 0;
  for (size_t i = 0; i < n; i++) {
    if (!ev[i].key || strcmp(ev[i].key, key) != 0) continue;
    ours++;
    cr_expect_eq(ev[i].version, (int64_t)ours, "event %zu of the aggregate has version %lld", ours,
                 (long long)ev[i].version);
    z1 += ev[i].ce_causationid && strcmp(ev[i].ce_causationid, "zombie-1") == 0;
    z2 += ev[i].ce_causationid && strcmp(ev[i].ce_causationid, "zombie-2") == 0;
  }
  tk_records_free(ev, n);
  cr_expect_eq(ours, 2, "the aggregate has %zu events", ours);
  cr_expect_eq(z1, 1, "zombie-1 decided %zu times", z1);
  cr_expect_eq(z2, 1, "zombie-2 decided %zu times", z2);
  free(await_result_of("default/zombie-1", &results));
  cr_expect_eq(results, 1, "zombie-1 has %zu results", results);
  if (txn_open) /* the zombie decided and produced before it froze: its records are in the log, aborted */
    cr_expect_gt(count_uncommitted(events), n, "the zombie's transaction left nothing behind to hide");
  else /* its consumed offsets go first in a transaction: fenced before it produced anything */
    cr_expect_eq(count_uncommitted(events), n, "the woken zombie produced records before it was fenced");
}

/* Fenced by its producer epoch: the broker aborted the open transaction at
 * transaction.timeout.ms while A was frozen. */
Test(command_side, a_zombie_woken_mid_transaction_is_fenced_and_its_transaction_never_seen) {
  zombie_scenario("stop");
}

/* Fenced by the group metadata sent with the offsets (KIP-447): its
 * transaction begins after the wake-up, so no timeout aborted it. */
Test(command_side, a_zombie_woken_between_batches_cannot_commit_its_stale_batch) { zombie_scenario("stop-before"); }

/* The commands records carrying commandId command_id: *n gets how many; the
 * partition and key of each go to parts and keys (up to max; keys malloc'd, may be NULL). */
static size_t command_records(const char *command_id, int32_t *parts, char **keys, size_t max) {
  char topic[128];
  size_t n, found = 0;
  tk_record_t *cmds = tk_kafka_read_all(&env, tk_topic(&env, "commands", topic), &n);
  for (size_t i = 0; i < n; i++) {
    char *cid = tk_json_string(cmds[i].value, "commandId");
    if (cid && strcmp(cid, command_id) == 0) {
      if (found < max) {
        parts[found] = cmds[i].partition;
        keys[found] = cmds[i].key ? strdup(cmds[i].key) : NULL;
      }
      found++;
    }
    free(cid);
  }
  tk_records_free(cmds, n);
  return found;
}

Test(command_side, a_command_from_a_plain_kafka_producer_gets_its_result) {
  pid_a = tk_start(&env, TK_COMMAND, NULL);
  char topic[128], cmdline[1024];
  /* No key, and on a partition that does not own the aggregate (chosen, so
   * that forwarding is exercised every run): the owner of the aggregate's
   * partition must still be the one to decide it. */
  int32_t owner = rd_kafka_msg_partitioner_murmur2(NULL, "default/u-kcat", strlen("default/u-kcat"), 3, NULL, NULL);
  int32_t wrong = (owner + 1) % 3;
  snprintf(cmdline, sizeof cmdline,
           "echo '{\"commandType\":\"CreateUser\",\"commandId\":\"kcat-1\",\"aggregateId\":\"u-kcat\","
           "\"email\":\"k@example.com\",\"name\":\"K\"}' | kcat -P -b %s -t %s -p %d",
           env.brokers, tk_topic(&env, "commands", topic), (int)wrong);
  cr_assert_eq(system(cmdline), 0, "kcat failed: is it installed (deploy/local/deps.sh)?");
  char *result = tk_await_result(&env, "default/kcat-1", 10000, NULL);
  cr_assert_not_null(result, "no result for a command produced with kcat");
  cr_expect_eq(tk_json_int(result, "status"), 201, "%s", result);
  cr_expect_eq(tk_json_int(result, "version"), 1);
  free(result);
  /* Where things landed: kcat's record on the wrong partition, its forwarded
   * copy under the aggregate key on the owner's, the event on the owner's. */
  int32_t parts[4];
  char *keys[4] = {NULL};
  size_t copies = command_records("kcat-1", parts, keys, 4);
  cr_expect_eq(copies, 2, "kcat's record and its forwarded copy, found %zu", copies);
  size_t as_sent = 0, forwarded = 0;
  for (size_t i = 0; i < copies && i < 4; i++) {
    as_sent += parts[i] == wrong && !keys[i];
    forwarded += parts[i] == owner && keys[i] && strcmp(keys[i], "default/u-kcat") == 0;
    free(keys[i]);
  }
  cr_expect_eq(as_sent, 1, "kcat's keyless record on partition %d", (int)wrong);
  cr_expect_eq(forwarded, 1, "a copy keyed default/u-kcat on the aggregate's partition %d", (int)owner);
  size_t n;
  tk_record_t *ev = tk_kafka_read_all(&env, tk_topic(&env, "events", topic), &n);
  size_t found = 0;
  for (size_t i = 0; i < n; i++) {
    if (!ev[i].ce_causationid || strcmp(ev[i].ce_causationid, "kcat-1") != 0) continue;
    found++;
    cr_expect_eq(ev[i].partition, owner, "the event on partition %d, the aggregate's is %d", ev[i].partition, owner);
  }
  tk_records_free(ev, n);
  cr_expect_eq(found, 1);
}

Test(command_side, an_aggregate_state_record_from_before_tenancy_is_restored_as_tenant_default) {
  pid_a = tk_start(&env, TK_COMMAND, NULL); /* makes the topics */
  tk_stop(pid_a, SIGTERM);
  /* As command-svc wrote it before tenancy: key = the bare aggregate id, no
   * tenant or aggregateId in the value, on the bare id's partition. */
  char topic[128];
  const char *old = "{\"aggregateType\":\"user\",\"version\":3,\"state\":{\"userId\":\"u-old\","
                    "\"email\":\"old@example.com\",\"name\":\"Old\",\"createdAt\":\"2026-01-01T00:00:00.000Z\","
                    "\"updatedAt\":\"2026-01-01T00:00:00.000Z\"},\"recent\":[]}";
  int32_t p = rd_kafka_msg_partitioner_murmur2(NULL, "u-old", 5, 3, NULL, NULL);
  tk_kafka_produce(&env, tk_topic(&env, "aggregate-state", topic), p, "u-old", old, NULL);
  /* The first start after the upgrade, with one lane, moves the record to its
   * aggregate's partition; from then on any lane of any replica finds it. */
  static const char *const one_lane[] = {"COMMAND_LANES=1", NULL};
  pid_a = tk_start(&env, TK_COMMAND, one_lane);
  tk_stop(pid_a, SIGTERM);
  pid_a = tk_start(&env, TK_COMMAND, NULL);
  char *body = tk_command(&env, 201,
                          "{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"after-tenancy\","
                          "\"aggregateId\":\"u-old\",\"expectedVersion\":3,\"changes\":{\"name\":\"New\"}}");
  cr_expect_eq(tk_json_int(body, "version"), 4, "%s", body);
  free(body);
  /* and its new state record is tenant default's, under the aggregate key */
  size_t n;
  bool found = false;
  tk_record_t *st = tk_kafka_read_all(&env, topic, &n);
  int64_t last_version = 0;
  bool old_key_live = false;
  for (size_t i = 0; i < n; i++) {
    if (st[i].key && strcmp(st[i].key, "u-old") == 0) old_key_live = st[i].value != NULL; /* moved: a tombstone */
    if (!st[i].key || strcmp(st[i].key, "default/u-old") != 0) continue;
    found = true;
    char *tenant = tk_json_string(st[i].value, "tenant"), *id = tk_json_string(st[i].value, "aggregateId");
    cr_expect_str_eq(tenant, "default");
    cr_expect_str_eq(id, "u-old");
    last_version = tk_json_int(st[i].value, "version"); /* 3 when moved, then 4 */
    free(tenant), free(id);
  }
  tk_records_free(st, n);
  cr_expect(found, "no aggregate-state record keyed default/u-old");
  cr_expect_eq(last_version, 4, "the latest state of default/u-old");
  cr_expect(!old_key_live, "the record from before tenancy was not replaced by a tombstone");
}

Test(command_side, refuses_to_start_when_the_aggregate_topics_disagree_on_partitions) {
  char topic[128], errstr[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", env.brokers, errstr, sizeof errstr);
  rd_kafka_t *admin = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(tk_topic(&env, "commands", topic), 2, 1, errstr, sizeof errstr);
  rd_kafka_queue_t *q = rd_kafka_queue_new(admin);
  rd_kafka_CreateTopics(admin, &nt, 1, NULL, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
  cr_assert(ev && !rd_kafka_event_error(ev), "could not create the 2-partition topic");
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_destroy(admin);

  char log[512];
  pid_t pid = tk_spawn(&env, TK_COMMAND, NULL, log); /* TOPIC_PARTITIONS=3 for the others */
  int status = tk_stop(pid, 0);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "command-svc should refuse to start, status %d", status);
  FILE *f = fopen(log, "r");
  cr_assert_not_null(f);
  char line[2048];
  bool said = false;
  while (fgets(line, sizeof line, f)) said |= strstr(line, "must have the same partition count") != NULL;
  fclose(f);
  cr_expect(said, "no clear message in %s", log);
}

#define N_OVERLAP 600

Test(command_side, overlapping_transactions_one_aborted_leave_each_command_once) {
  /* Two lanes commit side by side; lane 0 aborts its second transaction after
   * producing all of it (COMMAND_TEST_ABORT_TXN), as when the broker refuses
   * a commit. Its commands are consumed and decided again. */
  static const char *const lanes[] = {"COMMAND_LANES=2", "COMMAND_TEST_ABORT_TXN=0:2", NULL};
  pid_a = tk_start(&env, TK_COMMAND, lanes);
  char commands[128], results[128], events[128];
  tk_topic(&env, "commands", commands);
  for (int i = 0; i < N_OVERLAP; i++) {
    char key[64], json[256];
    snprintf(key, sizeof key, "default/ov-%d", i);
    snprintf(json, sizeof json,
             "{\"commandType\":\"CreateUser\",\"commandId\":\"ov-c%d\",\"aggregateId\":\"ov-%d\","
             "\"email\":\"ov%d@example.com\",\"name\":\"O %d\"}", i, i, i, i);
    int32_t p = rd_kafka_msg_partitioner_murmur2(NULL, key, strlen(key), 3, NULL, NULL);
    tk_kafka_produce(&env, commands, p, key, json, NULL);
  }
  /* Every command answered exactly once, 201 (a repeat of an aborted one
   * would answer 200 from the idempotency window, or twice). */
  tk_topic(&env, "command-results", results);
  int answered = 0, twice = 0, not_created = 0;
  for (int tries = 0; tries < 300; tries++) {
    size_t n;
    tk_record_t *res = tk_kafka_read_all(&env, results, &n);
    static int seen[N_OVERLAP];
    memset(seen, 0, sizeof seen);
    answered = twice = not_created = 0;
    for (size_t i = 0; i < n; i++) {
      int c;
      if (!res[i].key || sscanf(res[i].key, "default/ov-c%d", &c) != 1 || c < 0 || c >= N_OVERLAP) continue;
      if (seen[c]++) twice++;
      else answered++;
      if (tk_json_int(res[i].value, "status") != 201) not_created++;
    }
    tk_records_free(res, n);
    if (answered == N_OVERLAP) break;
    nap(100);
  }
  cr_assert_eq(answered, N_OVERLAP, "commands answered");
  cr_expect_eq(twice, 0, "commands answered twice");
  cr_expect_eq(not_created, 0, "commands not answered 201");
  /* Each command's event is in the log once; the aborted transaction's are
   * there too, but only for a read_uncommitted reader. */
  tk_topic(&env, "events", events);
  size_t n;
  tk_record_t *ev = tk_kafka_read_all(&env, events, &n);
  int per_command[N_OVERLAP] = {0}, ours = 0;
  for (size_t i = 0; i < n; i++) {
    int c;
    if (ev[i].ce_causationid && sscanf(ev[i].ce_causationid, "ov-c%d", &c) == 1 && c >= 0 && c < N_OVERLAP) {
      per_command[c]++;
      ours++;
    }
  }
  tk_records_free(ev, n);
  int wrong = 0;
  for (int c = 0; c < N_OVERLAP; c++) wrong += per_command[c] != 1;
  cr_expect_eq(wrong, 0, "commands without exactly one event");
  cr_expect_eq(ours, N_OVERLAP);
  cr_expect_gt(count_uncommitted(events), n, "the aborted transaction wrote no event at all");
  cr_expect_geq(tk_metric(env.command_port, "transactions_total{outcome=\"aborted\",lane=\"0\"}"), 1);
  cr_expect_geq(tk_metric(env.command_port, "transactions_total{outcome=\"committed\",lane=\"1\"}"), 1);
}
