/* HTTP command ingress and the command-results reader. */
#include "ingress.h"
#include "decider.h"
#include "processor.h"

#include "cqrs/alloc.h"
#include "cqrs/command.h"
#include "cqrs/kafka.h"
#include "cqrs/map.h"
#include "cqrs/ratelimit.h"
#include "cqrs/result.h"
#include "cqrs/util.h"
#include "cqrs/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everyone waiting on one commandId (the same command may be sent twice at once). */
typedef struct {
  cqrs_http_deferred_t **waiters;
  size_t n;
} waiting_t;

/* The consumer group of every replica's results reader (TOPIC_PREFIX first).
 * It never commits: a partition newly given is read from its end. */
#define REPLIES_GROUP "command-svc-replies"
/* Seconds a replica that cannot take a command asks the client to wait: a command round trip
 * takes milliseconds, so in a second the in-flight commands have turned over
 * many times; a longer wait would only idle the replica. */
#define RETRY_AFTER "1"

struct cqrs_ingress {
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  cqrs_metrics_t *metrics;
  cqrs_auth_t *auth;
  cqrs_ratelimit_t *limits; /* borrowed: each tenant's command rate (RATE_LIMIT_COMMANDS; 429 past it) */
  rd_kafka_t *producer;
  rd_kafka_t *results;
  char *t_commands, *t_results;
  int32_t n_commands; /* partitions of commands (and of the aggregate topics): the key's partition */
  pthread_mutex_t lock; /* guards pending and in_flight */
  cqrs_map_t *pending;  /* result key ("<tenant>/<commandId>") -> waiting_t */
  size_t in_flight;     /* waiters reserved or in pending: at most cfg->command_max_in_flight */
  cqrs_worker_t results_reader;
  char timeout_json[256];
  /* The command-results partitions the replies group gave this instance: the
   * only ones it reads, and the ones its commands name for their results. */
  pthread_mutex_t held_lock; /* guards held and n_held */
  int32_t *held;
  int n_held;
};

static void free_waiting(void *v) {
  waiting_t *w = v;
  for (size_t i = 0; i < w->n; i++) cqrs_http_deferred_release(w->waiters[i]);
  free(w->waiters);
  free(w);
}

/* n waiters are done (answered, timed out, or never registered). Lock held. */
static void release_slots(cqrs_ingress_t *ing, size_t n) {
  ing->in_flight -= n;
  cqrs_metrics_set(ing->metrics, "commands_in_flight", NULL, (double)ing->in_flight);
}

/* Takes one in-flight slot; false when all COMMAND_MAX_IN_FLIGHT are taken. Any thread. */
static bool reserve_slot(cqrs_ingress_t *ing) {
  pthread_mutex_lock(&ing->lock);
  bool ok = ing->in_flight < (size_t)ing->cfg->command_max_in_flight;
  if (ok) {
    ing->in_flight++;
    cqrs_metrics_set(ing->metrics, "commands_in_flight", NULL, (double)ing->in_flight);
  }
  pthread_mutex_unlock(&ing->lock);
  return ok;
}

/* Answers 503 with Retry-After: the replica holds as many commands awaiting
 * their results as it may. Nothing was produced. Loop thread. */
static void reply_overloaded(cqrs_ingress_t *ing, cqrs_http_req_t *req) {
  char msg[200];
  snprintf(msg, sizeof msg,
           "command-svc is overloaded: %d commands already await their results (COMMAND_MAX_IN_FLIGHT); the "
           "command was not taken: retry after Retry-After seconds",
           ing->cfg->command_max_in_flight);
  cqrs_metrics_add(ing->metrics, "commands_overloaded_total", NULL, 1);
  cqrs_http_req_add_header(req, "Retry-After", RETRY_AFTER);
  cqrs_http_reply_error(req, 503, msg, NULL);
}

/* Answers everyone waiting on result key key. Any thread. */
static void answer(cqrs_ingress_t *ing, const char *key, int status, const char *json, size_t len) {
  pthread_mutex_lock(&ing->lock);
  waiting_t *w = cqrs_map_take(ing->pending, key);
  if (w) release_slots(ing, w->n);
  pthread_mutex_unlock(&ing->lock);
  if (!w) return;
  /* a 429 of the command loop's rate limit: its retryAfter as the header */
  char secs[24];
  const char *retry[] = {"Retry-After", secs, NULL}, *const *headers = NULL;
  if (status == 429) {
    int64_t retry_s = cqrs_result_retry_after(json, len);
    snprintf(secs, sizeof secs, "%lld", (long long)(retry_s > 0 ? retry_s : 1));
    headers = retry;
  }
  for (size_t i = 0; i < w->n; i++) cqrs_http_deferred_complete_headers(w->waiters[i], status, headers, json, len);
  free(w->waiters);
  free(w);
}

