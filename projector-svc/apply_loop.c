/* Apply loop: events -> bulk writes -> commit, with dead letters. */
#include "apply_loop.h"

#include "cqrs/kafka.h"
#include "cqrs/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH_MAX 1000
#define WRITE_RETRIES 5

struct cqrs_apply_loop {
  cqrs_log_t log_copy; /* first: the Kafka clients' opaque points here */
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  cqrs_metrics_t *metrics;
  mongoc_client_pool_t *pool;
  const cqrs_projection_t *proj;
  rd_kafka_t *consumer;
  rd_kafka_t *dlq;
  char *t_events, *t_dlq;
  char labels[96]; /* projection="..." */
  pthread_t thread;
  bool started;
  atomic_bool stop;
};

/* ---- dead letters ---- */

static void dead_letter(cqrs_apply_loop_t *loop, rd_kafka_message_t *m, const char *error) {
  rd_kafka_headers_t *src = NULL, *h;
  h = rd_kafka_message_headers(m, &src) == RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_headers_copy(src)
                                                                      : rd_kafka_headers_new(6);
  char part[16], off[24];
  snprintf(part, sizeof part, "%d", m->partition);
  snprintf(off, sizeof off, "%lld", (long long)m->offset);
  rd_kafka_header_add(h, "dlq_error", -1, error, -1);
  rd_kafka_header_add(h, "dlq_projection", -1, loop->proj->name, -1);
  rd_kafka_header_add(h, "dlq_source_topic", -1, loop->t_events, -1);
  rd_kafka_header_add(h, "dlq_source_partition", -1, part, -1);
  rd_kafka_header_add(h, "dlq_source_offset", -1, off, -1);
  rd_kafka_resp_err_t e = rd_kafka_producev(loop->dlq, RD_KAFKA_V_TOPIC(loop->t_dlq),
                                            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
                                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                                            RD_KAFKA_V_END);
  if (e) rd_kafka_headers_destroy(h);
  cqrs_metrics_add(loop->metrics, "dlq_events_total", loop->labels, 1);
  cqrs_log_error(loop->log, "event sent to the dead letter topic", "projection", loop->proj->name, "error", error,
                 "partition", part, "offset", off, "produceError", e ? rd_kafka_err2str(e) : NULL, NULL);
}

/* ---- writing ---- */

typedef struct {
  rd_kafka_message_t *m;
  cqrs_write_t w;
} pending_t;

static bool unavailable(const bson_error_t *e) {
  return e->domain == MONGOC_ERROR_SERVER_SELECTION || e->domain == MONGOC_ERROR_STREAM ||
         e->domain == MONGOC_ERROR_CLIENT;
}

static bson_t *upsert_opts(bool upsert) {
  bson_t *o = bson_new();
  BSON_APPEND_BOOL(o, "upsert", upsert);
  return o;
}

/* One bulk write of all pending writes. */
static bool write_bulk(mongoc_collection_t *coll, pending_t *p, size_t n, bson_error_t *error) {
  bson_t opts = BSON_INITIALIZER;
  BSON_APPEND_BOOL(&opts, "ordered", false);
  mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll, &opts);
  bson_destroy(&opts);
  for (size_t i = 0; i < n; i++) {
    bson_t *o = upsert_opts(p[i].w.upsert);
    mongoc_bulk_operation_update_one_with_opts(bulk, &p[i].w.filter, &p[i].w.update, o, error);
    bson_destroy(o);
  }
  bson_t reply;
  bool ok = mongoc_bulk_operation_execute(bulk, &reply, error) != 0;
  bson_destroy(&reply);
  mongoc_bulk_operation_destroy(bulk);
  return ok;
}

/* After a failed bulk write: write one by one, so one bad write neither
 * stalls nor skips the rest (FerretDB stops a batch at its first error, even
 * an unordered one). A duplicate key means a racing upsert already inserted:
 * the version guard makes that harmless. Returns false if the store is down. */
static bool write_each(cqrs_apply_loop_t *loop, mongoc_collection_t *coll, pending_t *p, size_t n,
                       bson_error_t *error) {
  for (size_t i = 0; i < n; i++) {
    bson_t *o = upsert_opts(p[i].w.upsert);
    bool ok = mongoc_collection_update_one(coll, &p[i].w.filter, &p[i].w.update, o, NULL, error);
    bson_destroy(o);
    if (ok || error->code == 11000) continue;
    if (unavailable(error)) return false;
    dead_letter(loop, p[i].m, error->message);
  }
  return true;
}

/* Writes the batch, retrying with backoff while the store is unreachable
 * (that is no reason to dead-letter anything). False only when stopping. */
