/* The control record writer: decide, produce, wait for delivery, read back. */
#include "writer.h"

#include "cqrs/alloc.h"
#include "cqrs/kafka.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct admin_writer {
  cqrs_log_t log;
  cqrs_registry_t *reg;
  cqrs_control_reader_t *reader;
  int timeout_ms;
  char *topic;
  rd_kafka_t *rk;
  pthread_mutex_t mu; /* one write at a time, decide included */
};

/* What the delivery report of the one record in flight says. */
typedef struct {
  bool done;
  rd_kafka_resp_err_t err;
} delivery_t;

/* @locality the thread in rd_kafka_flush (admin_writer_apply's, under mu) */
static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *ctx) {
  (void)rk;
  (void)ctx;
  delivery_t *d = m->_private;
  d->done = true;
  d->err = m->err;
}

rd_kafka_t *admin_producer_new(const cqrs_config_t *cfg, const cqrs_log_t *log, int timeout_ms, cqrs_error_t *err) {
  char timeout[16];
  snprintf(timeout, sizeof timeout, "%d", timeout_ms);
  return cqrs_kafka_producer_new(cfg, log, delivered, NULL, err, "enable.idempotence", "true", "acks", "all",
                                 "message.timeout.ms", timeout, "linger.ms", "0", NULL);
}

admin_writer_t *admin_writer_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_registry_t *reg,
                                 cqrs_control_reader_t *reader, int timeout_ms, cqrs_error_t *err) {
  admin_writer_t *w = cqrs_xcalloc(1, sizeof *w);
  if (!(w->topic = cqrs_config_topic(cfg, CQRS_TOPIC_CONTROL))) {
    cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "out of memory making the control writer");
    free(w);
    return NULL;
  }
  w->log = *log;
  w->reg = reg;
  w->reader = reader;
  w->timeout_ms = timeout_ms;
  pthread_mutex_init(&w->mu, NULL);
  if (!(w->rk = admin_producer_new(cfg, log, timeout_ms, err))) {
    admin_writer_destroy(w);
    return NULL;
  }
  return w;
}

void admin_writer_destroy(admin_writer_t *w) {
  if (!w) return;
  if (w->rk) {
    rd_kafka_flush(w->rk, w->timeout_ms);
    rd_kafka_destroy(w->rk);
  }
  pthread_mutex_destroy(&w->mu);
  free(w->topic);
  free(w);
}

bool admin_produce(rd_kafka_t *rk, const char *topic, const admin_record_t *rec, int timeout_ms, cqrs_error_t *err) {
  delivery_t d = {0};
  rd_kafka_resp_err_t e = rd_kafka_producev(
      rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY(rec->key, strlen(rec->key)),
      RD_KAFKA_V_VALUE(rec->value, rec->value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
  if (e) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "cannot write the %s record: %s", topic,
                   rd_kafka_err2str(e));
    return false;
  }
  /* message.timeout.ms bounds the delivery, so the report comes; the flush
   * bound is a backstop. The report must arrive before d goes out of scope. */
  while (!d.done) rd_kafka_flush(rk, timeout_ms + 1000);
  if (d.err) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the %s record was not written: %s", topic,
                   rd_kafka_err2str(d.err));
    return false;
  }
  return true;
}

bool admin_writer_apply(admin_writer_t *w, admin_decide_cb decide, void *ctx, cqrs_error_t *err) {
  admin_record_t rec = {0};
  pthread_mutex_lock(&w->mu);
  bool ok = decide(w->reg, ctx, &rec, err);
  if (ok && rec.key)
    ok = admin_produce(w->rk, w->topic, &rec, w->timeout_ms, err) &&
         cqrs_control_reader_sync(w->reader, w->timeout_ms, err);
  pthread_mutex_unlock(&w->mu);
  if (!ok && err && err->code == CQRS_ERR_UNAVAILABLE)
    cqrs_log_warn(&w->log, "control write failed", "error", err->message, NULL);
  free(rec.key);
  free(rec.value);
  return ok;
}

bool admin_writer_ping(admin_writer_t *w, int timeout_ms) { return cqrs_kafka_ping(w->rk, timeout_ms); }