typedef struct {
  cqrs_ingress_t *ing;
  cqrs_http_deferred_t *d;
} drop_t;

static bool drop_waiter(const char *key, void *value, void *ctx) {
  (void)key;
  waiting_t *w = value;
  drop_t *drop = ctx;
  for (size_t i = 0; i < w->n; i++) {
    if (w->waiters[i] != drop->d) continue;
    cqrs_http_deferred_release(w->waiters[i]);
    w->waiters[i] = w->waiters[--w->n];
    release_slots(drop->ing, 1);
    break;
  }
  return w->n == 0;
}

/* A waiter timed out (loop thread): forget it. The map is keyed by result key,
 * which d does not know, so scan it: it holds only commands in flight. */
static void timeout_cb(cqrs_http_deferred_t *d, void *ctx) {
  cqrs_ingress_t *ing = ctx;
  cqrs_metrics_add(ing->metrics, "command_timeouts_total", NULL, 1);
  drop_t drop = {ing, d};
  pthread_mutex_lock(&ing->lock);
  cqrs_map_filter(ing->pending, drop_waiter, &drop);
  pthread_mutex_unlock(&ing->lock);
}

static void delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *ctx) {
  (void)rk;
  cqrs_ingress_t *ing = ctx;
  char *result_key = m->_private;
  if (m->err) {
    char tenant[CQRS_TENANT_MAX + 1];
    const char *command_id = result_key;
    cqrs_tenant_key_split(result_key, strlen(result_key), tenant, &command_id);
    cqrs_log_warn(ing->log, "command not accepted by Kafka", "commandId", command_id, "error",
                  rd_kafka_err2str(m->err), NULL);
    cqrs_error_t err;
    cqrs_error_set(&err, CQRS_ERR_UNAVAILABLE, NULL, "Kafka did not take the command: %s", rd_kafka_err2str(m->err));
    cqrs_result_t r = {.status = 503, .command_id = command_id, .error = &err};
    size_t len;
    char *json = cqrs_result_to_json(&r, &len);
    answer(ing, result_key, 503, json, len);
    bson_free(json);
  }
  free(result_key);
}

/* A command-results partition this instance reads, for the command of
 * aggregate key key and result key result_key: the aggregate's own partition
 * number when we hold it (the lane's transaction then touches partition p of
 * events, aggregate-state and command-results only, fewer partitions to
 * register and mark at commit), else one of those we hold chosen by the result
 * key; -1 while we hold none. Every send of one commandId to this replica
 * names the same partition, so their results come back in the order they
 * were decided: the first outcome (201) before the replays (200) decided
 * after it. (Round robin spread them over partitions, and a 200 of the same
 * batch read before the 201 answered everyone waiting.) Any thread. */
static int32_t pick_reply_partition(cqrs_ingress_t *ing, const char *key, const char *result_key) {
  int32_t own = ing->n_commands > 0
                    ? rd_kafka_msg_partitioner_murmur2(NULL, key, strlen(key), ing->n_commands, NULL, NULL)
                    : -1;
  pthread_mutex_lock(&ing->held_lock);
  int32_t p = ing->n_held ? rd_kafka_msg_partitioner_murmur2(NULL, result_key, strlen(result_key), ing->n_held,
                                                                NULL, NULL)
                          : -1;
  if (p >= 0) p = ing->held[p];
  for (int i = 0; i < ing->n_held; i++)
    if (ing->held[i] == own) p = own;
  pthread_mutex_unlock(&ing->held_lock);
  return p;
}

/* The headers of the command record: the credential, the trace, the
 * partition of command-results to put its result on and the deadline past
 * which it is not decided (the moment this ingress answers 503). */