static bool write_batch(cqrs_apply_loop_t *loop, pending_t *p, size_t n) {
  if (n == 0) return true;
  mongoc_client_t *client = mongoc_client_pool_pop(loop->pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, loop->cfg->mongo_db, loop->proj->name);
  bool ok = false;
  bson_error_t error;
  for (int attempt = 0, backoff = 100; !atomic_load(&loop->stop); attempt++) {
    if (write_bulk(coll, p, n, &error)) {
      ok = true;
      break;
    }
    if (!unavailable(&error) || attempt >= WRITE_RETRIES) {
      if (write_each(loop, coll, p, n, &error)) {
        ok = true;
        break;
      }
    }
    cqrs_log_warn(loop->log, "store write failed; retrying", "projection", loop->proj->name, "error",
                  error.message, NULL);
    usleep((useconds_t)backoff * 1000);
    backoff = backoff < 5000 ? backoff * 2 : 5000;
  }
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(loop->pool, client);
  return ok;
}

/* ---- the loop ---- */

static void update_lag(cqrs_apply_loop_t *loop) {
  rd_kafka_topic_partition_list_t *a = NULL;
  if (rd_kafka_assignment(loop->consumer, &a) || !a) return;
  rd_kafka_position(loop->consumer, a);
  for (int i = 0; i < a->cnt; i++) {
    int64_t lo, hi;
    if (rd_kafka_get_watermark_offsets(loop->consumer, a->elems[i].topic, a->elems[i].partition, &lo, &hi) ||
        hi < 0)
      continue;
    int64_t pos = a->elems[i].offset >= 0 ? a->elems[i].offset : lo;
    char labels[160];
    snprintf(labels, sizeof labels, "%s,partition=\"%d\"", loop->labels, a->elems[i].partition);
    cqrs_metrics_set(loop->metrics, "projection_lag_events", labels, (double)(hi > pos ? hi - pos : 0));
  }
  rd_kafka_topic_partition_list_destroy(a);
}

/* Decodes msgs into writes; dead-letters what cannot be applied. */
static size_t prepare(cqrs_apply_loop_t *loop, rd_kafka_message_t **msgs, size_t n, pending_t *p) {
  size_t np = 0;
  for (size_t i = 0; i < n; i++) {
    cqrs_header_t hdrs[32];
    size_t nh = cqrs_kafka_headers(msgs[i], hdrs, 32);
    cqrs_event_t ev;
    cqrs_error_t err = {0};
    bool skip = false;
    if (!cqrs_event_from_record(&ev, hdrs, nh, msgs[i]->payload, msgs[i]->len, &err)) {
      dead_letter(loop, msgs[i], err.message);
    } else if (strcmp(ev.aggregate_type, loop->proj->aggregate_type) == 0) {
      if (!loop->proj->apply(&ev, &p[np].w, &skip, &err)) {
        cqrs_write_cleanup(&p[np].w);
        dead_letter(loop, msgs[i], err.message);
      } else if (skip) {
        cqrs_write_cleanup(&p[np].w);
      } else {
        p[np++].m = msgs[i];
      }
    }
    cqrs_event_cleanup(&ev);
  }
  return np;
}

static void run_batch(cqrs_apply_loop_t *loop, rd_kafka_message_t **msgs, size_t n, pending_t *p) {
  size_t np = prepare(loop, msgs, n, p);
  bool ok = write_batch(loop, p, np);
  for (size_t i = 0; i < np; i++) cqrs_write_cleanup(&p[i].w);
  if (!ok) return; /* stopping: the uncommitted batch is read again next time */
  rd_kafka_flush(loop->dlq, 10000); /* dead letters are durable before we move past them */
  rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(8);
  for (size_t i = 0; i < n; i++) {
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(offsets, loop->t_events, msgs[i]->partition);
    if (!tp) tp = rd_kafka_topic_partition_list_add(offsets, loop->t_events, msgs[i]->partition);
    tp->offset = msgs[i]->offset + 1;
  }
  rd_kafka_resp_err_t e = rd_kafka_commit(loop->consumer, offsets, 0);
  rd_kafka_topic_partition_list_destroy(offsets);
  if (e)
    cqrs_log_warn(loop->log, "offset commit failed; the batch may be applied again (harmless)", "error",
                  rd_kafka_err2str(e), NULL);
  cqrs_metrics_add(loop->metrics, "events_applied_total", loop->labels, (double)np);
}

static void *loop_main(void *arg) {
  cqrs_apply_loop_t *loop = arg;
  rd_kafka_message_t **msgs = calloc(BATCH_MAX, sizeof *msgs);
  pending_t *p = calloc(BATCH_MAX, sizeof *p);
  int64_t next_lag = 0;
  while (!atomic_load(&loop->stop)) {
    size_t n = 0;
    for (int timeout = 200; n < BATCH_MAX; timeout = 0) {
      rd_kafka_message_t *m = rd_kafka_consumer_poll(loop->consumer, timeout);
      if (!m) break;
      if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
          cqrs_log_warn(loop->log, "consumer error", "error", rd_kafka_message_errstr(m), NULL);
        rd_kafka_message_destroy(m);
        continue;
      }
      msgs[n++] = m;
    }
    if (n) run_batch(loop, msgs, n, p);
    for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(msgs[i]);
    if (cqrs_time_monotonic_ms() >= next_lag) {
      update_lag(loop);
      next_lag = cqrs_time_monotonic_ms() + 1000;
    }
  }
  free(msgs);
  free(p);
  return NULL;
}

