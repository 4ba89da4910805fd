/* The saga loop: consume events and results, react, emit in one transaction. */
#include "saga_loop.h"
#include "saga.h"
#include "saga_restore.h"
#include "saga_store.h"

#include "cqrs/alloc.h"
#include "cqrs/json.h"
#include "cqrs/kafka.h"
#include "cqrs/ops.h"
#include "cqrs/result.h"
#include "cqrs/saga_sign.h"
#include "cqrs/tenant.h"
#include "cqrs/upcast.h"
#include "cqrs/util.h"
#include "cqrs/worker.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH_MAX 1000
#define DUE_MAX 500          /* deadlines fired per transaction; the rest next round */
#define TXN_TIMEOUT_MS 10000 /* as command-svc: an open transaction of a dead instance holds readers back */
#define POLL_MS 200          /* how late a deadline may fire, at most, beyond a batch's time */
#define GAUGES_MS 1000       /* how often the sagas are counted for /metrics */

struct cqrs_saga_loop {
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  cqrs_metrics_t *metrics;
  rd_kafka_t *consumer, *producer;
  char *t_commands, *t_events, *t_results, *t_state, *t_dlq;
  int32_t n_partitions;
  cqrs_saga_store_t *store;
  cqrs_worker_t worker;
  int64_t next_gauges_ms;
  cqrs_error_t fatal;
  atomic_bool failed;
  atomic_bool joined;
  /* POISON_POLICY=halt: stopped before an event it cannot read (halt_error
   * says which; set once by the loop thread before halted) */
  atomic_bool halted;
  char halt_error[512];
};

static void fail(cqrs_saga_loop_t *loop, const char *what, const char *why) {
  if (atomic_load(&loop->failed)) return;
  cqrs_log_error(loop->log, "fatal Kafka error: exiting so the orchestrator restarts us", "during", what, "error",
                 why, NULL);
  cqrs_error_set(&loop->fatal, CQRS_ERR_FATAL, NULL, "%s: %s", what, why);
  atomic_store(&loop->failed, true);
}

static bool running(cqrs_saga_loop_t *loop) {
  return !cqrs_worker_stopping(&loop->worker) && !atomic_load(&loop->failed);
}

static int32_t partition_of(const char *key, int32_t n) {
  return rd_kafka_msg_partitioner_murmur2(NULL, key, strlen(key), n, NULL, NULL);
}

/* ---- rebalancing ---- */

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *ctx) {
  cqrs_saga_loop_t *loop = ctx;
  char count[16];
  snprintf(count, sizeof count, "%d", parts->cnt);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    cqrs_error_t e = {0};
    size_t before = cqrs_saga_store_size(loop->store);
    if (!cqrs_saga_restore(loop->cfg, loop->log, loop->t_state, parts, loop->store, &e)) {
      fail(loop, "restoring saga-state", e.message);
      rd_kafka_assign(rk, NULL);
      return;
    }
    char n[24];
    snprintf(n, sizeof n, "%zu", cqrs_saga_store_size(loop->store) - before);
    cqrs_log_info(loop->log, "partitions assigned and sagas restored", "partitions", count, "sagas", n, NULL);
    /* counted again before this round fires anything: a deadline that fell
     * due while no instance owned it shows in saga_deadline_lag_seconds */
    loop->next_gauges_ms = 0;
    rd_kafka_assign(rk, parts);
    cqrs_metrics_set(loop->metrics, "saga_partitions", NULL, parts->cnt);
    atomic_store(&loop->joined, true);
  } else {
    cqrs_saga_store_abort(loop->store);
    for (int i = 0; i < parts->cnt; i++) cqrs_saga_store_drop_partition(loop->store, parts->elems[i].partition);
    cqrs_log_info(loop->log, "partitions revoked", "partitions", count, NULL);
    rd_kafka_assign(rk, NULL);
    cqrs_metrics_set(loop->metrics, "saga_partitions", NULL, 0);
  }
}

/* ---- producing inside the transaction ---- */

