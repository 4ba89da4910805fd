/* Kafka helpers: configuration, topics, headers, probes. */
#include "cqrs/alloc.h"
#include "cqrs/kafka.h"
#include "cqrs/ops.h"

#include "cqrs/control.h"
#include "cqrs/schemas.h"
#include "cqrs/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the callbacks of one client need (see kafka.h): the configuration's
 * opaque, freed by librdkafka's on_conf_destroy interceptor, which runs when
 * the configuration is destroyed or, once a client took it over, after the
 * client's last log line in rd_kafka_destroy. */
typedef struct {
  cqrs_log_t log;
  cqrs_kafka_rebalance_cb *rebalance_cb;
  cqrs_kafka_delivery_cb *delivery_cb;
  void *cb_ctx;
} client_ctx_t;

static rd_kafka_resp_err_t free_ctx_cb(void *ic_opaque) {
  free(ic_opaque);
  return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  const client_ctx_t *ctx = rd_kafka_opaque(rk);
  cqrs_log_level_t l = level <= 3 ? CQRS_LOG_ERROR : level <= 5 ? CQRS_LOG_WARN : level == 6 ? CQRS_LOG_INFO : CQRS_LOG_DEBUG;
  cqrs_log(&ctx->log, l, buf, "component", "librdkafka", "facility", fac, NULL);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
  client_ctx_t *ctx = opaque;
  ctx->rebalance_cb(rk, err, parts, ctx->cb_ctx);
}

static void delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  client_ctx_t *ctx = opaque;
  ctx->delivery_cb(rk, m, ctx->cb_ctx);
}

static bool set(rd_kafka_conf_t *conf, const char *k, const char *v, cqrs_error_t *err) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) == RD_KAFKA_CONF_OK) return true;
  cqrs_error_set(err, CQRS_ERR_INVALID, k, "Kafka property %s: %s", k, errstr);
  return false;
}

/* The configuration of cqrs_kafka_conf_new: first the pairs of ap, then the
 * pairs of extra (NULL-terminated, may be NULL), then the operator's. */
static rd_kafka_conf_t *conf_new(const cqrs_config_t *cfg, const cqrs_log_t *log, client_ctx_t **ctx_out,
                                 const char *const *first, va_list ap, cqrs_error_t *err) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  client_ctx_t *ctx = cqrs_xcalloc(1, sizeof *ctx);
  if (rd_kafka_conf_interceptor_add_on_conf_destroy(conf, "cqrs", free_ctx_cb, ctx)) {
    free(ctx);
    rd_kafka_conf_destroy(conf);
    cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "cannot attach the client context to a Kafka configuration");
    return NULL;
  }
  ctx->log = *log;
  rd_kafka_conf_set_opaque(conf, ctx);
  rd_kafka_conf_set_log_cb(conf, log_cb);
  bool ok = set(conf, "bootstrap.servers", cfg->kafka_brokers, err);
  for (size_t i = 0; ok && first && first[i]; i += 2) ok = set(conf, first[i], first[i + 1], err);
  for (const char *k; ok && (k = va_arg(ap, const char *)) != NULL;) ok = set(conf, k, va_arg(ap, const char *), err);
  /* Last, so an operator's KAFKA_* setting wins over our defaults. */
  for (size_t i = 0; ok && i < cfg->n_kafka_props; i++)
    ok = set(conf, cfg->kafka_props[i].key, cfg->kafka_props[i].value, err);
  if (!ok) {
    rd_kafka_conf_destroy(conf); /* frees ctx */
    return NULL;
  }
  if (ctx_out) *ctx_out = ctx;
  return conf;
}

rd_kafka_conf_t *cqrs_kafka_conf_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_error_t *err, ...) {
  va_list ap;
  va_start(ap, err);
  rd_kafka_conf_t *conf = conf_new(cfg, log, NULL, NULL, ap, err);
  va_end(ap);
  return conf;
}

rd_kafka_t *cqrs_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, cqrs_error_t *err) {
  char errstr[512];
  if (type == RD_KAFKA_PRODUCER &&
      rd_kafka_conf_set(conf, "partitioner", "murmur2_random", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "partitioner: %s", errstr);
    return NULL;
  }
  rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "cannot create Kafka client: %s", errstr);
  }
  return rk;
}

