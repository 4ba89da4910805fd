/* The operations topic (cqrs/ops.h): a reader thread that keeps the latest
 * value of every key in memory, and a producer. Modelled on the control
 * reader (control_reader.c). */
#include "cqrs/alloc.h"
#include "cqrs/ops.h"

#include "cqrs/kafka.h"
#include "cqrs/map.h"
#include "cqrs/util.h"
#include "cqrs/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ADMIN_TIMEOUT_MS 3000
#define POLL_MS 50

struct cqrs_ops {
  cqrs_log_t log;
  cqrs_ops_record_cb on_record;
  void *ctx;
  char *prefix, *topic;
  int replication;
  rd_kafka_t *consumer, *producer;
  cqrs_worker_t reader;
  atomic_bool caught_up;
  pthread_mutex_t mu; /* guards records and position; cond signals each advance */
  pthread_cond_t advanced;
  cqrs_map_t *records; /* key -> malloc'd value */
  int64_t position;    /* next offset to read; -1 before the assignment */
};

typedef struct {
  bool done;
  rd_kafka_resp_err_t err;
} delivery_t;

static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *ctx) {
  (void)rk;
  (void)ctx;
  delivery_t *d = m->_private;
  if (!d) return;
  d->err = m->err;
  d->done = true;
}

static void set_position(cqrs_ops_t *o, int64_t pos) {
  pthread_mutex_lock(&o->mu);
  if (pos > o->position) {
    o->position = pos;
    pthread_cond_broadcast(&o->advanced);
  }
  pthread_mutex_unlock(&o->mu);
}

static void store(cqrs_ops_t *o, const rd_kafka_message_t *m) {
  if (!m->key || m->key_len == 0 || m->key_len > 512) return;
  char key[513];
  memcpy(key, m->key, m->key_len);
  key[m->key_len] = '\0';
  char *value = NULL;
  if (m->payload) {
    value = cqrs_xmalloc(m->len + 1);
    memcpy(value, m->payload, m->len);
    value[m->len] = '\0';
  }
  pthread_mutex_lock(&o->mu);
  if (value)
    cqrs_map_put(o->records, key, cqrs_xstrdup(value));
  else
    cqrs_map_delete(o->records, key);
  pthread_mutex_unlock(&o->mu);
  if (o->on_record) o->on_record(key, value, o->ctx);
  free(value);
}

