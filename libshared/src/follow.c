/* A thread that follows a compacted topic from its beginning, and tells when
 * it has caught up (cqrs/follow.h). */
#include "cqrs/alloc.h"
#include "cqrs/follow.h"

#include "cqrs/kafka.h"
#include "cqrs/util.h"
#include "cqrs/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ADMIN_TIMEOUT_MS 3000 /* each try at creating the topic and reading its end (bounds stop too) */
#define POLL_MS 100            /* how often the thread looks at its stop flag */

struct cqrs_follower {
  cqrs_log_t log;
  cqrs_follow_apply_cb apply;
  void *ctx;
  char *name;
  char *suffix;
  char *prefix;
  char *topic;
  int replication;
  rd_kafka_t *rk;
  cqrs_worker_t reader;
  atomic_bool caught_up;

  pthread_mutex_t mu; /* guards position; cond signals each advance */
  pthread_cond_t advanced;
  int64_t position; /* the next offset to read; every record before it is applied. -1: not assigned yet */
};

/* @locality the reader thread */
static void set_position(cqrs_follower_t *r, int64_t pos) {
  pthread_mutex_lock(&r->mu);
  if (pos > r->position) {
    r->position = pos;
    pthread_cond_broadcast(&r->advanced);
  }
  pthread_mutex_unlock(&r->mu);
}

/* Creates the topic (retrying while Kafka is away), assigns partition 0 from
 * the beginning and reads the end offset that "caught up" means. False when
 * asked to stop first. @locality the reader thread */
static bool start_reading(cqrs_follower_t *r, int64_t *target) {
  for (int backoff = 200; !cqrs_worker_stopping(&r->reader); backoff = backoff < 5000 ? backoff * 2 : 5000) {
    cqrs_error_t err = {0};
    int64_t lo = 0, hi = 0;
    if (cqrs_kafka_topic_ensure(r->rk, r->prefix, r->suffix, 1, r->replication, ADMIN_TIMEOUT_MS, &err) &&
        cqrs_kafka_watermarks(r->rk, r->topic, 0, &lo, &hi, ADMIN_TIMEOUT_MS, &err)) {
      rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(parts, r->topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
      rd_kafka_resp_err_t e = rd_kafka_assign(r->rk, parts);
      rd_kafka_topic_partition_list_destroy(parts);
      if (!e) {
        *target = hi;
        return true;
      }
      cqrs_error_set(&err, CQRS_ERR_UNAVAILABLE, NULL, "assign %s: %s", r->topic, rd_kafka_err2str(e));
    }
    char what[96];
    snprintf(what, sizeof what, "%s topic not readable yet; retrying", r->name);
    cqrs_log_warn(&r->log, what, "error", err.message, NULL);
    for (int waited = 0; waited < backoff && !cqrs_worker_stopping(&r->reader); waited += POLL_MS) rd_kafka_poll(r->rk, POLL_MS);
  }
  return false;
}

static void *run(void *arg) {
  cqrs_follower_t *r = arg;
  int64_t target = 0;
  if (!start_reading(r, &target)) return NULL;
  set_position(r, 0);
  while (!cqrs_worker_stopping(&r->reader)) {
    if (!atomic_load(&r->caught_up)) {
      pthread_mutex_lock(&r->mu);
      bool done = r->position >= target;
      pthread_mutex_unlock(&r->mu);
      if (done) {
        atomic_store(&r->caught_up, true);
        char what[96];
        snprintf(what, sizeof what, "%s records read", r->name);
        cqrs_log_info(&r->log, what, NULL);
      }
    }
    rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, POLL_MS);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      set_position(r, m->offset); /* the end: past any record we skipped or a compacted gap */
    } else if (m->err) {
      char what[96];
      snprintf(what, sizeof what, "%s reader error", r->name);
      cqrs_log_warn(&r->log, what, "error", rd_kafka_message_errstr(m), NULL);
    } else {
      r->apply(m->key, m->key_len, m->payload, m->len, m->offset, r->ctx);
      set_position(r, m->offset + 1);
    }
    rd_kafka_message_destroy(m);
  }
  return NULL;
}

static void reader_free(cqrs_follower_t *r) {
  if (r->rk) {
    rd_kafka_consumer_close(r->rk);
    rd_kafka_destroy(r->rk);
  }
  pthread_cond_destroy(&r->advanced);
  pthread_mutex_destroy(&r->mu);
  free(r->name);
  free(r->suffix);
  free(r->prefix);
  free(r->topic);
  free(r);
}

cqrs_follower_t *cqrs_follower_start(const cqrs_config_t *cfg, const cqrs_log_t *log, const char *suffix,
                                     const char *name, cqrs_follow_apply_cb apply, void *ctx, cqrs_error_t *err) {
  cqrs_follower_t *r = cqrs_xcalloc(1, sizeof *r);
  r->log = *log;
  r->apply = apply;
  r->ctx = ctx;
  r->replication = cfg->topic_replication;
  r->position = -1;
  atomic_init(&r->caught_up, false);
  pthread_mutex_init(&r->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r->advanced, &ca);
  pthread_condattr_destroy(&ca);
  r->prefix = cqrs_xstrdup(cfg->topic_prefix);
  r->name = cqrs_xstrdup(name);
  r->suffix = cqrs_xstrdup(suffix);
  r->topic = cqrs_config_topic(cfg, suffix);
  char group[96];
  snprintf(group, sizeof group, "%s-reader", name);
  /* A group id only because librdkafka's consumer API wants one: partitions
   * are assigned, never subscribed, and no offset is ever committed, so
   * every process reads the whole topic. EOF events tell where the end is.
   * Short fetch waits and backoffs: the topics are tiny, and a write must
   * reach every reader (a revoked key every service) well within a second. */
  r->rk = cqrs_kafka_consumer_new(cfg, log, group, NULL, NULL, err, "enable.partition.eof", "true",
                                  "auto.offset.reset", "earliest", "fetch.wait.max.ms", "100",
                                  "fetch.error.backoff.ms", "50", NULL);
  if (!r->rk) goto fail;
  if (!cqrs_worker_start(&r->reader, name, run, r, err)) goto fail;
  return r;
fail:
  reader_free(r);
  return NULL;
}

bool cqrs_follower_caught_up(const cqrs_follower_t *r) {
  return atomic_load(&((cqrs_follower_t *)r)->caught_up);
}

bool cqrs_follower_sync(cqrs_follower_t *r, int timeout_ms, cqrs_error_t *err) {
  int64_t deadline = cqrs_time_monotonic_ms() + timeout_ms;
  int64_t lo = 0, hi = 0;
  if (!cqrs_kafka_watermarks(r->rk, r->topic, 0, &lo, &hi, timeout_ms, err)) return false;
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  int64_t left = deadline - cqrs_time_monotonic_ms();
  if (left < 0) left = 0;
  until.tv_sec += left / 1000;
  until.tv_nsec += (left % 1000) * 1000000;
  if (until.tv_nsec >= 1000000000) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&r->mu);
  int rc = 0;
  while (r->position < hi && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&r->advanced, &r->mu, &until);
  bool ok = r->position >= hi;
  pthread_mutex_unlock(&r->mu);
  if (!ok)
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the %s reader did not reach offset %lld within %d ms",
                   r->name, (long long)hi, timeout_ms);
  return ok;
}

void cqrs_follower_stop(cqrs_follower_t *r) {
  if (!r) return;
  cqrs_worker_stop(&r->reader);
  reader_free(r);
}