static bool produce(cqrs_saga_loop_t *loop, const char *topic, int32_t partition, const char *key, const char *value,
                    size_t len, rd_kafka_headers_t *hdrs, cqrs_error_t *err) {
  for (;;) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        loop->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (!e) return true;
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(loop->producer, 10);
      continue;
    }
    if (hdrs) rd_kafka_headers_destroy(hdrs);
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "produce to %s: %s", topic, rd_kafka_err2str(e));
    return false;
  }
}

/* A command record's headers: the tenant and the MAC over it and the value
 * (cqrs/saga_sign.h; none without SAGA_SIGNING_KEY, as with AUTH=off), and
 * the trace of what caused it (may be NULL). */
static rd_kafka_headers_t *headers(cqrs_saga_loop_t *loop, const char *tenant, const cqrs_saga_command_t *c,
                                   const char *traceparent) {
  char sig[CQRS_SAGA_SIGNATURE_LEN];
  rd_kafka_headers_t *h = NULL;
  if (loop->cfg->saga_signing_key && cqrs_saga_sign(loop->cfg->saga_signing_key, tenant, c->json, c->len, sig)) {
    h = rd_kafka_headers_new(3);
    rd_kafka_header_add(h, CQRS_SAGA_TENANT_HEADER, -1, tenant, -1);
    rd_kafka_header_add(h, CQRS_SAGA_SIGNATURE_HEADER, -1, sig, -1);
  }
  if (traceparent) {
    if (!h) h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "traceparent", -1, traceparent, -1);
  }
  return h;
}

/* Writes what a saga run produced into the open transaction and stages the
 * instance. */
static bool apply(cqrs_saga_loop_t *loop, const char *tenant, int32_t partition, cqrs_saga_outcome_t *out,
                  const char *traceparent, cqrs_error_t *err) {
  if (!out->instance) return true;
  for (size_t i = 0; i < out->n_commands; i++) {
    const cqrs_saga_command_t *c = &out->commands[i];
    char *key = cqrs_tenant_key(tenant, c->aggregate_id);
    bool ok = produce(loop, loop->t_commands, partition_of(key, loop->n_partitions), key, c->json, c->len,
                      headers(loop, tenant, c, traceparent), err);
    cqrs_log_debug(loop->log, "saga command emitted", "tenant", tenant, "commandId", c->command_id, "aggregateId",
                   c->aggregate_id, NULL);
    free(key);
    if (!ok) return false;
  }
  size_t len;
  char *json = cqrs_json_write(out->instance, &len);
  bool ok = produce(loop, loop->t_state, partition, cqrs_saga_str(out->instance, "sagaId"), json, len, NULL, err);
  bson_free(json);
  if (!ok) return false;
  char labels[128];
  snprintf(labels, sizeof labels, "type=\"%s\"", cqrs_saga_str(out->instance, "type"));
  cqrs_metrics_add(loop->metrics, "saga_commands_emitted_total", labels, (double)out->n_commands);
  cqrs_saga_store_stage(loop->store, out->instance);
  out->instance = NULL;
  return true;
}

/* ---- poison events ---- */

/* An event record saga-svc cannot read, error saying why (POISON_POLICY, as
 * projector-svc): a dead letter on events.dlq (cqrs_dlq_headers, dlq_projection
 * CQRS_DLQ_SAGAS) inside the open transaction, so it commits together with
 * the offset past the event, exactly once; or, with halt, false with err: the
 * transaction aborts and the loop stops before the event (halted). */
static bool poison(cqrs_saga_loop_t *loop, rd_kafka_message_t *m, const char *error, cqrs_error_t *err) {
  char part[16], off[24];
  snprintf(part, sizeof part, "%d", m->partition);
  snprintf(off, sizeof off, "%lld", (long long)m->offset);
  if (loop->cfg->poison_halt) {
    snprintf(loop->halt_error, sizeof loop->halt_error,
             "halted before the event at %s partition %s offset %s (POISON_POLICY=halt): %s", loop->t_events, part,
             off, error);
    cqrs_log_error(loop->log, "poison event: the sagas halt before it (POISON_POLICY=halt)", "error", error,
                   "partition", part, "offset", off, NULL);
    atomic_store(&loop->halted, true);
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "%s", loop->halt_error);
    return false;
  }
  char *key = m->key ? cqrs_xstrndup(m->key, m->key_len) : NULL;
  bool ok = produce(loop, loop->t_dlq, RD_KAFKA_PARTITION_UA, key, m->payload, m->len,
                    cqrs_dlq_headers(m, CQRS_DLQ_SAGAS, loop->t_events, error), err);
  free(key);
  if (ok) {
    cqrs_metrics_add(loop->metrics, "dlq_events_total", "projection=\"" CQRS_DLQ_SAGAS "\"", 1);
    cqrs_log_error(loop->log, "event sent to the dead letter topic: no saga reacts to it", "error", error,
                   "partition", part, "offset", off, NULL);
  }
  return ok;
}