static rd_kafka_headers_t *command_headers(cqrs_http_req_t *req, int32_t reply_partition, int64_t deadline_ms) {
  static const struct {
    const char *http, *kafka;
  } carry[] = {{"Authorization", CQRS_COMMAND_AUTH_HEADER}, {"traceparent", "traceparent"}};
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new(3);
  for (size_t i = 0; i < sizeof carry / sizeof *carry; i++) {
    const char *v = cqrs_http_req_header(req, carry[i].http);
    if (v) rd_kafka_header_add(hdrs, carry[i].kafka, -1, v, -1);
  }
  char p[24];
  snprintf(p, sizeof p, "%d", (int)reply_partition);
  rd_kafka_header_add(hdrs, CQRS_REPLY_PARTITION_HEADER, -1, p, -1);
  snprintf(p, sizeof p, "%lld", (long long)deadline_ms);
  rd_kafka_header_add(hdrs, CQRS_COMMAND_DEADLINE_HEADER, -1, p, -1);
  return hdrs;
}

static void post_command_cb(cqrs_http_req_t *req, void *ctx) {
  cqrs_ingress_t *ing = ctx;
  cqrs_principal_t who;
  if (!cqrs_auth_http(ing->auth, req, CQRS_SCOPE_COMMANDS_WRITE, &who)) return; /* it answered 401/403 */
  if (!who.tenant[0]) {
    cqrs_http_reply_error(req, 403, "a platform administrator credential names no tenant: use a tenant's", NULL);
    return;
  }
  const char *tenant = who.tenant;
  /* the command loop takes the token when AUTH is on (cqrs_ingress_new) */
  if (!cqrs_ratelimit_http_gate(ing->limits, req, tenant, ing->metrics, !cqrs_auth_enabled(ing->auth)))
    return; /* it answered 429 */
  size_t len;
  const char *body = cqrs_http_req_body(req, &len);
  cqrs_command_t cmd;
  cqrs_error_t err = {0};
  const cqrs_decider_t *decider;
  const cqrs_command_spec_t *spec;
  /* The checks the command loop makes, so bad input gets its 400 (or 403 for
   * a tenantId naming another tenant) here without a trip through Kafka. */
  if (!cqrs_decider_prepare(&cmd, body, len, &decider, &spec, &err) ||
      !cqrs_command_check_tenant(&cmd, tenant, &err)) {
    char labels[160];
    snprintf(labels, sizeof labels, "type=\"%s\",status=\"%d\"", decider ? cmd.type : "unknown",
             cqrs_error_http_status(err.code));
    cqrs_metrics_add(ing->metrics, "commands_rejected_at_ingress_total", labels, 1);
    cqrs_http_reply_cqrs_error(req, &err);
    cqrs_command_cleanup(&cmd);
    return;
  }
  /* Its result comes back on a partition we read; holding none (between a
   * revocation and the next assignment, or not yet ready), we could not hear
   * it, so the command is not taken. */
  char *key = cqrs_tenant_key(tenant, cmd.aggregate_id);
  char *result_key = cqrs_result_key(tenant, cmd.command_id);
  char *json = NULL;
  int32_t reply_partition = pick_reply_partition(ing, key, result_key);
  if (reply_partition < 0) {
    cqrs_http_req_add_header(req, "Retry-After", RETRY_AFTER);
    cqrs_http_reply_error(req, 503,
                          "command-svc is not ready: it reads no command-results partition yet (its replies group "
                          "is rebalancing); the command was not taken: retry after Retry-After seconds",
                          NULL);
    goto done;
  }
  /* Read after its client gave up (an instance frozen with the request in its
   * socket, woken after the client's retry went elsewhere): nobody hears the
   * outcome, and taken now it could be decided a second time, after the
   * retry's outcome left the idempotency window (README, "Idempotent
   * commands"). Not taken; 499 for the log and the metrics only. */
  if (cqrs_http_req_client_gone(req)) {
    cqrs_metrics_add(ing->metrics, "commands_client_gone_total", NULL, 1);
    cqrs_log_info(ing->log, "the client closed its connection before its command was read: not taken",
                  "commandId", cmd.command_id ? cmd.command_id : "", "tenant", tenant, NULL);
    cqrs_http_reply_error(req, 499, "the client closed the connection before the command was read", NULL);
    goto done;
  }
  /* Past the cap, refuse before anything reaches Kafka, so latency stays
   * bounded by the cap instead of growing with the offered load. */
  if (!reserve_slot(ing)) {
    reply_overloaded(ing, req);
    goto done;
  }
  size_t json_len;
  json = cqrs_command_to_json(&cmd, &json_len);
  /* Register before producing: the result may come back before produce
   * returns. The deadline is taken first, so it is never after the 503. */
  int64_t deadline_ms = cqrs_time_now_ms() + ing->cfg->command_timeout_ms;
  cqrs_http_deferred_t *d = cqrs_http_req_defer(req, ing->cfg->command_timeout_ms, 503, ing->timeout_json,
                                                timeout_cb, ing);
  pthread_mutex_lock(&ing->lock);
  waiting_t *w = cqrs_map_get(ing->pending, result_key);
  if (!w) {
    w = cqrs_xcalloc(1, sizeof *w);
    cqrs_map_put(ing->pending, result_key, w);
  }
  w->waiters = cqrs_xrealloc(w->waiters, (w->n + 1) * sizeof *w->waiters);
  w->waiters[w->n++] = d;
  pthread_mutex_unlock(&ing->lock);

  rd_kafka_headers_t *hdrs = command_headers(req, reply_partition, deadline_ms);
  rd_kafka_resp_err_t e = rd_kafka_producev(
      ing->producer, RD_KAFKA_V_TOPIC(ing->t_commands), RD_KAFKA_V_KEY(key, strlen(key)),
      RD_KAFKA_V_VALUE(json, json_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
      RD_KAFKA_V_OPAQUE(cqrs_xstrdup(result_key)), RD_KAFKA_V_END);
  if (e) {
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    cqrs_error_set(&err, CQRS_ERR_UNAVAILABLE, NULL, "cannot queue the command for Kafka: %s", rd_kafka_err2str(e));
    cqrs_result_t r = {.status = 503, .command_id = cmd.command_id, .error = &err};
    size_t rlen;
    char *rjson = cqrs_result_to_json(&r, &rlen);
    answer(ing, result_key, 503, rjson, rlen);
    bson_free(rjson);
  }
done:
  free(key);
  free(result_key);
  bson_free(json);
  cqrs_command_cleanup(&cmd);
}

/* Adds parts' partitions to (assign) or takes them from (revoke) those the
 * instance holds, after forgetting all of them when replace; sets the gauge.
 * Results thread. */
static void update_held(cqrs_ingress_t *ing, const rd_kafka_topic_partition_list_t *parts, bool assign,
                        bool replace) {
  pthread_mutex_lock(&ing->held_lock);
  if (replace) ing->n_held = 0;
  for (int i = 0; i < parts->cnt; i++) {
    int32_t p = parts->elems[i].partition;
    int at = -1;
    for (int j = 0; j < ing->n_held && at < 0; j++)
      if (ing->held[j] == p) at = j;
    if (assign && at < 0) {
      ing->held = cqrs_xrealloc(ing->held, (size_t)(ing->n_held + 1) * sizeof *ing->held);
      ing->held[ing->n_held++] = p;
    } else if (!assign && at >= 0) {
      ing->held[at] = ing->held[--ing->n_held];
    }
  }
  int n = ing->n_held;
  pthread_mutex_unlock(&ing->held_lock);
  cqrs_metrics_set(ing->metrics, "command_reply_partitions", NULL, n);
}

/* The replies group's rebalances. A partition given to us is read from its
 * current end (its earlier results were awaited by someone else, or by no
 * one) and only then named in commands, so no result meant for us can come
 * before the offset we read from. One taken from us is no longer named
 * first. Cooperative (incremental) by default; the eager protocol works too
 * (partition.assignment.strategy may be overridden by KAFKA_*). Results thread. */
static void results_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                                 void *ctx) {
  cqrs_ingress_t *ing = ctx;
  bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  char count[16];
  snprintf(count, sizeof count, "%d", parts->cnt);
  rd_kafka_error_t *kerr = NULL;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < parts->cnt; i++) {
      rd_kafka_topic_partition_t *tp = &parts->elems[i];
      int64_t lo, hi;
      cqrs_error_t e = {0};
      if (cqrs_kafka_watermarks(rk, tp->topic, tp->partition, &lo, &hi, 5000, &e)) {
        tp->offset = hi;
      } else { /* librdkafka finds the end itself; a result in that gap would go unheard (the 503 timeout) */
        cqrs_log_warn(ing->log, "command-results end unknown: reading from where the broker says it ends", "error",
                      e.message, NULL);
        tp->offset = RD_KAFKA_OFFSET_END;
      }
    }
    if (cooperative) kerr = rd_kafka_incremental_assign(rk, parts);
    else rd_kafka_assign(rk, parts);
    if (!kerr) update_held(ing, parts, true, !cooperative);
    cqrs_log_info(ing->log, "command-results partitions assigned: replies to our commands come there", "partitions",
                  count, NULL);
  } else {
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
      cqrs_log_warn(ing->log, "replies group rebalance error", "error", rd_kafka_err2str(err), NULL);
    update_held(ing, parts, false, !cooperative || err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS);
    if (cooperative && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) kerr = rd_kafka_incremental_unassign(rk, parts);
    else rd_kafka_assign(rk, NULL);
    cqrs_log_info(ing->log, "command-results partitions revoked: results for commands still awaiting them there go "
                  "unheard (503 at the deadline; a retry gets the first outcome)", "partitions", count, NULL);
  }
  if (kerr) {
    cqrs_log_warn(ing->log, "replies group (un)assignment refused", "error", rd_kafka_error_string(kerr), NULL);
    rd_kafka_error_destroy(kerr);
  }
}