static bool start_reading(cqrs_ops_t *o, int64_t *target) {
  for (int backoff = 200; !cqrs_worker_stopping(&o->reader); backoff = backoff < 5000 ? backoff * 2 : 5000) {
    cqrs_error_t err = {0};
    int64_t lo = 0, hi = 0;
    if (cqrs_kafka_topic_ensure(o->consumer, o->prefix, CQRS_TOPIC_OPS, 1, o->replication, ADMIN_TIMEOUT_MS, &err) &&
        cqrs_kafka_watermarks(o->consumer, o->topic, 0, &lo, &hi, ADMIN_TIMEOUT_MS, &err)) {
      rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(parts, o->topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
      rd_kafka_resp_err_t e = rd_kafka_assign(o->consumer, parts);
      rd_kafka_topic_partition_list_destroy(parts);
      if (!e) {
        *target = hi;
        return true;
      }
      cqrs_error_set(&err, CQRS_ERR_UNAVAILABLE, NULL, "assign %s: %s", o->topic, rd_kafka_err2str(e));
    }
    cqrs_log_warn(&o->log, "ops topic not readable yet; retrying", "error", err.message, NULL);
    for (int waited = 0; waited < backoff && !cqrs_worker_stopping(&o->reader); waited += POLL_MS)
      rd_kafka_poll(o->consumer, POLL_MS);
  }
  return false;
}

static void *run(void *arg) {
  cqrs_ops_t *o = arg;
  int64_t target = 0;
  if (!start_reading(o, &target)) return NULL;
  set_position(o, 0);
  while (!cqrs_worker_stopping(&o->reader)) {
    if (!atomic_load(&o->caught_up)) {
      pthread_mutex_lock(&o->mu);
      bool done = o->position >= target;
      pthread_mutex_unlock(&o->mu);
      if (done) atomic_store(&o->caught_up, true);
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(o->consumer, POLL_MS);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      set_position(o, m->offset);
    } else if (m->err) {
      cqrs_log_warn(&o->log, "ops reader error", "error", rd_kafka_message_errstr(m), NULL);
    } else {
      store(o, m);
      set_position(o, m->offset + 1);
    }
    rd_kafka_message_destroy(m);
  }
  return NULL;
}

void cqrs_ops_close(cqrs_ops_t *o) {
  if (!o) return;
  cqrs_worker_stop(&o->reader);
  if (o->consumer) {
    rd_kafka_consumer_close(o->consumer);
    rd_kafka_destroy(o->consumer);
  }
  if (o->producer) {
    rd_kafka_flush(o->producer, 5000);
    rd_kafka_destroy(o->producer);
  }
  cqrs_map_destroy(o->records);
  pthread_cond_destroy(&o->advanced);
  pthread_mutex_destroy(&o->mu);
  free(o->prefix);
  free(o->topic);
  free(o);
}

cqrs_ops_t *cqrs_ops_open(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_ops_record_cb on_record, void *ctx,
                          cqrs_error_t *err) {
  cqrs_ops_t *o = cqrs_xcalloc(1, sizeof *o);
  o->log = *log;
  o->on_record = on_record;
  o->ctx = ctx;
  o->replication = cfg->topic_replication;
  o->position = -1;
  o->records = cqrs_map_new(free);
  pthread_mutex_init(&o->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&o->advanced, &ca);
  pthread_condattr_destroy(&ca);
  o->prefix = cqrs_xstrdup(cfg->topic_prefix);
  o->topic = cqrs_config_topic(cfg, CQRS_TOPIC_OPS);
  /* Assigned, never subscribed, nothing committed: every process reads all. */
  o->consumer = cqrs_kafka_consumer_new(cfg, log, "ops-reader", NULL, NULL, err, "enable.partition.eof", "true",
                                        "auto.offset.reset", "earliest", "fetch.wait.max.ms", "100",
                                        "fetch.error.backoff.ms", "50", NULL);
  if (!o->consumer) goto fail;
  o->producer = cqrs_kafka_producer_new(cfg, log, delivered, o, err, "enable.idempotence", "true", "acks", "all",
                                        "linger.ms", "0", "message.timeout.ms", "10000", NULL);
  if (!o->producer) goto fail;
  if (!cqrs_worker_start(&o->reader, "ops-reader", run, o, err)) goto fail;
  return o;
fail:
  cqrs_ops_close(o);
  return NULL;
}

bool cqrs_ops_caught_up(cqrs_ops_t *o) { return atomic_load(&o->caught_up); }

bool cqrs_ops_sync(cqrs_ops_t *o, int timeout_ms, cqrs_error_t *err) {
  int64_t deadline = cqrs_time_monotonic_ms() + timeout_ms;
  int64_t lo = 0, hi = 0;
  if (!cqrs_kafka_watermarks(o->consumer, o->topic, 0, &lo, &hi, timeout_ms, err)) return false;
  bool ok = false;
  pthread_mutex_lock(&o->mu);
  for (;;) {
    if (o->position >= hi) {
      ok = true;
      break;
    }
    int64_t left = deadline - cqrs_time_monotonic_ms();
    if (left <= 0) break;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += left / 1000;
    until.tv_nsec += (left % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&o->advanced, &o->mu, &until);
  }
  pthread_mutex_unlock(&o->mu);
  if (!ok)
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the ops reader did not reach offset %lld within %d ms",
                   (long long)hi, timeout_ms);
  return ok;
}

bool cqrs_ops_put(cqrs_ops_t *o, const char *key, const char *value, bool sync, int timeout_ms, cqrs_error_t *err) {
  delivery_t d = {0};
  rd_kafka_resp_err_t e = rd_kafka_producev(
      o->producer, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY(key, strlen(key)),
      RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
  if (e) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "cannot write the ops record: %s", rd_kafka_err2str(e));
    return false;
  }
  /* message.timeout.ms bounds the delivery; the report must come before d goes out of scope */
  while (!d.done) rd_kafka_flush(o->producer, 1000);
  if (d.err) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the ops record was not written: %s", rd_kafka_err2str(d.err));
    return false;
  }
  return !sync || cqrs_ops_sync(o, timeout_ms, err);
}