/* One event record: every saga it triggers reacts. A record that is not an
 * event, or an event a saga would react to whose data does not upcast or
 * decode, is poison. An event of a type the contract does not know triggers
 * no saga (their triggers are the contract's descriptors) and is passed
 * over: projector-svc dead-letters it for the read models. */
static bool handle_event(cqrs_saga_loop_t *loop, rd_kafka_message_t *m, const char *now, cqrs_error_t *err) {
  cqrs_header_t hdrs[32];
  size_t nh = cqrs_kafka_headers(m, hdrs, 32);
  cqrs_event_t ev = {0};
  cqrs_error_t perr = {0};
  bool ok = true;
  if (!cqrs_event_from_record(&ev, hdrs, nh, m->payload, m->len, &perr)) {
    ok = poison(loop, m, perr.message, err);
    goto done;
  }
  const cqrs_event_type_t *type = cqrs_event_type_find(ev.type);
  cqrs_event_data_t decoded;
  if (!type) goto done; /* a type no saga knows */
  bool decodes = false;
  for (size_t i = 0; ok && cqrs_sagas[i]; i++) {
    const cqrs_saga_t *s = cqrs_sagas[i];
    if (!cqrs_saga_triggered_by(s, ev.type)) continue;
    /* Sagas read every event at its type's current version, like every
     * other reader (cqrs/upcast.h). */
    if (!decodes && !(decodes = cqrs_event_upcast(&ev, &perr) && type->decode(ev.data, &decoded, &perr))) {
      ok = poison(loop, m, perr.message, err);
      goto done;
    }
    char id[37];
    cqrs_saga_id(ev.tenant, s->type, ev.aggregate_id, id);
    cqrs_saga_ctx_t ctx = {ev.tenant, ev.aggregate_id, now, m->partition, loop->n_partitions};
    cqrs_saga_input_t in = {.kind = CQRS_SAGA_EVENT, .event = type, .decoded = &decoded,
                            .aggregate_id = ev.aggregate_id};
    cqrs_saga_outcome_t out;
    cqrs_saga_run(s, cqrs_saga_store_get(loop->store, id), &ctx, &in, NULL, 0, &out);
    ok = apply(loop, ev.tenant, m->partition, &out, ev.traceparent, err);
    cqrs_saga_outcome_cleanup(&out);
  }
done:
  cqrs_event_cleanup(&ev);
  return ok;
}

/* Runs instance's saga for a result or a deadline. */
static bool continue_saga(cqrs_saga_loop_t *loop, const bson_t *instance, cqrs_saga_input_t *in,
                          const char *command_id, int64_t due_ms, const char *now, const char *traceparent,
                          cqrs_error_t *err) {
  const cqrs_saga_t *s = cqrs_saga_find(cqrs_saga_str(instance, "type"));
  bson_iter_t it;
  int32_t partition = bson_iter_init_find(&it, instance, "partition") && BSON_ITER_HOLDS_INT32(&it)
                          ? bson_iter_int32(&it) : 0;
  if (!s) return true; /* a type this build does not run any more */
  char *tenant = cqrs_xstrdup(cqrs_saga_str(instance, "tenant")), *key = cqrs_xstrdup(cqrs_saga_str(instance, "key"));
  cqrs_saga_ctx_t ctx = {tenant, key, now, partition, loop->n_partitions};
  cqrs_saga_outcome_t out;
  cqrs_saga_run(s, instance, &ctx, in, command_id, due_ms, &out);
  bool ok = apply(loop, tenant, partition, &out, traceparent, err);
  cqrs_saga_outcome_cleanup(&out);
  free(tenant);
  free(key);
  return ok;
}