rd_kafka_t *cqrs_kafka_consumer_new(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *group_suffix,
                                    cqrs_kafka_rebalance_cb *rebalance, void *cb_ctx, cqrs_error_t *err, ...) {
  char *group = cqrs_config_topic(cfg, group_suffix); /* the same prefix as the topics */
  const char *const defaults[] = {"group.id", group, "isolation.level", "read_committed",
                                  "enable.auto.commit", "false", NULL};
  client_ctx_t *ctx = NULL;
  va_list ap;
  va_start(ap, err);
  rd_kafka_conf_t *conf = conf_new(cfg, log, &ctx, defaults, ap, err);
  va_end(ap);
  free(group);
  if (!conf) return NULL;
  if (rebalance) {
    ctx->rebalance_cb = rebalance;
    ctx->cb_ctx = cb_ctx;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
  }
  return cqrs_kafka_new(RD_KAFKA_CONSUMER, conf, err);
}

rd_kafka_t *cqrs_kafka_producer_new(const cqrs_config_t *cfg, const cqrs_log_t *log,
                                    cqrs_kafka_delivery_cb *delivery, void *cb_ctx, cqrs_error_t *err, ...) {
  client_ctx_t *ctx = NULL;
  va_list ap;
  va_start(ap, err);
  rd_kafka_conf_t *conf = conf_new(cfg, log, &ctx, NULL, ap, err);
  va_end(ap);
  if (!conf) return NULL;
  if (delivery) {
    ctx->delivery_cb = delivery;
    ctx->cb_ctx = cb_ctx;
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
  }
  return cqrs_kafka_new(RD_KAFKA_PRODUCER, conf, err);
}

/* Nothing to do with a record's delivery inside a transaction (a failed one
 * fails the commit); being there is what counts (see kafka.h). */
static void txn_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *ctx) {
  (void)rk, (void)m, (void)ctx;
}

rd_kafka_t *cqrs_kafka_txn_producer_new(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *txn_id,
                                        int timeout_ms, cqrs_error_t *err) {
  char timeout[16];
  snprintf(timeout, sizeof timeout, "%d", timeout_ms);
  return cqrs_kafka_producer_new(cfg, log, txn_delivery, NULL, err, "transactional.id", txn_id,
                                 "transaction.timeout.ms", timeout, "linger.ms", "1", "retry.backoff.ms", "5", NULL);
}

int cqrs_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, cqrs_error_t *err) {
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
  int n = -1;
  if (e) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "Kafka metadata for %s: %s", topic, rd_kafka_err2str(e));
  } else if (md->topic_cnt != 1 || md->topics[0].err) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "Kafka topic %s: %s", topic,
                   rd_kafka_err2str(md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
  } else {
    n = md->topics[0].partition_cnt;
  }
  if (md) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  return n;
}

bool cqrs_kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t *lo, int64_t *hi,
                           int timeout_ms, cqrs_error_t *err) {
  int64_t deadline = cqrs_time_monotonic_ms() + timeout_ms;
  for (int backoff = 50;; backoff = backoff < 1000 ? backoff * 2 : 1000) {
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, partition, lo, hi, timeout_ms);
    if (!e) return true;
    /* Right after a topic is created its leaders are still being elected. */
    bool retry = e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION || e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                 e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || e == RD_KAFKA_RESP_ERR__TRANSPORT;
    if (!retry || cqrs_time_monotonic_ms() + backoff > deadline) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "watermarks of %s [%d]: %s", topic, partition,
                     rd_kafka_err2str(e));
      return false;
    }
    rd_kafka_poll(rk, backoff);
  }
}

size_t cqrs_kafka_poll_batch(rd_kafka_t *rk, rd_kafka_message_t **msgs, size_t max, int first_timeout_ms,
                             const cqrs_log_t *log) {
  size_t n = 0;
  for (int timeout = first_timeout_ms; n < max; timeout = 0) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, timeout);
    if (!m) break;
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        cqrs_log_warn(log, "consumer error", "error", rd_kafka_message_errstr(m), NULL);
      rd_kafka_message_destroy(m);
      continue;
    }
    msgs[n++] = m;
  }
  return n;
}