static void *results_main(void *arg) {
  cqrs_ingress_t *ing = arg;
  while (!cqrs_worker_stopping(&ing->results_reader)) {
    rd_kafka_poll(ing->producer, 0); /* delivery reports */
    rd_kafka_message_t *m = rd_kafka_consumer_poll(ing->results, 50);
    if (!m) continue;
    if (!m->err) {
      cqrs_metrics_add(ing->metrics, "command_results_read_total", NULL, 1);
      cqrs_metrics_add(ing->metrics, "command_results_read_bytes_total", NULL, (double)(m->key_len + m->len));
    }
    int status;
    if (!m->err && m->key && m->payload && cqrs_result_status(m->payload, m->len, &status)) {
      /* Keys "<tenant>/<commandId>": a result reaches only a waiter of its
       * tenant. ("/<commandId>" results, of records whose credential did not
       * verify, match no waiter: an HTTP command was verified here first.) */
      char *key = cqrs_xstrndup(m->key, m->key_len);
      answer(ing, key, status, m->payload, m->len);
      free(key);
    } else if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      cqrs_log_warn(ing->log, "command-results reader error", "error", rd_kafka_message_errstr(m), NULL);
    }
    rd_kafka_message_destroy(m);
  }
  return NULL;
}

cqrs_ingress_t *cqrs_ingress_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                 cqrs_auth_t *auth, cqrs_ratelimit_t *limits, cqrs_http_server_t *http,
                                 cqrs_error_t *err) {
  cqrs_ingress_t *ing = cqrs_xcalloc(1, sizeof *ing);
  ing->cfg = cfg;
  ing->log = log;
  ing->metrics = metrics;
  ing->auth = auth;
  ing->limits = limits;
  pthread_mutex_init(&ing->lock, NULL);
  pthread_mutex_init(&ing->held_lock, NULL);
  ing->pending = cqrs_map_new(free_waiting);
  ing->t_commands = cqrs_config_topic(cfg, CQRS_TOPIC_COMMANDS);
  ing->t_results = cqrs_config_topic(cfg, CQRS_TOPIC_RESULTS);
  snprintf(ing->timeout_json, sizeof ing->timeout_json,
           "{\"error\":\"no result within %d ms; the command may still be applied: retry with the same "
           "commandId\"}",
           cfg->command_timeout_ms);
  cqrs_metrics_describe(metrics, "command_timeouts_total", CQRS_METRIC_COUNTER,
                        "HTTP commands answered 503 because no result came in time.");
  cqrs_metrics_describe(metrics, "rate_limited_total", CQRS_METRIC_COUNTER,
                        "Commands answered 429 because the tenant exceeded RATE_LIMIT_COMMANDS (at the HTTP "
                        "gate or in the command loop), by tenant.");
  cqrs_metrics_describe(metrics, "commands_rejected_at_ingress_total", CQRS_METRIC_COUNTER,
                        "HTTP commands refused before Kafka (400, 403), by type and status.");
  cqrs_metrics_describe(metrics, "commands_client_gone_total", CQRS_METRIC_COUNTER,
                        "HTTP commands not taken because their client had closed the connection by the time "
                        "they were read (never sent to Kafka).");
  cqrs_metrics_describe(metrics, "commands_overloaded_total", CQRS_METRIC_COUNTER,
                        "HTTP commands answered 503 with Retry-After because COMMAND_MAX_IN_FLIGHT commands "
                        "already awaited their results (never sent to Kafka).");
  cqrs_metrics_describe(metrics, "commands_in_flight", CQRS_METRIC_GAUGE,
                        "HTTP commands sent to Kafka and awaiting their result on this replica.");
  cqrs_metrics_describe(metrics, "commands_in_flight_limit", CQRS_METRIC_GAUGE,
                        "COMMAND_MAX_IN_FLIGHT: the cap on commands_in_flight.");
  cqrs_metrics_set(metrics, "commands_in_flight_limit", NULL, cfg->command_max_in_flight);
  cqrs_metrics_describe(metrics, "command_reply_partitions", CQRS_METRIC_GAUGE,
                        "command-results partitions this replica holds in the replies group: the ones it reads.");
  cqrs_metrics_describe(metrics, "command_results_read_total", CQRS_METRIC_COUNTER,
                        "Records this replica read from command-results (its own partitions only).");
  cqrs_metrics_describe(metrics, "command_results_read_bytes_total", CQRS_METRIC_COUNTER,
                        "Key and value bytes of the records this replica read from command-results.");
  char timeout[16];
  snprintf(timeout, sizeof timeout, "%d", cfg->command_timeout_ms);
  if (!(ing->producer = cqrs_kafka_producer_new(cfg, log, delivery_cb, ing, err, "enable.idempotence", "true",
                                                "linger.ms", "1", "message.timeout.ms", timeout, NULL)) ||
      !(ing->results = cqrs_kafka_consumer_new(cfg, log, REPLIES_GROUP, results_rebalance_cb, ing, err,
                                               "fetch.wait.max.ms", "10", "partition.assignment.strategy",
                                               "cooperative-sticky", "auto.offset.reset", "latest",
                                               /* a dead member's partitions go to the others (and a
                                                * restarted one gets its own) after 6 s, the broker's
                                                * least by default */
                                               "session.timeout.ms", "6000", "heartbeat.interval.ms", "1000",
                                               NULL)))
    goto fail;
  cqrs_http_server_route(http, "POST", "/v1/commands", "/v1/commands", post_command_cb, ing);
  return ing;
fail:
  cqrs_ingress_destroy(ing);
  return NULL;
}