char *cqrs_ops_get(cqrs_ops_t *o, const char *key) {
  pthread_mutex_lock(&o->mu);
  const char *v = cqrs_map_get(o->records, key);
  char *copy = v ? cqrs_xstrdup(v) : NULL;
  pthread_mutex_unlock(&o->mu);
  return copy;
}

typedef struct {
  const char *prefix;
  size_t plen, n, cap;
  char **keys, **values;
} collect_t;

static bool collect(const char *key, void *value, void *ctx) {
  collect_t *c = ctx;
  if (strncmp(key, c->prefix, c->plen) != 0) return false;
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 16;
    c->keys = cqrs_xrealloc(c->keys, c->cap * sizeof *c->keys);
    c->values = cqrs_xrealloc(c->values, c->cap * sizeof *c->values);
  }
  c->keys[c->n] = cqrs_xstrdup(key);
  c->values[c->n++] = cqrs_xstrdup(value);
  return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

size_t cqrs_ops_list(cqrs_ops_t *o, const char *prefix, char ***keys, char ***values) {
  collect_t c = {.prefix = prefix, .plen = strlen(prefix)};
  pthread_mutex_lock(&o->mu);
  cqrs_map_filter(o->records, collect, &c);
  pthread_mutex_unlock(&o->mu);
  /* order by key: sort an index, then both arrays by it */
  char **pairs = cqrs_xcalloc(c.n ? c.n * 2 : 1, sizeof *pairs);
  for (size_t i = 0; i < c.n; i++) {
    size_t len = strlen(c.keys[i]) + 1;
    pairs[i] = cqrs_xmalloc(len + sizeof(size_t));
    memcpy(pairs[i], c.keys[i], len);
    memcpy(pairs[i] + len, &i, sizeof i);
  }
  qsort(pairs, c.n, sizeof *pairs, cmp_str);
  *keys = cqrs_xcalloc(c.n ? c.n : 1, sizeof **keys);
  *values = cqrs_xcalloc(c.n ? c.n : 1, sizeof **values);
  for (size_t j = 0; j < c.n; j++) {
    size_t i;
    memcpy(&i, pairs[j] + strlen(pairs[j]) + 1, sizeof i);
    (*keys)[j] = c.keys[i];
    (*values)[j] = c.values[i];
    free(pairs[j]);
  }
  free(pairs);
  free(c.keys);
  free(c.values);
  return c.n;
}

void cqrs_ops_free_list(char **keys, char **values, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(keys[i]);
    free(values[i]);
  }
  free(keys);
  free(values);
}

bool cqrs_ops_ping(cqrs_ops_t *o, int timeout_ms) { return cqrs_kafka_ping(o->producer, timeout_ms); }

rd_kafka_headers_t *cqrs_dlq_headers(const rd_kafka_message_t *m, const char *consumer, const char *source_topic,
                                     const char *error) {
  rd_kafka_headers_t *src = NULL;
  rd_kafka_headers_t *h = rd_kafka_message_headers(m, &src) == RD_KAFKA_RESP_ERR_NO_ERROR
                              ? rd_kafka_headers_copy(src)
                              : rd_kafka_headers_new(6);
  char part[16], off[24];
  snprintf(part, sizeof part, "%d", m->partition);
  snprintf(off, sizeof off, "%lld", (long long)m->offset);
  rd_kafka_header_add(h, CQRS_DLQ_ERROR, -1, error, -1);
  rd_kafka_header_add(h, CQRS_DLQ_PROJECTION, -1, consumer, -1);
  rd_kafka_header_add(h, CQRS_DLQ_SOURCE_TOPIC, -1, source_topic, -1);
  rd_kafka_header_add(h, CQRS_DLQ_SOURCE_PARTITION, -1, part, -1);
  rd_kafka_header_add(h, CQRS_DLQ_SOURCE_OFFSET, -1, off, -1);
  return h;
}