static bool ensure_indexes(cqrs_apply_loop_t *loop, cqrs_error_t *err) {
  bson_t cmd = BSON_INITIALIZER, arr;
  BSON_APPEND_UTF8(&cmd, "createIndexes", loop->proj->name);
  BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
  loop->proj->indexes(&arr);
  bson_append_array_end(&cmd, &arr);
  mongoc_client_t *client = mongoc_client_pool_pop(loop->pool);
  bson_error_t e;
  bool ok = mongoc_client_write_command_with_opts(client, loop->cfg->mongo_db, &cmd, NULL, NULL, &e);
  mongoc_client_pool_push(loop->pool, client);
  bson_destroy(&cmd);
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "createIndexes on %s: %s", loop->proj->name, e.message);
  return ok;
}

cqrs_apply_loop_t *cqrs_apply_loop_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                       mongoc_client_pool_t *pool, const cqrs_projection_t *projection,
                                       cqrs_error_t *err) {
  cqrs_apply_loop_t *loop = calloc(1, sizeof *loop);
  loop->log_copy = *log;
  loop->cfg = cfg;
  loop->log = log;
  loop->metrics = metrics;
  loop->pool = pool;
  loop->proj = projection;
  loop->t_events = cqrs_config_topic(cfg, CQRS_TOPIC_EVENTS);
  loop->t_dlq = cqrs_config_topic(cfg, CQRS_TOPIC_DLQ);
  snprintf(loop->labels, sizeof loop->labels, "projection=\"%s\"", projection->name);
  char group[256];
  snprintf(group, sizeof group, "%sprojector-%s", cfg->topic_prefix, projection->name);
  rd_kafka_conf_t *pconf = cqrs_kafka_conf_new(cfg, log, err, "enable.idempotence", "true", NULL);
  if (!pconf || !(loop->dlq = cqrs_kafka_new(RD_KAFKA_PRODUCER, pconf, err))) goto fail;
  rd_kafka_conf_t *cconf = cqrs_kafka_conf_new(cfg, log, err, "group.id", group, "isolation.level", "read_committed",
                                               "enable.auto.commit", "false", "auto.offset.reset", "earliest",
                                               /* a dead member's partitions move after 10 s, not 45 */
                                               "session.timeout.ms", "10000", NULL);
  if (!cconf || !(loop->consumer = cqrs_kafka_new(RD_KAFKA_CONSUMER, cconf, err))) goto fail;
  rd_kafka_poll_set_consumer(loop->consumer);
  /* Subscribing to a topic that does not exist yet would wait for the next
   * metadata refresh (minutes): make sure it is there. */
  int partitions;
  if (!cqrs_kafka_topics_ensure(loop->dlq, cfg, 15000, &partitions, err) || !ensure_indexes(loop, err)) goto fail;
  return loop;
fail:
  cqrs_apply_loop_destroy(loop);
  return NULL;
}

bool cqrs_apply_loop_start(cqrs_apply_loop_t *loop, cqrs_error_t *err) {
  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, loop->t_events, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(loop->consumer, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (e) {
    cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "subscribe to %s: %s", loop->t_events, rd_kafka_err2str(e));
    return false;
  }
  if (pthread_create(&loop->thread, NULL, loop_main, loop) != 0) {
    cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "cannot start the apply loop thread");
    return false;
  }
  loop->started = true;
  return true;
}

void cqrs_apply_loop_stop(cqrs_apply_loop_t *loop) {
  if (!loop || !loop->started) return;
  atomic_store(&loop->stop, true);
  pthread_join(loop->thread, NULL);
  loop->started = false;
  rd_kafka_consumer_close(loop->consumer);
}

bool cqrs_apply_loop_ready(cqrs_apply_loop_t *loop, cqrs_error_t *err) {
  if (cqrs_kafka_ping(loop->consumer, 2000)) return true;
  cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "Kafka does not answer");
  return false;
}

void cqrs_apply_loop_destroy(cqrs_apply_loop_t *loop) {
  if (!loop) return;
  cqrs_apply_loop_stop(loop);
  if (loop->consumer) rd_kafka_destroy(loop->consumer);
  if (loop->dlq) {
    rd_kafka_flush(loop->dlq, 5000);
    rd_kafka_destroy(loop->dlq);
  }
  free(loop->t_events);
  free(loop->t_dlq);
  free(loop);
}