/* One command-results record: the saga waiting for it, if any, goes on. */
static bool handle_result(cqrs_saga_loop_t *loop, rd_kafka_message_t *m, const char *now, cqrs_error_t *err) {
  if (!m->key || !m->payload) return true;
  char *key = cqrs_xstrndup(m->key, m->key_len);
  const char *saga_id = cqrs_saga_store_awaiting(loop->store, key);
  const bson_t *instance = saga_id ? cqrs_saga_store_get(loop->store, saga_id) : NULL;
  int status;
  bool ok = true;
  if (instance && cqrs_result_status(m->payload, m->len, &status)) {
    const char *command_id = strchr(key, CQRS_TENANT_KEY_SEP) + 1;
    cqrs_saga_input_t in = {.kind = CQRS_SAGA_RESULT, .status = status};
    rd_kafka_headers_t *h;
    const void *tp = NULL;
    size_t tp_len = 0;
    char trace[128] = "";
    if (!rd_kafka_message_headers(m, &h) && !rd_kafka_header_get_last(h, "traceparent", &tp, &tp_len) && tp)
      snprintf(trace, sizeof trace, "%.*s", (int)tp_len, (const char *)tp);
    ok = continue_saga(loop, instance, &in, command_id, 0, now, trace[0] ? trace : NULL, err);
  }
  free(key);
  return ok;
}

/* ---- batches ---- */

static rd_kafka_topic_partition_list_t *batch_offsets(rd_kafka_message_t **msgs, size_t n, bool first) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
  for (size_t i = 0; i < n; i++) {
    const char *topic = rd_kafka_topic_name(msgs[i]->rkt);
    rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(l, topic, msgs[i]->partition);
    if (!p) {
      p = rd_kafka_topic_partition_list_add(l, topic, msgs[i]->partition);
      p->offset = first ? msgs[i]->offset : msgs[i]->offset + 1;
    } else if (!first) {
      p->offset = msgs[i]->offset + 1;
    }
  }
  return l;
}

/* Offsets for a transaction of deadlines only: the current positions (or the
 * committed offsets of partitions not read since assignment), so the
 * transaction still carries the group metadata that fences a stale member. */
static rd_kafka_topic_partition_list_t *current_offsets(cqrs_saga_loop_t *loop) {
  rd_kafka_topic_partition_list_t *a = NULL, *l = rd_kafka_topic_partition_list_new(8);
  if (rd_kafka_assignment(loop->consumer, &a) || !a) return l;
  rd_kafka_position(loop->consumer, a);
  bool unknown = false;
  for (int i = 0; i < a->cnt; i++) unknown |= a->elems[i].offset < 0;
  if (unknown) {
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(a);
    if (!rd_kafka_committed(loop->consumer, c, 5000))
      for (int i = 0; i < a->cnt; i++)
        if (a->elems[i].offset < 0) a->elems[i].offset = c->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(c);
  }
  for (int i = 0; i < a->cnt; i++)
    if (a->elems[i].offset >= 0) rd_kafka_topic_partition_list_add(l, a->elems[i].topic, a->elems[i].partition)->offset = a->elems[i].offset;
  rd_kafka_topic_partition_list_destroy(a);
  return l;
}

static void rewind_batch(cqrs_saga_loop_t *loop, rd_kafka_message_t **msgs, size_t n) {
  if (n == 0) return;
  rd_kafka_topic_partition_list_t *l = batch_offsets(msgs, n, true);
  rd_kafka_error_t *e = rd_kafka_seek_partitions(loop->consumer, l, 5000);
  if (e) {
    cqrs_log_warn(loop->log, "cannot rewind after abort", "error", rd_kafka_error_string(e), NULL);
    rd_kafka_error_destroy(e);
  }
  rd_kafka_topic_partition_list_destroy(l);
}

static bool handle(cqrs_saga_loop_t *loop, rd_kafka_message_t *m, const char *now, cqrs_error_t *err) {
  const char *topic = rd_kafka_topic_name(m->rkt);
  if (strcmp(topic, loop->t_events) == 0) return handle_event(loop, m, now, err);
  return handle_result(loop, m, now, err);
}