bool cqrs_ingress_start(cqrs_ingress_t *ing, cqrs_error_t *err) {
  /* The commands topic's partitions known before the first command, or it waits
   * for librdkafka's once-a-second scan of unknown topics (0.6 s measured). */
  return (ing->n_commands = cqrs_kafka_partition_count(ing->producer, ing->t_commands, 15000, err)) > 0 &&
         cqrs_kafka_subscribe(ing->results, ing->t_results, err) &&
         cqrs_worker_start(&ing->results_reader, "command-results", results_main, ing, err);
}

bool cqrs_ingress_ready(cqrs_ingress_t *ing, cqrs_error_t *err) {
  pthread_mutex_lock(&ing->held_lock);
  int n = ing->n_held;
  pthread_mutex_unlock(&ing->held_lock);
  if (n > 0) return true;
  cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL,
                 "the HTTP ingress holds no command-results partition yet (its replies group is forming, or "
                 "there are more replicas than command-results partitions)");
  return false;
}

void cqrs_ingress_stop(cqrs_ingress_t *ing) {
  if (!ing || !cqrs_worker_stop(&ing->results_reader)) return;
  rd_kafka_flush(ing->producer, 5000);
}

void cqrs_ingress_destroy(cqrs_ingress_t *ing) {
  if (!ing) return;
  cqrs_ingress_stop(ing);
  if (ing->results) {
    rd_kafka_consumer_close(ing->results);
    rd_kafka_destroy(ing->results);
  }
  if (ing->producer) rd_kafka_destroy(ing->producer);
  cqrs_map_destroy(ing->pending);
  pthread_mutex_destroy(&ing->lock);
  pthread_mutex_destroy(&ing->held_lock);
  free(ing->held);
  free(ing->t_commands);
  free(ing->t_results);
  free(ing);
}