bool cqrs_kafka_subscribe(rd_kafka_t *rk, const char *topic, cqrs_error_t *err) {
  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (e) cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "subscribe to %s: %s", topic, rd_kafka_err2str(e));
  return !e;
}

bool cqrs_kafka_ping(rd_kafka_t *rk, int timeout_ms) {
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
  if (md) rd_kafka_metadata_destroy(md);
  return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}

typedef struct {
  const char *name;
  bool partitioned;   /* shares the aggregate partitioning */
  int fixed_partitions; /* 0: TOPIC_PARTITIONS */
  const char *cleanup;
  const char *retention_ms;
} topic_spec_t;

static const topic_spec_t topics[] = {
    {CQRS_TOPIC_COMMANDS, true, 0, "delete", "604800000"},
    {CQRS_TOPIC_EVENTS, true, 0, "delete", "-1"},
    {CQRS_TOPIC_STATE, true, 0, "compact", NULL},
    {CQRS_TOPIC_RESULTS, false, 0, "delete", "21600000"},
    {CQRS_TOPIC_DLQ, false, 0, "delete", "-1"},
    /* Partition p holds the sagas of the aggregates of events partition p. */
    {CQRS_TOPIC_SAGA_STATE, true, 0, "compact", NULL},
    /* One partition: every reader reads all of it, and records stay in the
     * order admin-svc wrote them. */
    {CQRS_TOPIC_CONTROL, false, 1, "compact", "-1"},
    /* One partition too: the schema registry's first-wins rule needs every
     * reader to see its records in one order (cqrs/schemas.h). */
    {CQRS_TOPIC_SCHEMAS, false, 1, "compact", "-1"},
    /* cqrs/ops.h: one partition each, in the order they were written */
    {CQRS_TOPIC_OPS, false, 1, "compact", "-1"},
    {CQRS_TOPIC_AUDIT, false, 1, "delete", "-1"},
};
#define N_TOPICS (sizeof topics / sizeof topics[0])

/* Creates the n topics of specs that are missing. */
static bool create_topics(rd_kafka_t *rk, const char *prefix, int partitions, int replication,
                          const topic_spec_t *const *specs, size_t n_specs, int timeout_ms, cqrs_error_t *err) {
  char errstr[256];
  rd_kafka_NewTopic_t *nt[N_TOPICS];
  char *names[N_TOPICS];
  for (size_t i = 0; i < n_specs; i++) {
    const topic_spec_t *t = specs[i];
    size_t len = strlen(prefix) + strlen(t->name) + 1;
    names[i] = cqrs_xmalloc(len);
    snprintf(names[i], len, "%s%s", prefix, t->name);
    nt[i] = rd_kafka_NewTopic_new(names[i], t->fixed_partitions ? t->fixed_partitions : partitions, replication,
                                  errstr, sizeof errstr);
    rd_kafka_NewTopic_set_config(nt[i], "cleanup.policy", t->cleanup);
    if (t->retention_ms) rd_kafka_NewTopic_set_config(nt[i], "retention.ms", t->retention_ms);
  }
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, errstr, sizeof errstr);
  rd_kafka_CreateTopics(rk, nt, n_specs, opt, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
  bool ok = true;
  if (!ev) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "Kafka did not answer CreateTopics within %d ms", timeout_ms);
    ok = false;
  } else if (rd_kafka_event_error(ev)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "CreateTopics: %s", rd_kafka_event_error_string(ev));
    ok = false;
  } else {
    size_t n;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n && ok; i++) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
      if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "cannot create topic %s: %s",
                       rd_kafka_topic_result_name(res[i]), rd_kafka_topic_result_error_string(res[i]));
        ok = false;
      }
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(opt);
  rd_kafka_queue_destroy(q);
  for (size_t i = 0; i < n_specs; i++) {
    rd_kafka_NewTopic_destroy(nt[i]);
    free(names[i]);
  }
  return ok;
}

bool cqrs_kafka_topic_ensure(rd_kafka_t *rk, const char *prefix, const char *name, int partitions,
                             int replication, int timeout_ms, cqrs_error_t *err) {
  for (size_t i = 0; i < N_TOPICS; i++) {
    if (strcmp(topics[i].name, name) != 0) continue;
    const topic_spec_t *spec = &topics[i];
    return create_topics(rk, prefix, partitions, replication, &spec, 1, timeout_ms, err);
  }
  cqrs_error_set(err, CQRS_ERR_INTERNAL, NULL, "%s is not one of the project's topics", name);
  return false;
}