/* Fires deadline d (if its saga still has it) into the open transaction. */
static bool fire(cqrs_saga_loop_t *loop, const cqrs_saga_due_t *d, const char *now, int64_t now_ms,
                 cqrs_error_t *err) {
  const bson_t *instance = cqrs_saga_store_get(loop->store, d->saga_id);
  if (!instance) return true;
  char *what = cqrs_xstrdup(d->what);
  cqrs_saga_input_t in = {.kind = CQRS_SAGA_DEADLINE, .what = what};
  bool ok = continue_saga(loop, instance, &in, NULL, d->due_ms, now, NULL, err);
  free(what);
  cqrs_metrics_observe(loop->metrics, "saga_deadline_fired_late_seconds", NULL, (double)(now_ms - d->due_ms) / 1000.0);
  return ok;
}

/* One transaction for msgs[0..n) and the due deadlines. False when aborted
 * (and rewound); fatal errors stop the loop. */
static bool run_batch(cqrs_saga_loop_t *loop, rd_kafka_message_t **msgs, size_t n, cqrs_saga_due_t *due, size_t n_due,
                      int64_t now_ms) {
  cqrs_error_t err = {0};
  char now[32];
  cqrs_time_format_rfc3339(now_ms, now);
  if (!cqrs_kafka_check(rd_kafka_begin_transaction(loop->producer), "begin_transaction", &err)) {
    fail(loop, "begin_transaction", err.message);
    return false;
  }
  /* The consumed offsets go first, as in command-svc's lanes
   * (command_loop.c): right after a commit AddOffsetsToTxn retries at
   * retry.backoff.ms (5 ms) where AddPartitionsToTxn, sent by the first
   * record, waits a fixed 20 ms in librdkafka 2.0. */
  rd_kafka_topic_partition_list_t *offsets = n ? batch_offsets(msgs, n, false) : current_offsets(loop);
  rd_kafka_error_t *e = cqrs_kafka_txn_send_offsets(loop->producer, loop->consumer, offsets);
  rd_kafka_topic_partition_list_destroy(offsets);
  const char *step = "send_offsets_to_transaction"; /* what e, if any, came from */
  bool ok = true;
  if (!e) {
    for (size_t i = 0; ok && i < n; i++) ok = handle(loop, msgs[i], now, &err);
    for (size_t i = 0; ok && i < n_due; i++) ok = fire(loop, &due[i], now, now_ms, &err);
  }
  if (ok && !e) {
    e = rd_kafka_commit_transaction(loop->producer, -1);
    step = "commit_transaction";
  }
  if (ok && e) {
    if (!cqrs_kafka_txn_abortable(e, step, &err)) {
      fail(loop, step, err.message);
      return false;
    }
    ok = false;
  }
  if (ok) {
    cqrs_saga_store_commit(loop->store);
    cqrs_metrics_add(loop->metrics, "saga_transactions_total", "outcome=\"committed\"", 1);
    cqrs_metrics_add(loop->metrics, "saga_records_total", NULL, (double)n);
    return true;
  }
  cqrs_log_warn(loop->log, "transaction aborted; the batch will be retried", "error", err.message, NULL);
  cqrs_metrics_add(loop->metrics, "saga_transactions_total", "outcome=\"aborted\"", 1);
  cqrs_error_t aerr = {0};
  if (!cqrs_kafka_check(rd_kafka_abort_transaction(loop->producer, -1), "abort_transaction", &aerr)) {
    fail(loop, "abort_transaction", aerr.message);
    return false;
  }
  cqrs_saga_store_abort(loop->store);
  rewind_batch(loop, msgs, n);
  return false;
}

static void gauge_cb(const char *type, const char *state, size_t n, void *ctx) {
  char labels[160];
  snprintf(labels, sizeof labels, "type=\"%s\",state=\"%s\"", type, state);
  cqrs_metrics_set(ctx, "sagas", labels, (double)n);
}

/* sagas{type,state} and the deadline lag: how far the earliest pending
 * deadline is past due (0 when none is). */
