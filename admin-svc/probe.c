/* Kafka reads of admin-svc (probe.h). */
#include "probe.h"

#include "cqrs/alloc.h"
#include "cqrs/kafka.h"
#include "cqrs/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 5000

struct admin_probe {
  const cqrs_config_t *cfg;
  cqrs_log_t log;
  rd_kafka_t *rk;
  char *t_events;
  pthread_mutex_t mu;
};

admin_probe_t *admin_probe_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_error_t *err) {
  admin_probe_t *p = cqrs_xcalloc(1, sizeof *p);
  p->cfg = cfg;
  p->log = *log;
  p->t_events = cqrs_config_topic(cfg, CQRS_TOPIC_EVENTS);
  pthread_mutex_init(&p->mu, NULL);
  /* read committed: audit records and projector-svc's dead letters are
   * produced plainly (visible at once), saga-svc's dead letters inside its
   * transactions (one of an aborted batch never shows) */
  if (!(p->rk = cqrs_kafka_consumer_new(cfg, log, "admin-probe", NULL, NULL, err, "isolation.level", "read_committed",
                                        "enable.partition.eof", "true", NULL))) {
    admin_probe_destroy(p);
    return NULL;
  }
  /* like every service: the topics it reads exist (a dry run on a fresh system answers 0 events) */
  int partitions;
  if (!cqrs_kafka_topics_ensure(p->rk, cfg, 15000, &partitions, err)) {
    admin_probe_destroy(p);
    return NULL;
  }
  return p;
}

void admin_probe_destroy(admin_probe_t *p) {
  if (!p) return;
  if (p->rk) {
    rd_kafka_consumer_close(p->rk);
    rd_kafka_destroy(p->rk);
  }
  pthread_mutex_destroy(&p->mu);
  free(p->t_events);
  free(p);
}

int admin_probe_events(admin_probe_t *p, int64_t from_ms, int64_t *lo, int64_t *hi, int64_t *at, cqrs_error_t *err) {
  pthread_mutex_lock(&p->mu);
  int n = cqrs_kafka_partition_count(p->rk, p->t_events, TIMEOUT_MS, err);
  if (n > ADMIN_MAX_PARTITIONS) n = ADMIN_MAX_PARTITIONS;
  for (int i = 0; i < n; i++)
    if (!cqrs_kafka_watermarks(p->rk, p->t_events, i, &lo[i], &hi[i], TIMEOUT_MS, err)) n = -1;
  if (n > 0 && from_ms > 0) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) rd_kafka_topic_partition_list_add(l, p->t_events, i)->offset = from_ms;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(p->rk, l, TIMEOUT_MS);
    if (e) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "offsets for time: %s", rd_kafka_err2str(e));
      n = -1;
    }
    for (int i = 0; n > 0 && i < l->cnt; i++) {
      int32_t pt = l->elems[i].partition;
      at[pt] = l->elems[i].offset < 0 ? hi[pt] : l->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
  } else if (n > 0) {
    for (int i = 0; i < n; i++) at[i] = lo[i];
  }
  pthread_mutex_unlock(&p->mu);
  return n;
}

bool admin_probe_committed(admin_probe_t *p, const char *group_suffix, int n, int64_t *committed, cqrs_error_t *err) {
  /* a consumer of that group that never joins it: it only asks the coordinator */
  rd_kafka_t *rk = cqrs_kafka_consumer_new(p->cfg, &p->log, group_suffix, NULL, NULL, err, NULL);
  if (!rk) return false;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  for (int i = 0; i < n; i++) rd_kafka_topic_partition_list_add(l, p->t_events, i);
  rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, TIMEOUT_MS);
  for (int i = 0; !e && i < l->cnt; i++)
    committed[l->elems[i].partition] = l->elems[i].offset >= 0 ? l->elems[i].offset : -1;
  if (e) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "committed offsets: %s", rd_kafka_err2str(e));
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_destroy(rk);
  return !e;
}

bool admin_probe_read_all(admin_probe_t *p, const char *topic, admin_record_cb cb, void *ctx, cqrs_error_t *err) {
  char *t = cqrs_config_topic(p->cfg, topic);
  pthread_mutex_lock(&p->mu);
  int n = cqrs_kafka_partition_count(p->rk, t, TIMEOUT_MS, err);
  bool ok = n > 0;
  if (n > ADMIN_MAX_PARTITIONS) n = ADMIN_MAX_PARTITIONS;
  for (int pt = 0; ok && pt < n; pt++) {
    int64_t lo, hi;
    if (!cqrs_kafka_watermarks(p->rk, t, pt, &lo, &hi, TIMEOUT_MS, err)) {
      ok = false;
      break;
    }
    if (hi <= lo) continue;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, t, pt)->offset = lo;
    rd_kafka_assign(p->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    int64_t deadline = cqrs_time_monotonic_ms() + TIMEOUT_MS * 2;
    for (int64_t next = lo; next < hi;) {
      if (cqrs_time_monotonic_ms() > deadline) {
        cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "reading %s timed out", t);
        ok = false;
        break;
      }
      rd_kafka_message_t *m = rd_kafka_consumer_poll(p->rk, 200);
      if (!m) continue;
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        next = hi;
      } else if (!m->err && m->partition == pt && m->offset >= next) {
        cb(m, ctx);
        next = m->offset + 1;
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(p->rk, NULL);
  }
  pthread_mutex_unlock(&p->mu);
  free(t);
  return ok;
}