bool cqrs_kafka_topics_ensure(rd_kafka_t *rk, const cqrs_config_t *cfg, int timeout_ms,
                              int *partitions, cqrs_error_t *err) {
  const topic_spec_t *all[N_TOPICS];
  for (size_t i = 0; i < N_TOPICS; i++) all[i] = &topics[i];
  if (!create_topics(rk, cfg->topic_prefix, cfg->topic_partitions, cfg->topic_replication, all, N_TOPICS,
                     timeout_ms, err))
    return false;
  int first = -1;
  const char *first_name = NULL;
  for (size_t i = 0; i < N_TOPICS; i++) {
    if (!topics[i].partitioned) continue;
    char *name = cqrs_config_topic(cfg, topics[i].name);
    int n = -1;
    /* A topic just created may take a moment to show in metadata. */
    int64_t waited = 0;
    while ((n = cqrs_kafka_partition_count(rk, name, timeout_ms, err)) <= 0 && waited < timeout_ms) {
      rd_kafka_poll(rk, 100);
      waited += 100;
    }
    bool ok = n > 0;
    if (ok && first < 0) {
      first = n;
      first_name = topics[i].name;
    } else if (ok && n != first) {
      cqrs_error_set(err, CQRS_ERR_FATAL, NULL,
                     "topics %s%s (%d partitions) and %s (%d partitions) must have the same partition "
                     "count: partition p of commands, events and aggregate-state holds the same aggregates",
                     cfg->topic_prefix, first_name, first, name, n);
      ok = false;
    }
    free(name);
    if (!ok) return false;
  }
  *partitions = first;
  return true;
}

size_t cqrs_kafka_headers(rd_kafka_message_t *m, cqrs_header_t *out, size_t max) {
  rd_kafka_headers_t *h = NULL;
  if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR || !h) return 0;
  size_t n = 0;
  for (size_t i = 0; n < max; i++) {
    const char *name;
    const void *value;
    size_t len;
    if (rd_kafka_header_get_all(h, i, &name, &value, &len) != RD_KAFKA_RESP_ERR_NO_ERROR) break;
    out[n++] = (cqrs_header_t){name, value, len};
  }
  return n;
}

rd_kafka_headers_t *cqrs_kafka_headers_new(const cqrs_header_t *hdrs, size_t n) {
  rd_kafka_headers_t *h = rd_kafka_headers_new(n);
  for (size_t i = 0; i < n; i++) rd_kafka_header_add(h, hdrs[i].name, -1, hdrs[i].value, (ssize_t)hdrs[i].len);
  return h;
}

bool cqrs_kafka_check(rd_kafka_error_t *kerr, const char *what, cqrs_error_t *err) {
  if (!kerr) return true;
  cqrs_error_code_t code = rd_kafka_error_is_fatal(kerr) ? CQRS_ERR_FATAL : CQRS_ERR_UNAVAILABLE;
  cqrs_error_set(err, code, NULL, "%s: %s", what, rd_kafka_error_string(kerr));
  if (err) err->retriable = rd_kafka_error_is_retriable(kerr);
  rd_kafka_error_destroy(kerr);
  return false;
}

rd_kafka_error_t *cqrs_kafka_txn_send_offsets(rd_kafka_t *producer, rd_kafka_t *consumer,
                                              const rd_kafka_topic_partition_list_t *offsets) {
  if (offsets->cnt == 0) return NULL;
  rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata(consumer);
  rd_kafka_error_t *e = rd_kafka_send_offsets_to_transaction(producer, offsets, cgmd, -1);
  rd_kafka_consumer_group_metadata_destroy(cgmd);
  return e;
}

bool cqrs_kafka_txn_abortable(rd_kafka_error_t *kerr, const char *what, cqrs_error_t *err) {
  if (!kerr) return true;
  bool abortable = !rd_kafka_error_is_fatal(kerr) && rd_kafka_error_txn_requires_abort(kerr);
  cqrs_kafka_check(kerr, what, err);
  return abortable;
}