static void update_gauges(cqrs_saga_loop_t *loop, int64_t now_ms, int64_t earliest_ms) {
  if (now_ms < loop->next_gauges_ms) return;
  loop->next_gauges_ms = now_ms + GAUGES_MS;
  cqrs_saga_store_count(loop->store, gauge_cb, loop->metrics);
  double lag = earliest_ms != INT64_MAX && earliest_ms < now_ms ? (double)(now_ms - earliest_ms) / 1000.0 : 0;
  cqrs_metrics_set(loop->metrics, "saga_deadline_lag_seconds", NULL, lag);
}

static int64_t wall_ms(void) {
  char now[32];
  int64_t ms = 0;
  cqrs_time_now_rfc3339(now);
  cqrs_time_parse_rfc3339(now, &ms);
  return ms;
}

static void *loop_main(void *arg) {
  cqrs_saga_loop_t *loop = arg;
  rd_kafka_message_t *msgs[BATCH_MAX];
  cqrs_saga_due_t *due = cqrs_xcalloc(DUE_MAX, sizeof *due);
  int backoff_ms = 0;
  while (running(loop) && due) {
    if (atomic_load(&loop->halted)) {
      /* halted: stays in the group (polls) but reads nothing on and fires no
       * deadline; what it is handed goes uncommitted, read again after the
       * restart that releases it */
      rd_kafka_message_t *m = rd_kafka_consumer_poll(loop->consumer, POLL_MS);
      if (m) rd_kafka_message_destroy(m);
      continue;
    }
    size_t n = cqrs_kafka_poll_batch(loop->consumer, msgs, BATCH_MAX, POLL_MS, loop->log);
    int64_t now_ms = wall_ms(), earliest;
    size_t n_due = cqrs_saga_store_due(loop->store, now_ms, due, DUE_MAX, &earliest);
    update_gauges(loop, now_ms, earliest);
    if (n == 0 && n_due == 0) continue;
    bool ok = run_batch(loop, msgs, n, due, n_due, now_ms);
    for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(msgs[i]);
    if (ok) {
      backoff_ms = 0;
    } else if (running(loop)) {
      backoff_ms = backoff_ms ? (backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2) : 100;
      usleep((useconds_t)backoff_ms * 1000);
    }
  }
  free(due);
  return NULL;
}

cqrs_saga_loop_t *cqrs_saga_loop_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                     const char *instance_id, cqrs_error_t *err) {
  cqrs_saga_loop_t *loop = cqrs_xcalloc(1, sizeof *loop);
  loop->cfg = cfg;
  loop->log = log;
  loop->metrics = metrics;
  loop->store = cqrs_saga_store_new();
  loop->t_commands = cqrs_config_topic(cfg, CQRS_TOPIC_COMMANDS);
  loop->t_events = cqrs_config_topic(cfg, CQRS_TOPIC_EVENTS);
  loop->t_results = cqrs_config_topic(cfg, CQRS_TOPIC_RESULTS);
  loop->t_state = cqrs_config_topic(cfg, CQRS_TOPIC_SAGA_STATE);
  loop->t_dlq = cqrs_config_topic(cfg, CQRS_TOPIC_DLQ);
  cqrs_metrics_describe(metrics, "sagas", CQRS_METRIC_GAUGE, "Saga instances held, by type and state.");
  cqrs_metrics_describe(metrics, "saga_deadline_lag_seconds", CQRS_METRIC_GAUGE,
                        "How far the earliest pending deadline is past due (0: none is).");
  cqrs_metrics_describe(metrics, "saga_deadline_fired_late_seconds", CQRS_METRIC_HISTOGRAM,
                        "Fired minus due, per fired deadline.");
  cqrs_metrics_describe(metrics, "saga_commands_emitted_total", CQRS_METRIC_COUNTER, "Commands sagas emitted, by saga type.");
  cqrs_metrics_describe(metrics, "saga_transactions_total", CQRS_METRIC_COUNTER, "Kafka transactions by outcome.");
  cqrs_metrics_describe(metrics, "saga_partitions", CQRS_METRIC_GAUGE,
                        "Partitions of events and command-results this instance holds (its share of the group's).");
  cqrs_metrics_set(metrics, "saga_partitions", NULL, 0);
  cqrs_metrics_describe(metrics, "dlq_events_total", CQRS_METRIC_COUNTER,
                        "Events sent to the dead letter topic because no saga could read them.");
  cqrs_metrics_describe(metrics, "saga_records_total", CQRS_METRIC_COUNTER,
                        "Records of events and command-results consumed (committed with their transaction).");
  char txn_id[512];
  snprintf(txn_id, sizeof txn_id, "%ssaga-svc-%s", cfg->topic_prefix, instance_id);
  int results = -1;
  if (!(loop->producer = cqrs_kafka_txn_producer_new(cfg, log, txn_id, TXN_TIMEOUT_MS, err)) ||
      !(loop->consumer = cqrs_kafka_consumer_new(cfg, log, "saga-svc", rebalance_cb, loop, err, "auto.offset.reset",
                                                 "earliest", "session.timeout.ms", "10000",
                                                 /* partition p of events and of command-results together */
                                                 "partition.assignment.strategy", "range", NULL)))
    goto fail;
  rd_kafka_poll_set_consumer(loop->consumer);
  if (!cqrs_kafka_topics_ensure(loop->producer, cfg, 15000, &loop->n_partitions, err) ||
      (results = cqrs_kafka_partition_count(loop->producer, loop->t_results, 15000, err)) < 0)
    goto fail;
  if (results != loop->n_partitions) {
    cqrs_error_set(err, CQRS_ERR_FATAL, NULL,
                   "%s has %d partitions and %s %d: saga-svc needs them equal (a saga's results must reach its owner)",
                   loop->t_results, results, loop->t_events, loop->n_partitions);
    goto fail;
  }
  if (!cqrs_kafka_check(rd_kafka_init_transactions(loop->producer, 30000), "init_transactions", err)) goto fail;
  if (!cfg->saga_signing_key && cfg->auth_enabled)
    cqrs_log_warn(log, "SAGA_SIGNING_KEY is not set: command-svc will refuse every saga command (401)", NULL);
  return loop;
fail:
  cqrs_saga_loop_destroy(loop);
  return NULL;
}

