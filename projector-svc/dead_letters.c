/* Dead letters (see dead_letters.h). */
#include "dead_letters.h"

#include "cqrs/alloc.h"
#include "cqrs/kafka.h"
#include "cqrs/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cqrs_dead_letters {
  const cqrs_log_t *log;
  cqrs_metrics_t *metrics;
  const char *projection;
  char *source_topic, *topic;
  char labels[96];
  rd_kafka_t *producer;
};

cqrs_dead_letters_t *cqrs_dead_letters_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                           const char *projection, const char *source_topic, cqrs_error_t *err) {
  cqrs_dead_letters_t *dl = cqrs_xcalloc(1, sizeof *dl);
  dl->log = log;
  dl->metrics = metrics;
  dl->projection = projection;
  dl->source_topic = cqrs_xstrdup(source_topic);
  dl->topic = cqrs_config_topic(cfg, CQRS_TOPIC_DLQ);
  snprintf(dl->labels, sizeof dl->labels, "projection=\"%s\"", projection);
  if (!(dl->producer = cqrs_kafka_producer_new(cfg, log, NULL, NULL, err, "enable.idempotence", "true", NULL))) {
    cqrs_dead_letters_destroy(dl);
    return NULL;
  }
  return dl;
}

void cqrs_dead_letters_send(cqrs_dead_letters_t *dl, const rd_kafka_message_t *m, const char *error) {
  rd_kafka_headers_t *h = cqrs_dlq_headers(m, dl->projection, dl->source_topic, error);
  char part[16], off[24];
  snprintf(part, sizeof part, "%d", m->partition);
  snprintf(off, sizeof off, "%lld", (long long)m->offset);
  rd_kafka_resp_err_t e = rd_kafka_producev(dl->producer, RD_KAFKA_V_TOPIC(dl->topic),
                                            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
                                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                                            RD_KAFKA_V_END);
  if (e) rd_kafka_headers_destroy(h);
  cqrs_metrics_add(dl->metrics, "dlq_events_total", dl->labels, 1);
  cqrs_log_error(dl->log, "event sent to the dead letter topic", "projection", dl->projection, "error", error,
                 "partition", part, "offset", off, "produceError", e ? rd_kafka_err2str(e) : NULL, NULL);
}

void cqrs_dead_letters_flush(cqrs_dead_letters_t *dl, int timeout_ms) { rd_kafka_flush(dl->producer, timeout_ms); }

void cqrs_dead_letters_destroy(cqrs_dead_letters_t *dl) {
  if (!dl) return;
  if (dl->producer) {
    rd_kafka_flush(dl->producer, 5000);
    rd_kafka_destroy(dl->producer);
  }
  free(dl->source_topic);
  free(dl->topic);
  free(dl);
}