bool cqrs_saga_loop_start(cqrs_saga_loop_t *loop, cqrs_error_t *err) {
  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(2);
  rd_kafka_topic_partition_list_add(topics, loop->t_events, RD_KAFKA_PARTITION_UA);
  rd_kafka_topic_partition_list_add(topics, loop->t_results, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(loop->consumer, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (e) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "subscribe: %s", rd_kafka_err2str(e));
    return false;
  }
  return cqrs_worker_start(&loop->worker, "saga-loop", loop_main, loop, err);
}

void cqrs_saga_loop_stop(cqrs_saga_loop_t *loop) {
  if (!loop || !cqrs_worker_stop(&loop->worker)) return;
  rd_kafka_consumer_close(loop->consumer);
}

bool cqrs_saga_loop_failed(cqrs_saga_loop_t *loop, cqrs_error_t *err) {
  if (!atomic_load(&loop->failed)) return false;
  if (err) *err = loop->fatal;
  return true;
}

bool cqrs_saga_loop_ready(cqrs_saga_loop_t *loop, cqrs_error_t *err) {
  if (atomic_load(&loop->failed)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the saga loop failed: %s", loop->fatal.message);
    return false;
  }
  if (atomic_load(&loop->halted)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "%s; a restart with a build that reads it, or with "
                   "POISON_POLICY=dlq, releases it", loop->halt_error);
    return false;
  }
  if (!atomic_load(&loop->joined)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "not yet a member of the saga-svc consumer group");
    return false;
  }
  if (!cqrs_kafka_ping(loop->producer, 2000)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "Kafka does not answer");
    return false;
  }
  return true;
}

void cqrs_saga_loop_destroy(cqrs_saga_loop_t *loop) {
  if (!loop) return;
  cqrs_saga_loop_stop(loop);
  if (loop->consumer) rd_kafka_destroy(loop->consumer);
  if (loop->producer) {
    rd_kafka_flush(loop->producer, 5000);
    rd_kafka_destroy(loop->producer);
  }
  cqrs_saga_store_destroy(loop->store);
  free(loop->t_commands);
  free(loop->t_events);
  free(loop->t_results);
  free(loop->t_state);
  free(loop->t_dlq);
  free(loop);
}
